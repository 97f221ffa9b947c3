// The 9P service as the host runs it for each guest session (serveP9 over a frame pipe, the
// guest's shares from its settings): the session caps on fids and open files that keep one
// guest from taking every host descriptor, and each share's read-only flag and quota.

import { lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Errno } from "../../../core/p9/errno.js";
import { decodeMessage, encodeMessage, NOFID, NOTAG, OpenFlags, type RMessage, type TMessage } from "../../../core/p9/messages.js";
import { MemoryBackend } from "../../../core/p9/memory-backend.js";
import type { P9Backend } from "../../../core/p9/backend.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import { P9_SESSION_LIMITS, serveP9, sharesBackend } from "../../../main/host/p9-service.js";
import { hostDescriptors } from "../../../main/p9/host-dir.js";

const base = mkdtempSync(join(tmpdir(), "unmachine-p9-service-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

type Request = TMessage extends infer M ? (M extends TMessage ? Omit<M, "tag"> : never) : never;

/** A guest end of the pipe: one request at a time, replies decoded. */
function guestOf(backend: P9Backend): { send: (m: Request) => Promise<RMessage>; dispose: () => void } {
  const [guest, host] = createPipePair();
  const service = serveP9(backend, host);
  const waiting: ((reply: RMessage) => void)[] = [];
  guest.onFrame((frame) => waiting.shift()?.(decodeMessage(frame) as RMessage));
  let tag = 1;
  return {
    send: (m) => new Promise((resolve) => {
      waiting.push(resolve);
      guest.send(encodeMessage({ ...m, tag: m.type === "Tversion" ? NOTAG : tag++ & 0xffff } as TMessage));
    }),
    dispose: () => service.dispose(),
  };
}

async function mount(send: (m: Request) => Promise<RMessage>): Promise<void> {
  expect(await send({ type: "Tversion", msize: 65536, version: "9P2000.L" })).toMatchObject({ type: "Rversion" });
  expect(await send({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 })).toMatchObject({ type: "Rattach" });
}

describe("9P service", () => {
  it(`caps a session at ${P9_SESSION_LIMITS.maxOpenFiles} open files and ${P9_SESSION_LIMITS.maxFids} fids`, async () => {
    const { maxFids, maxOpenFiles } = P9_SESSION_LIMITS;
    expect(maxOpenFiles).toBeLessThan(maxFids);
    const { send, dispose } = guestOf(new MemoryBackend());
    await mount(send);
    let fid = 1;
    for (; fid <= maxOpenFiles; fid++) {
      await send({ type: "Twalk", fid: 0, newfid: fid, wnames: [] });
      expect(await send({ type: "Tlopen", fid, flags: OpenFlags.RDONLY })).toMatchObject({ type: "Rlopen" });
    }
    await send({ type: "Twalk", fid: 0, newfid: fid, wnames: [] });
    expect(await send({ type: "Tlopen", fid, flags: OpenFlags.RDONLY })).toMatchObject({ type: "Rlerror", ecode: Errno.EMFILE });
    for (fid++; fid < maxFids; fid++) expect((await send({ type: "Twalk", fid: 0, newfid: fid, wnames: [] })).type).toBe("Rwalk");
    expect(await send({ type: "Twalk", fid: 0, newfid: fid, wnames: [] })).toMatchObject({ type: "Rlerror", ecode: Errno.ENFILE });
    await send({ type: "Tclunk", fid: 1 });
    expect(await send({ type: "Twalk", fid: 0, newfid: fid, wnames: [] })).toMatchObject({ type: "Rwalk" });
    expect(await send({ type: "Tlopen", fid: maxOpenFiles + 1, flags: OpenFlags.RDONLY })).toMatchObject({ type: "Rlopen" });
    dispose();
  });

  it("gives every host descriptor back when the session ends", async () => {
    const before = hostDescriptors.held;
    const a = mkdtempSync(join(base, "a-"));
    const b = mkdtempSync(join(base, "b-"));
    writeFileSync(join(a, "f"), "f");
    const { send, dispose } = guestOf(sharesBackend([{ hostPath: a, tag: "a", readOnly: false }, { hostPath: b, tag: "b", readOnly: false }]));
    await mount(send);
    await send({ type: "Twalk", fid: 0, newfid: 1, wnames: ["a", "f"] });
    expect(await send({ type: "Tlopen", fid: 1, flags: OpenFlags.RDWR })).toMatchObject({ type: "Rlopen" });
    await send({ type: "Twalk", fid: 0, newfid: 2, wnames: ["b"] });
    expect(await send({ type: "Tmkdir", dfid: 2, name: "d", mode: 0o40755, gid: 0 })).toMatchObject({ type: "Rmkdir" });
    expect(hostDescriptors.held).toBeGreaterThan(before);
    dispose();
    for (let i = 0; i < 50 && hostDescriptors.held > before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(hostDescriptors.held).toBe(before);
  });

  it("serves the guest's shares with their read-only flag and quota", async () => {
    const ro = mkdtempSync(join(base, "ro-"));
    const small = mkdtempSync(join(base, "small-"));
    writeFileSync(join(ro, "keep"), "keep");
    const { send, dispose } = guestOf(sharesBackend([
      { hostPath: ro, tag: "ro", readOnly: true },
      { hostPath: small, tag: "small", readOnly: false, quotaMiB: 1 / 64 },
    ]));
    await mount(send);
    await send({ type: "Twalk", fid: 0, newfid: 1, wnames: ["ro"] });
    expect(await send({ type: "Tlcreate", fid: 1, name: "new", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 })).toMatchObject({ type: "Rlerror", ecode: Errno.EROFS });
    expect(await send({ type: "Tunlinkat", dirfid: 1, name: "keep", flags: 0 })).toMatchObject({ type: "Rlerror", ecode: Errno.EROFS });
    expect(readdirSync(ro)).toEqual(["keep"]);
    await send({ type: "Twalk", fid: 0, newfid: 2, wnames: ["small"] });
    const fs = await send({ type: "Tstatfs", fid: 2 });
    expect(fs.type === "Rstatfs" && fs.blocks * BigInt(fs.bsize)).toBe(16384n);
    await send({ type: "Tlcreate", fid: 2, name: "big", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 });
    // A short write: the folder, the file's entry and the attribute store take their part of 16 KiB.
    const short = await send({ type: "Twrite", fid: 2, offset: 0n, data: new Uint8Array(20000) });
    const count = short.type === "Rwrite" ? short.count : 0;
    expect(count).toBeGreaterThan(8192);
    expect(count).toBeLessThan(16384);
    expect(await send({ type: "Twrite", fid: 2, offset: BigInt(count), data: new Uint8Array(1) })).toMatchObject({ type: "Rlerror", ecode: Errno.ENOSPC });
    expect(lstatSync(join(small, "big")).size).toBe(count);
    dispose();
  });
});
