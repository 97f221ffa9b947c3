// What the 9P server itself bounds, whatever the backend: a guest session holds at most so many
// fids (ENFILE past it) and so many open files (EMFILE past it), so one guest cannot take every
// host descriptor; the caps answer with an error and free up again as the guest clunks.

import { describe, expect, it } from "vitest";
import { Errno } from "../../../core/p9/errno.js";
import { GetattrMask, NOFID, OpenFlags } from "../../../core/p9/messages.js";
import { MemoryBackend } from "../../../core/p9/memory-backend.js";
import { P9Server } from "../../../core/p9/server.js";
import { TestClient } from "./conformance.js";

const { RDONLY, WRONLY, CREAT } = OpenFlags;

describe("9P server: per-session caps", () => {
  it("refuses fids past maxFids with ENFILE until the guest clunks some", async () => {
    const errors: unknown[] = [];
    const c = new TestClient(new P9Server(new MemoryBackend(), { maxFids: 8, onError: (e) => errors.push(e) }));
    await c.mount();
    await c.writeFile("f", "x");
    const fids: number[] = [];
    for (let i = 1; i < 8; i++) fids.push(await c.walk("f"));
    expect(c.server.fidCount).toBe(8);
    expect(await c.fail({ type: "Twalk", fid: 0, newfid: c.newFid(), wnames: ["f"] })).toBe(Errno.ENFILE);
    expect(await c.fail({ type: "Twalk", fid: 0, newfid: c.newFid(), wnames: [] })).toBe(Errno.ENFILE);
    expect(await c.fail({ type: "Txattrwalk", fid: fids[0]!, newfid: c.newFid(), name: "" })).toBe(Errno.ENFILE);
    expect(await c.fail({ type: "Tattach", fid: c.newFid(), afid: NOFID, uname: "", aname: "", nUname: 0 })).toBe(Errno.ENFILE);
    // Walking a fid onto itself takes no new one.
    await c.rpc({ type: "Twalk", fid: fids[0]!, newfid: fids[0]!, wnames: [] });
    expect(c.server.fidCount).toBe(8);
    for (const fid of fids.splice(0, 3)) await c.clunk(fid);
    for (let i = 0; i < 3; i++) fids.push(await c.walk("f"));
    expect(await c.fail({ type: "Twalk", fid: 0, newfid: c.newFid(), wnames: ["f"] })).toBe(Errno.ENFILE);
    // Everything else keeps working, and no failure was a crash.
    expect((await c.rpc({ type: "Tgetattr", fid: fids[0]!, requestMask: GetattrMask.BASIC })).size).toBe(1n);
    expect(errors).toEqual([]);
  });

  it("refuses opens and creates past maxOpenFiles with EMFILE, creating nothing, until files are closed", async () => {
    const errors: unknown[] = [];
    const c = new TestClient(new P9Server(new MemoryBackend(), { maxOpenFiles: 3, onError: (e) => errors.push(e) }));
    await c.mount();
    await c.writeFile("f", "x");
    const open: number[] = [];
    for (let i = 0; i < 3; i++) {
      const fid = await c.walk("f");
      await c.rpc({ type: "Tlopen", fid, flags: RDONLY });
      open.push(fid);
    }
    expect(c.server.openFileCount).toBe(3);
    const closed = await c.walk("f");
    expect(await c.fail({ type: "Tlopen", fid: closed, flags: RDONLY })).toBe(Errno.EMFILE);
    const dir = await c.walk("");
    expect(await c.fail({ type: "Tlcreate", fid: dir, name: "new", flags: WRONLY | CREAT, mode: 0o100644, gid: 0 })).toBe(Errno.EMFILE);
    expect(await c.fail({ type: "Tlopen", fid: dir, flags: RDONLY | OpenFlags.DIRECTORY })).toBe(Errno.EMFILE);
    // Fids that are not open are not limited by it.
    await c.walk("f");
    // A clunk, a Tremove or a Tversion closes files and gives their places back.
    await c.clunk(open.pop()!);
    expect(await c.names("")).toEqual(["f"]);
    await c.rpc({ type: "Tlopen", fid: closed, flags: RDONLY });
    expect(await c.fail({ type: "Tlopen", fid: await c.walk("f"), flags: RDONLY })).toBe(Errno.EMFILE);
    await c.rpc({ type: "Tremove", fid: open.pop()! });
    await c.rpc({ type: "Tlcreate", fid: dir, name: "new", flags: WRONLY | CREAT, mode: 0o100644, gid: 0 });
    expect(c.server.openFileCount).toBe(3);
    await c.mount();
    expect(await c.names("")).toEqual(["new"]);
    expect(c.server.openFileCount).toBe(0);
    const again = await c.walk("new");
    await c.rpc({ type: "Tlopen", fid: again, flags: RDONLY });
    expect(errors).toEqual([]);
  });
});
