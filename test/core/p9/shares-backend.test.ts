// The shares backend (several shares behind one 9P device, each with its own read-only and quota
// policy) runs the shared conformance suite over memory stores, as each share is served, plus
// what only it does: the read-only top folder, per-share policy and statfs, no link across shares.

import { describe, expect, it } from "vitest";
import { Errno } from "../../../core/p9/errno.js";
import { FileMode, OpenFlags } from "../../../core/p9/messages.js";
import { MemoryBackend } from "../../../core/p9/memory-backend.js";
import { P9Server } from "../../../core/p9/server.js";
import { SharesBackend } from "../../../core/p9/shares-backend.js";
import { runConformance, TestClient } from "./conformance.js";

runConformance("shares backend over memory", () => new MemoryBackend(), { throughShares: true });

describe("shares backend", () => {
  async function mountAll(): Promise<{ c: TestClient; rw: MemoryBackend; ro: MemoryBackend; small: MemoryBackend }> {
    const rw = new MemoryBackend();
    const ro = new MemoryBackend();
    const small = new MemoryBackend();
    const shares = new SharesBackend([
      { tag: "rw", backend: rw, readOnly: false },
      { tag: "ro", backend: ro, readOnly: true },
      { tag: "small", backend: small, readOnly: false, quotaBytes: 8192 },
    ]);
    const c = new TestClient(new P9Server(shares));
    await c.mount();
    return { c, rw, ro, small };
  }

  it("lists one folder per share at the top, which the guest cannot change", async () => {
    const { c } = await mountAll();
    expect(await c.names("")).toEqual(["ro", "rw", "small"]);
    expect((await c.getattr("")).mode).toBe(FileMode.DIR | 0o555);
    const top = await c.walk("");
    expect(await c.fail({ type: "Tlcreate", fid: top, name: "x", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 })).toBe(Errno.EROFS);
    expect(await c.fail({ type: "Tmkdir", dfid: top, name: "x", mode: 0o40755, gid: 0 })).toBe(Errno.EROFS);
    expect(await c.fail({ type: "Tunlinkat", dirfid: top, name: "rw", flags: 0x200 })).toBe(Errno.EROFS);
    expect(await c.fail({ type: "Trenameat", olddirfid: top, oldname: "rw", newdirfid: top, newname: "x" })).toBe(Errno.EROFS);
    expect(await c.fail({ type: "Tlopen", fid: top, flags: OpenFlags.RDONLY | OpenFlags.TRUNC })).toBe(Errno.EROFS);
    expect(await c.names("")).toEqual(["ro", "rw", "small"]);
  });

  it("applies each share's own policy, and nothing crosses between shares", async () => {
    const { c, ro } = await mountAll();
    await c.writeFile("rw/f", "writable");
    const roDir = await c.walk("ro");
    expect(await c.fail({ type: "Tmkdir", dfid: roDir, name: "x", mode: 0o40755, gid: 0 })).toBe(Errno.EROFS);
    expect(await ro.usedBytes()).toBe(0);
    expect((await (await ro.root()).readdir()).length).toBe(0);
    const f = await c.walk("rw/f");
    expect(await c.fail({ type: "Tlink", dfid: await c.walk("small"), fid: f, name: "f" })).toBe(Errno.EXDEV);
    expect(await c.fail({ type: "Trenameat", olddirfid: await c.walk("rw"), oldname: "f", newdirfid: await c.walk("small"), newname: "f" })).toBe(Errno.EXDEV);
    expect(await c.readText("rw/f")).toBe("writable");
  });

  it("answers statfs for the share a path is in: a quota shows on its share only", async () => {
    const { c } = await mountAll();
    const small = await c.rpc({ type: "Tstatfs", fid: await c.walk("small") });
    expect(small.blocks * BigInt(small.bsize)).toBe(8192n);
    const rw = await c.rpc({ type: "Tstatfs", fid: await c.walk("rw") });
    expect(rw.blocks * BigInt(rw.bsize)).toBe(64n * 1024n * 1024n);
    await c.writeFile("small/a", new Uint8Array(5000));
    const after = await c.rpc({ type: "Tstatfs", fid: await c.walk("small/a") });
    expect(after.bfree).toBe(BigInt(Math.floor(3192 / after.bsize)));
  });
});
