// A 9P session carried across a suspend: the guest's fids saved by one server (saveState) and
// rebuilt by a new one (restore) against this run's shares. What a guest would notice: a file it
// held open reads and writes on, the top folder lists this run's shares, and a fid whose share is
// gone or now names another store errs (EIO), never showing the other store's content. The saved
// table comes from a file: a malformed one is refused with a reason and nothing breaks.

import { describe, expect, it } from "vitest";
import { Errno } from "../../../core/p9/errno.js";
import { OpenFlags } from "../../../core/p9/messages.js";
import { MemoryBackend } from "../../../core/p9/memory-backend.js";
import { P9Server } from "../../../core/p9/server.js";
import { SessionStateError } from "../../../core/p9/session-state.js";
import { SharesBackend } from "../../../core/p9/shares-backend.js";
import { TestClient } from "./conformance.js";

const { RDONLY, RDWR, WRONLY, TRUNC, APPEND } = OpenFlags;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

function shares(list: Record<string, MemoryBackend>): SharesBackend {
  return new SharesBackend(Object.entries(list).map(([tag, backend]) => ({ tag, backend, readOnly: false })));
}

/** A client on a restored server: its new fids start past the restored ones. */
function resumedClient(server: P9Server): TestClient {
  const c = new TestClient(server);
  for (let i = 0; i < 1000; i++) c.newFid();
  return c;
}

/** The guest before its suspend: share A mounted, a file open for writing, one for reading, a folder fid. */
async function guestWithOpenFiles(a: MemoryBackend): Promise<{ server: P9Server; held: { log: number; data: number; dir: number } }> {
  const server = new P9Server(shares({ A: a }));
  const c = new TestClient(server);
  await c.mount();
  await c.mkdir("A/dir");
  await c.writeFile("A/dir/data.txt", "saved before");
  const log = await c.walk("A");
  await c.rpc({ type: "Tlcreate", fid: log, name: "log.txt", flags: WRONLY | TRUNC | APPEND, mode: 0o100644, gid: 0 });
  await c.rpc({ type: "Twrite", fid: log, offset: 0n, data: text("one\n") });
  const data = await c.walk("A/dir/data.txt");
  await c.rpc({ type: "Tlopen", fid: data, flags: RDWR });
  const dir = await c.walk("A/dir");
  return { server, held: { log, data, dir } };
}

describe("9P session across a suspend", () => {
  it("rebuilds fids against the same share: open files read and write on, nothing truncated", async () => {
    const a = new MemoryBackend();
    const { server, held } = await guestWithOpenFiles(a);
    const saved = JSON.parse(JSON.stringify(server.saveState())) as unknown;
    server.dispose();
    await server.closed;

    const resumed = new P9Server(shares({ A: a }));
    const restoring = resumed.restore(saved);
    // Suspended again before the fids were rebuilt: the same session is saved.
    expect(resumed.saveState()).toEqual(saved);
    expect(await restoring).toEqual({ restored: 4, stale: 0 });
    expect(resumed.msize).toBe(512000);
    expect(resumed.openFileCount).toBe(2);
    const c = resumedClient(resumed);
    // No Tversion, no Tattach: the guest goes on with the fids it had.
    await c.rpc({ type: "Twrite", fid: held.log, offset: 0n, data: text("two\n") });
    expect(await c.readText("A/log.txt")).toBe("one\ntwo\n");
    expect(str((await c.rpc({ type: "Tread", fid: held.data, offset: 0n, count: 100 })).data)).toBe("saved before");
    await c.rpc({ type: "Twrite", fid: held.data, offset: 0n, data: text("SAVED") });
    expect(await c.readText("A/dir/data.txt")).toBe("SAVED before");
    expect(await c.names("A/dir")).toEqual(["data.txt"]);
    const fromDir = c.newFid();
    await c.rpc({ type: "Twalk", fid: held.dir, newfid: fromDir, wnames: ["data.txt"] });
    expect((await c.rpc({ type: "Tgetattr", fid: fromDir, requestMask: 0x7ffn })).size).toBe(12n);
  });

  it("a share whose tag now names another store errs on every held fid, never showing the other's files", async () => {
    const { server, held } = await guestWithOpenFiles(new MemoryBackend());
    const saved = server.saveState();
    const other = new MemoryBackend();
    const o = new TestClient(new P9Server(other));
    await o.mount();
    await o.mkdir("dir");
    await o.writeFile("dir/data.txt", "B's secret");
    await o.writeFile("log.txt", "B's log");

    const resumed = new P9Server(shares({ A: other }));
    expect(await resumed.restore(saved)).toEqual({ restored: 1, stale: 3 });
    const c = resumedClient(resumed);
    expect(await c.fail({ type: "Tread", fid: held.data, offset: 0n, count: 100 })).toBe(Errno.EIO);
    expect(await c.fail({ type: "Twrite", fid: held.log, offset: 0n, data: text("x") })).toBe(Errno.EIO);
    expect(await c.fail({ type: "Twalk", fid: held.dir, newfid: c.newFid(), wnames: ["data.txt"] })).toBe(Errno.EIO);
    expect(await c.fail({ type: "Tgetattr", fid: held.dir, requestMask: 0x7ffn })).toBe(Errno.EIO);
    // Nothing was written into the other store, and a stale fid is still clunked.
    expect(await o.readText("log.txt")).toBe("B's log");
    await c.clunk(held.log);
    await c.clunk(held.data);
    expect(resumed.fidCount).toBe(2);
    // A new lookup from the top sees this run's share: the guest opened nothing of it before.
    expect(await c.readText("A/dir/data.txt")).toBe("B's secret");
  });

  it("the top folder lists this run's shares: a removed one's fids err, an added one appears", async () => {
    const a = new MemoryBackend();
    const { server, held } = await guestWithOpenFiles(a);
    const saved = server.saveState();
    const resumed = new P9Server(shares({ B: new MemoryBackend(), C: new MemoryBackend() }));
    expect(await resumed.restore(saved)).toEqual({ restored: 1, stale: 3 });
    const c = resumedClient(resumed);
    expect(await c.fail({ type: "Tread", fid: held.data, offset: 0n, count: 10 })).toBe(Errno.EIO);
    // Fid 0, the mount's root, is the top folder of this run.
    expect(await c.names("")).toEqual(["B", "C"]);
    await c.writeFile("C/new.txt", "hello");
    expect(await c.readText("C/new.txt")).toBe("hello");
  });

  it("a held file removed or renamed while the guest was suspended errs; a rename by the guest is followed", async () => {
    const a = new MemoryBackend();
    const { server, held } = await guestWithOpenFiles(a);
    const c0 = new TestClient(server);
    for (let i = 0; i < 500; i++) c0.newFid();
    const top = await c0.walk("A");
    await c0.rpc({ type: "Trenameat", olddirfid: top, oldname: "dir", newdirfid: top, newname: "moved" });
    const saved = server.saveState();
    // While suspended, the host removes the log.
    const host = new TestClient(new P9Server(a));
    await host.mount();
    await host.rpc({ type: "Tunlinkat", dirfid: 0, name: "log.txt", flags: 0 });

    const resumed = new P9Server(shares({ A: a }));
    const counts = await resumed.restore(saved);
    expect(counts.stale).toBe(1);
    const c = resumedClient(resumed);
    expect(await c.fail({ type: "Twrite", fid: held.log, offset: 0n, data: text("x") })).toBe(Errno.EIO);
    expect(str((await c.rpc({ type: "Tread", fid: held.data, offset: 0n, count: 100 })).data)).toBe("saved before");
    expect(await c.names("A")).toEqual(["moved"]);
  });

  it("a fid of a file the guest removed is not found again under a name taken since", async () => {
    const a = new MemoryBackend();
    const server = new P9Server(shares({ A: a }));
    const c0 = new TestClient(server);
    await c0.mount();
    await c0.writeFile("A/f", "old");
    const held = await c0.walk("A/f");
    await c0.rpc({ type: "Tlopen", fid: held, flags: RDONLY });
    const dir = await c0.walk("A");
    await c0.rpc({ type: "Tunlinkat", dirfid: dir, name: "f", flags: 0 });
    await c0.writeFile("A/f", "new file, same name");
    const resumed = new P9Server(shares({ A: a }));
    await resumed.restore(server.saveState());
    expect(await resumedClient(resumed).fail({ type: "Tread", fid: held, offset: 0n, count: 100 })).toBe(Errno.EIO);
  });

  it("refuses malformed or hostile tables with a reason, and the server still serves a fresh mount", async () => {
    const a = new MemoryBackend();
    const good = { format: 1, msize: 8192, fids: [{ fid: 0, uid: 0, path: [], scope: "shares" }] };
    const bad: [unknown, RegExp][] = [
      [null, /not an object/],
      ["{}", /not an object/],
      [{ ...good, format: 2 }, /format/],
      [{ ...good, msize: 1 << 30 }, /msize/],
      [{ ...good, fids: {} }, /fids is not a list/],
      [{ ...good, fids: [{ fid: 0, uid: 0, path: ["A", ".."], scope: "x" }] }, /not one plain name/],
      [{ ...good, fids: [{ fid: 0, uid: 0, path: ["A/../../etc"], scope: "x" }] }, /not one plain name/],
      [{ ...good, fids: [{ fid: 0, uid: 0, path: [""], scope: "x" }] }, /not one plain name/],
      [{ ...good, fids: [{ fid: 0, uid: 0, path: "A", scope: "x" }] }, /path is not a list/],
      [{ ...good, fids: [{ fid: -1, uid: 0, path: [], scope: "x" }] }, /fid is not/],
      [{ ...good, fids: [{ fid: 0xffffffff, uid: 0, path: [], scope: "x" }] }, /NOFID/],
      [{ ...good, fids: [good.fids[0], good.fids[0]] }, /listed twice/],
      [{ ...good, fids: [{ fid: 0, uid: 0, path: [], scope: "x", open: 1.5 }] }, /open flags/],
      [{ ...good, fids: [{ fid: 0, uid: 0, path: [], base: 3, scope: "x" }] }, /base/],
      [{ ...good, fids: Array.from({ length: 9 }, (_, fid) => ({ fid, uid: 0, path: [], scope: "x" })) }, /over the 8/],
      [{ ...good, fids: Array.from({ length: 3 }, (_, fid) => ({ fid, uid: 0, path: [], scope: "x", open: 0 })) }, /open files/],
      [{ ...good, fids: [{ fid: 0, uid: 0, path: Array.from({ length: 3000 }, () => "d"), scope: "x" }] }, /over 2048 names/],
    ];
    for (const [table, why] of bad) {
      const server = new P9Server(shares({ A: a }), { maxFids: 8, maxOpenFiles: 2 });
      expect(() => server.restore(table), JSON.stringify(table)?.slice(0, 80)).toThrow(SessionStateError);
      expect(() => server.restore(table)).toThrow(why);
      const c = new TestClient(server);
      await c.mount();
      expect(await c.names("")).toEqual(["A"]);
    }
    const server = new P9Server(shares({ A: a }), { maxFids: 8, maxOpenFiles: 2 });
    expect(await server.restore(good)).toEqual({ restored: 1, stale: 0 });
  });

  it("a fid with a scope that does not match, or saved without one, is never rebuilt", async () => {
    const a = new MemoryBackend({ identity: "store one" });
    const c0 = new TestClient(new P9Server(shares({ A: a })));
    await c0.mount();
    await c0.writeFile("A/f", "x");
    const forged = { format: 1, msize: 8192, fids: [
      { fid: 1, uid: 0, path: ["A", "f"], scope: "share \"A\" store two" },
      { fid: 2, uid: 0, path: ["A", "f"], scope: null },
      { fid: 3, uid: 0, path: ["A", "f"], scope: "share \"A\" store one" },
    ] };
    const server = new P9Server(shares({ A: a }));
    expect(await server.restore(forged)).toEqual({ restored: 1, stale: 2 });
  });
});
