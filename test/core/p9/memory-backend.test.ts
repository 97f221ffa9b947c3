// The in-memory backend runs the shared 9P conformance suite, plus what only it promises:
// its capacity bounds what a guest can make it hold.

import { describe, expect, it } from "vitest";
import { Errno } from "../../../core/p9/errno.js";
import { MemoryBackend } from "../../../core/p9/memory-backend.js";
import { P9Server } from "../../../core/p9/server.js";
import { runConformance, TestClient } from "./conformance.js";

runConformance("memory backend", () => new MemoryBackend());

describe("memory backend", () => {
  it("refuses to hold more than its capacity, and frees what is unlinked", async () => {
    const backend = new MemoryBackend({ capacityBytes: 4096 });
    const c = new TestClient(new P9Server(backend));
    await c.mount();
    await c.writeFile("a", new Uint8Array(4000));
    const root = await c.walk("");
    await c.rpc({ type: "Tlcreate", fid: root, name: "b", flags: 1, mode: 0o100644, gid: 0 });
    expect(await c.fail({ type: "Twrite", fid: root, offset: 0n, data: new Uint8Array(200) })).toBe(Errno.ENOSPC);
    const huge = { type: "Tsetattr", valid: 8, mode: 0, uid: 0, gid: 0, size: 1n << 40n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n } as const;
    expect(await c.fail({ ...huge, fid: root })).toBe(Errno.ENOSPC);
    await c.rpc({ type: "Tunlinkat", dirfid: 0, name: "a", flags: 0 });
    expect(await backend.usedBytes()).toBe(0);
    expect((await c.rpc({ type: "Twrite", fid: root, offset: 0n, data: new Uint8Array(200) })).count).toBe(200);
    const fs = await backend.statfs();
    expect(fs.blocks).toBe(1);
  });

  it("gives the root the owner and mode it was made with", async () => {
    const c = new TestClient(new P9Server(new MemoryBackend({ root: { uid: 1000, gid: 1000, mode: 0o700 } })));
    await c.mount();
    const root = await c.getattr("");
    expect([root.uid, root.gid, root.mode]).toEqual([1000, 1000, 0o40700]);
  });
});
