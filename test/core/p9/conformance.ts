// The 9P conformance suite every backend runs: a P9Server over the backend, driven with real
// encoded T-messages in the order and with the flags the Linux v9fs client sends them (version,
// attach, walk, lopen/lcreate with open(2) flags, readdir by cookie...), served directly or as a
// share of a SharesBackend. The read-only and quota sections always go through SharesBackend,
// the one place production enforces them. What it asserts is what a guest would notice.

import { afterEach, describe, expect, it } from "vitest";
import type { P9Backend } from "../../../core/p9/backend.js";
import { Errno } from "../../../core/p9/errno.js";
import {
  AT_REMOVEDIR,
  decodeMessage,
  encodeMessage,
  FileMode,
  GetattrMask,
  LockStatus,
  LockType,
  NOFID,
  NOTAG,
  OpenFlags,
  QidType,
  SetattrValid,
  type Dirent,
  type RMessage,
  type TMessage,
} from "../../../core/p9/messages.js";
import { P9Server, type P9ServerOptions } from "../../../core/p9/server.js";
import { SharesBackend, type Share } from "../../../core/p9/shares-backend.js";

export type BackendFactory = () => P9Backend | Promise<P9Backend>;

type Request = TMessage extends infer M ? (M extends TMessage ? Omit<M, "tag"> : never) : never;
type ReplyTo<T extends string> = T extends `T${infer Rest}` ? Extract<RMessage, { type: `R${Rest}` }> : never;

const MSIZE = 512000;
const ROOT = 0;
const { RDONLY, WRONLY, RDWR, CREAT, TRUNC, APPEND, LARGEFILE, DIRECTORY } = OpenFlags;
/** The tag a backend is served under when the suite goes through SharesBackend. */
const SHARE_TAG = "share";

/** A Linux-like client: numbered tags and fids, typed replies, errors as errno numbers. */
export class TestClient {
  readonly server: P9Server;
  /** What Tattach names: "" for the backend's root, a share's tag for that share. */
  readonly aname: string;
  #tag = 1;
  #fid = 100;

  constructor(server: P9Server, aname = "") {
    this.server = server;
    this.aname = aname;
  }

  newFid(): number {
    return this.#fid++;
  }

  async send(request: Request, tag?: number): Promise<RMessage> {
    const frame = encodeMessage({ ...request, tag: tag ?? this.#nextTag() } as TMessage);
    const reply = decodeMessage(await this.server.handle(frame));
    if (reply.type.startsWith("T")) throw new Error(`server answered with a T-message: ${reply.type}`);
    return reply as RMessage;
  }

  #nextTag(): number {
    const tag = this.#tag;
    this.#tag = (this.#tag % 0xfffe) + 1;
    return tag;
  }

  /** Sends and expects success: the reply named after the request. */
  async rpc<R extends Request>(request: R): Promise<ReplyTo<R["type"]>> {
    const reply = await this.send(request);
    if (reply.type === "Rlerror") throw new Error(`${request.type} failed with errno ${reply.ecode}`);
    expect(reply.type).toBe(`R${request.type.slice(1)}`);
    return reply as ReplyTo<R["type"]>;
  }

  /** Sends and expects Rlerror: the errno. */
  async fail(request: Request): Promise<number> {
    const reply = await this.send(request);
    if (reply.type !== "Rlerror") throw new Error(`${request.type} was expected to fail but got ${reply.type}`);
    return reply.ecode;
  }

  /** Tversion as Linux sends it (tag NOTAG) and Tattach of uid `uid` on fid 0. */
  async mount(uid = 0): Promise<void> {
    const version = await this.send({ type: "Tversion", msize: MSIZE, version: "9P2000.L" }, NOTAG);
    expect(version).toMatchObject({ type: "Rversion", tag: NOTAG, version: "9P2000.L" });
    await this.rpc({ type: "Tattach", fid: ROOT, afid: NOFID, uname: "", aname: this.aname, nUname: uid });
  }

  /** A new fid for `path` ("" is the root), or the errno of the walk. */
  async walk(path: string, from = ROOT): Promise<number> {
    const names = path.split("/").filter((p) => p !== "");
    const fid = this.newFid();
    const reply = await this.rpc({ type: "Twalk", fid: from, newfid: fid, wnames: names });
    if (reply.wqids.length !== names.length) throw new Error(`walk of ${path} stopped after ${reply.wqids.length} names`);
    return fid;
  }

  async clunk(fid: number): Promise<void> {
    await this.rpc({ type: "Tclunk", fid });
  }

  /** creat(2) + write(2) + close(2), as v9fs sends them. */
  async writeFile(path: string, data: Uint8Array | string, mode = 0o644, gid = 0): Promise<void> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const slash = path.lastIndexOf("/");
    const fid = await this.walk(path.slice(0, Math.max(0, slash)));
    await this.rpc({ type: "Tlcreate", fid, name: path.slice(slash + 1), flags: WRONLY | CREAT | TRUNC | LARGEFILE, mode: FileMode.REG | mode, gid });
    for (let at = 0; at < bytes.length || at === 0; ) {
      const chunk = bytes.subarray(at, at + 65536);
      const written = await this.rpc({ type: "Twrite", fid, offset: BigInt(at), data: chunk });
      expect(written.count).toBe(chunk.length);
      at += chunk.length;
      if (chunk.length === 0) break;
    }
    await this.clunk(fid);
  }

  async readFile(path: string, chunk = 65536): Promise<Uint8Array> {
    const fid = await this.walk(path);
    await this.rpc({ type: "Tlopen", fid, flags: RDONLY | LARGEFILE });
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (;;) {
      const { data } = await this.rpc({ type: "Tread", fid, offset: BigInt(offset), count: chunk });
      if (data.length === 0) break;
      parts.push(data.slice());
      offset += data.length;
    }
    await this.clunk(fid);
    const all = new Uint8Array(offset);
    let at = 0;
    for (const part of parts) {
      all.set(part, at);
      at += part.length;
    }
    return all;
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.readFile(path));
  }

  async getattr(path: string): Promise<ReplyTo<"Tgetattr">> {
    const fid = await this.walk(path);
    try {
      return await this.rpc({ type: "Tgetattr", fid, requestMask: GetattrMask.ALL });
    } finally {
      await this.clunk(fid);
    }
  }

  /** opendir + getdents until empty, `count` bytes a call: the entries, cookies checked. */
  async list(path: string, count = 8192): Promise<Dirent[]> {
    const fid = await this.walk(path);
    await this.rpc({ type: "Tlopen", fid, flags: RDONLY | LARGEFILE | DIRECTORY });
    const all: Dirent[] = [];
    let offset = 0n;
    for (;;) {
      const { entries } = await this.rpc({ type: "Treaddir", fid, offset, count });
      if (entries.length === 0) break;
      all.push(...entries);
      offset = entries[entries.length - 1]!.offset;
    }
    await this.clunk(fid);
    return all;
  }

  async names(path: string): Promise<string[]> {
    return (await this.list(path)).map((e) => e.name).filter((n) => n !== "." && n !== "..").sort();
  }

  async mkdir(path: string, mode = 0o755, gid = 0): Promise<void> {
    const slash = path.lastIndexOf("/");
    const dfid = await this.walk(path.slice(0, Math.max(0, slash)));
    await this.rpc({ type: "Tmkdir", dfid, name: path.slice(slash + 1), mode: FileMode.DIR | mode, gid });
    await this.clunk(dfid);
  }

  /** Everything a guest can see under `path`: type, mode, owner, size, contents, targets. */
  async snapshot(path = ""): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const name of await this.names(path)) {
      const child = path ? `${path}/${name}` : name;
      const a = await this.getattr(child);
      let what = `${a.mode.toString(8)} ${a.uid}:${a.gid} n${a.nlink} s${a.size}`;
      if ((a.mode & FileMode.TYPE) === FileMode.REG) what += ` "${await this.readText(child)}"`;
      if ((a.mode & FileMode.TYPE) === FileMode.LNK) {
        const fid = await this.walk(child);
        what += ` -> ${(await this.rpc({ type: "Treadlink", fid })).target}`;
        await this.clunk(fid);
      }
      out[child] = what;
      if ((a.mode & FileMode.TYPE) === FileMode.DIR) Object.assign(out, await this.snapshot(child));
    }
    return out;
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

export interface ConformanceOptions {
  /** Serve the backend as a share of a SharesBackend (as the guest's shares are served) and
   * attach to that share, instead of serving it directly (as a guest's root folder is). */
  readonly throughShares?: boolean;
}

/** A share's policy: what SharesBackend enforces. */
type Policy = Pick<Share, "readOnly" | "quotaBytes">;

/**
 * Registers the suite for one backend; `makeBackend` gives a fresh, empty share each call.
 * The read-only and quota sections serve it as a share with that policy whatever `options` say.
 */
export function runConformance(name: string, makeFresh: BackendFactory, options: ConformanceOptions = {}): void {
  // Every backend a test made gives back what it holds on the host when the test ends.
  const made: P9Backend[] = [];
  const makeBackend = async (): Promise<P9Backend> => {
    const backend = await makeFresh();
    made.push(backend);
    return backend;
  };
  const servers: P9Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.dispose();
      await server.closed;
    }
    for (const backend of made.splice(0)) await backend.close?.().catch(() => undefined);
  });

  /** A client of `backend`, not yet mounted; with a policy, always through SharesBackend. */
  function serve(backend: P9Backend, server: P9ServerOptions = {}, policy?: Policy): TestClient {
    const track = (made: P9Server): P9Server => {
      servers.push(made);
      return made;
    };
    if (!policy && !options.throughShares) return new TestClient(track(new P9Server(backend, server)));
    const share: Share = { tag: SHARE_TAG, backend, readOnly: policy?.readOnly ?? false };
    if (policy?.quotaBytes !== undefined) share.quotaBytes = policy.quotaBytes;
    return new TestClient(track(new P9Server(new SharesBackend([share]), server)), SHARE_TAG);
  }

  async function mounted(server: P9ServerOptions = {}, uid = 0, policy?: Policy): Promise<{ c: TestClient; backend: P9Backend }> {
    const backend = await makeBackend();
    const c = serve(backend, server, policy);
    await c.mount(uid);
    return { c, backend };
  }

  describe(`9P conformance: ${name}`, () => {
    describe("session", () => {
      it("negotiates 9P2000.L and an msize no larger than asked or allowed", async () => {
        const c = serve(await makeBackend(), { maxMsize: 65536 });
        const small = await c.send({ type: "Tversion", msize: 8192, version: "9P2000.L" }, NOTAG);
        expect(small).toMatchObject({ type: "Rversion", tag: NOTAG, msize: 8192, version: "9P2000.L" });
        const big = await c.send({ type: "Tversion", msize: MSIZE, version: "9P2000.L" }, NOTAG);
        expect(big).toMatchObject({ msize: 65536 });
        expect(c.server.msize).toBe(65536);
      });

      it("answers an unknown version with \"unknown\" and refuses requests before a version", async () => {
        const c = serve(await makeBackend());
        expect(await c.fail({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 })).toBe(Errno.EPROTO);
        const reply = await c.send({ type: "Tversion", msize: MSIZE, version: "9P2000.u" }, NOTAG);
        expect(reply).toMatchObject({ type: "Rversion", version: "unknown" });
        await c.mount();
      });

      it("attaches to a directory root and refuses authentication", async () => {
        const { c } = await mounted();
        const root = await c.rpc({ type: "Tgetattr", fid: ROOT, requestMask: GetattrMask.BASIC });
        expect(root.qid.type & QidType.DIR).toBeTruthy();
        expect(root.mode & FileMode.TYPE).toBe(FileMode.DIR);
        expect(root.valid & GetattrMask.BASIC).toBe(GetattrMask.BASIC);
        expect(await c.fail({ type: "Tauth", afid: 1, uname: "", aname: "", nUname: 0 })).toBe(Errno.ENOTSUP);
        expect(await c.fail({ type: "Tattach", fid: ROOT, afid: NOFID, uname: "", aname: "", nUname: 0 })).toBe(Errno.EBADF);
      });

      it("answers malformed frames with Rlerror and keeps serving", async () => {
        const { c } = await mounted();
        const frame = encodeMessage({ type: "Twalk", tag: 7, fid: ROOT, newfid: 5, wnames: ["a"] });
        for (const broken of [frame.subarray(0, frame.length - 1), frame.subarray(0, 9), new Uint8Array([1, 2, 3])]) {
          const reply = decodeMessage(await c.server.handle(broken));
          expect(reply.type).toBe("Rlerror");
          expect(reply.tag).toBe(broken.length >= 7 ? 7 : NOTAG);
        }
        const lying = frame.slice();
        lying[0] = frame.length + 5;
        expect(decodeMessage(await c.server.handle(lying))).toMatchObject({ type: "Rlerror", tag: 7, ecode: Errno.EPROTO });
        const legacy = encodeMessage({ type: "Tclunk", tag: 9, fid: ROOT });
        legacy[4] = 112; // Topen of 9P2000: not part of 9P2000.L
        expect(decodeMessage(await c.server.handle(legacy))).toMatchObject({ type: "Rlerror", tag: 9, ecode: Errno.ENOTSUP });
        const reply = decodeMessage(await c.server.handle(encodeMessage({ type: "Rclunk", tag: 3 })));
        expect(reply).toMatchObject({ type: "Rlerror", tag: 3, ecode: Errno.EPROTO });
        expect((await c.getattr("")).mode & FileMode.TYPE).toBe(FileMode.DIR);
      });

      it("clunks fids and answers flush", async () => {
        const { c } = await mounted();
        const fid = await c.walk("");
        await c.clunk(fid);
        expect(await c.fail({ type: "Tgetattr", fid, requestMask: GetattrMask.BASIC })).toBe(Errno.EBADF);
        expect(await c.fail({ type: "Tclunk", fid })).toBe(Errno.EBADF);
        await c.rpc({ type: "Tflush", oldtag: 1234 });
        // A flush sent while a request is in flight is answered after it.
        const order: string[] = [];
        const slow = c.send({ type: "Tgetattr", fid: ROOT, requestMask: GetattrMask.BASIC }, 40).then((r) => order.push(r.type));
        const flush = c.send({ type: "Tflush", oldtag: 40 }, 41).then((r) => order.push(r.type));
        await Promise.all([slow, flush]);
        expect(order).toEqual(["Rgetattr", "Rflush"]);
      });

      it("resets every fid on a new Tversion", async () => {
        const { c } = await mounted();
        await c.send({ type: "Tversion", msize: MSIZE, version: "9P2000.L" }, NOTAG);
        expect(await c.fail({ type: "Tgetattr", fid: ROOT, requestMask: GetattrMask.BASIC })).toBe(Errno.EBADF);
        expect(c.server.fidCount).toBe(0);
      });
    });

    describe("files", () => {
      it("creates, writes and reads back a file with the creator's uid and the asked gid", async () => {
        const { c } = await mounted({}, 1000);
        await c.writeFile("hello.txt", "hello, guest\n", 0o640, 100);
        expect(await c.readText("hello.txt")).toBe("hello, guest\n");
        const a = await c.getattr("hello.txt");
        expect(a.mode).toBe(FileMode.REG | 0o640);
        expect(a.uid).toBe(1000);
        expect(a.gid).toBe(100);
        expect(a.size).toBe(13n);
        expect(a.nlink).toBe(1n);
        expect(a.qid.type).toBe(QidType.FILE);
      });

      it("moves large files in msize-bounded pieces and reads nothing past the end", async () => {
        const { c } = await mounted();
        const big = new Uint8Array(600_000).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
        await c.writeFile("big.bin", big);
        expect(Buffer.compare(await c.readFile("big.bin", 100_000), big)).toBe(0);
        const fid = await c.walk("big.bin");
        await c.rpc({ type: "Tlopen", fid, flags: RDONLY });
        const whole = await c.rpc({ type: "Tread", fid, offset: 0n, count: 0xffffffff });
        expect(whole.data.length).toBe(MSIZE - 11);
        const past = await c.rpc({ type: "Tread", fid, offset: 600_000n, count: 100 });
        expect(past.data.length).toBe(0);
        await c.clunk(fid);
      });

      it("writes at offsets, leaving zeros in a hole", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "abc");
        const fid = await c.walk("f");
        await c.rpc({ type: "Tlopen", fid, flags: RDWR });
        await c.rpc({ type: "Twrite", fid, offset: 6n, data: text("xyz") });
        await c.rpc({ type: "Twrite", fid, offset: 1n, data: text("B") });
        await c.clunk(fid);
        expect(await c.readFile("f")).toEqual(new Uint8Array([97, 66, 99, 0, 0, 0, 120, 121, 122]));
      });

      it("appends every O_APPEND write at the end, whatever offset each opener sends", async () => {
        // Two guest processes running `echo A >> log` and `echo B >> log` at once: each v9fs
        // open file writes at the size it last saw, so the offsets go stale.
        const { c } = await mounted();
        await c.writeFile("log", "start\n");
        const a = await c.walk("log");
        await c.rpc({ type: "Tlopen", fid: a, flags: WRONLY | APPEND | LARGEFILE });
        const b = await c.walk("");
        await c.rpc({ type: "Tlcreate", fid: b, name: "log", flags: WRONLY | CREAT | APPEND | LARGEFILE, mode: 0o100644, gid: 0 });
        const expected = ["start\n"];
        let seenByA = 6;
        let seenByB = 6;
        for (let i = 0; i < 5; i++) {
          const lineA = `A${i}\n`;
          const lineB = `B${i} from the other one\n`;
          expect((await c.rpc({ type: "Twrite", fid: a, offset: BigInt(seenByA), data: text(lineA) })).count).toBe(lineA.length);
          expect((await c.rpc({ type: "Twrite", fid: b, offset: BigInt(seenByB), data: text(lineB) })).count).toBe(lineB.length);
          seenByA += lineA.length;
          seenByB += lineB.length;
          expected.push(lineA, lineB);
        }
        // A read-write opener with APPEND still reads where it asks.
        const rw = await c.walk("log");
        await c.rpc({ type: "Tlopen", fid: rw, flags: RDWR | APPEND });
        await c.rpc({ type: "Twrite", fid: rw, offset: 0n, data: text("end\n") });
        expected.push("end\n");
        expect(new TextDecoder().decode((await c.rpc({ type: "Tread", fid: rw, offset: 0n, count: 5 })).data)).toBe("start");
        for (const fid of [a, b, rw]) await c.clunk(fid);
        expect(await c.readText("log")).toBe(expected.join(""));
        // Without APPEND the offset is obeyed.
        const plain = await c.walk("log");
        await c.rpc({ type: "Tlopen", fid: plain, flags: WRONLY });
        await c.rpc({ type: "Twrite", fid: plain, offset: 0n, data: text("START") });
        await c.clunk(plain);
        expect(await c.readText("log")).toBe(`START\n${expected.slice(1).join("")}`);
      });

      it("truncates on open with O_TRUNC and honours the open mode", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "contents");
        const ro = await c.walk("f");
        await c.rpc({ type: "Tlopen", fid: ro, flags: RDONLY });
        expect(await c.fail({ type: "Twrite", fid: ro, offset: 0n, data: text("x") })).toBe(Errno.EBADF);
        const wo = await c.walk("f");
        await c.rpc({ type: "Tlopen", fid: wo, flags: WRONLY | TRUNC });
        expect(await c.fail({ type: "Tread", fid: wo, offset: 0n, count: 10 })).toBe(Errno.EBADF);
        expect(await c.fail({ type: "Tlopen", fid: wo, flags: RDONLY })).toBe(Errno.EINVAL);
        await c.clunk(ro);
        await c.clunk(wo);
        expect((await c.getattr("f")).size).toBe(0n);
        const closed = await c.walk("f");
        expect(await c.fail({ type: "Tread", fid: closed, offset: 0n, count: 1 })).toBe(Errno.EBADF);
      });

      it("refuses O_EXCL creation over an existing name, opens it without O_EXCL, and needs a directory", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "existing");
        const dir = await c.walk("");
        expect(await c.fail({ type: "Tlcreate", fid: dir, name: "f", flags: WRONLY | CREAT | OpenFlags.EXCL, mode: 0o100644, gid: 0 })).toBe(Errno.EEXIST);
        const again = await c.walk("");
        await c.rpc({ type: "Tlcreate", fid: again, name: "f", flags: RDWR | CREAT | TRUNC, mode: 0o100600, gid: 0 });
        await c.rpc({ type: "Twrite", fid: again, offset: 0n, data: text("new") });
        await c.clunk(again);
        expect(await c.readText("f")).toBe("new");
        expect((await c.getattr("f")).mode).toBe(FileMode.REG | 0o644);
        const file = await c.walk("f");
        expect(await c.fail({ type: "Tlcreate", fid: file, name: "g", flags: WRONLY | CREAT, mode: 0o100644, gid: 0 })).toBe(Errno.ENOTDIR);
        expect(await c.fail({ type: "Tmkdir", dfid: dir, name: "f", mode: 0o40755, gid: 0 })).toBe(Errno.EEXIST);
      });

      it("makes device nodes and fifos with mknod", async () => {
        const { c } = await mounted();
        const dir = await c.walk("");
        const chr = await c.rpc({ type: "Tmknod", dfid: dir, name: "null", mode: FileMode.CHR | 0o666, major: 1, minor: 3, gid: 0 });
        expect(chr.qid.type).toBe(QidType.FILE);
        await c.rpc({ type: "Tmknod", dfid: dir, name: "pipe", mode: FileMode.FIFO | 0o600, major: 0, minor: 0, gid: 0 });
        const a = await c.getattr("null");
        expect(a.mode).toBe(FileMode.CHR | 0o666);
        expect(a.rdev).toBe(0x103n);
        expect((await c.getattr("pipe")).mode).toBe(FileMode.FIFO | 0o600);
        const types = Object.fromEntries((await c.list("")).map((e) => [e.name, e.type]));
        expect(types).toMatchObject({ null: 2, pipe: 1 });
      });

      it("fsyncs open files only", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "data");
        const fid = await c.walk("f");
        expect(await c.fail({ type: "Tfsync", fid, datasync: 0 })).toBe(Errno.EBADF);
        await c.rpc({ type: "Tlopen", fid, flags: RDWR });
        await c.rpc({ type: "Tfsync", fid, datasync: 0 });
        await c.rpc({ type: "Tfsync", fid, datasync: 1 });
      });

      it("reports filesystem statistics as a 9p mount", async () => {
        const { c } = await mounted();
        const fs = await c.rpc({ type: "Tstatfs", fid: ROOT });
        expect(fs.fsType).toBe(0x01021997);
        expect(fs.bsize).toBeGreaterThan(0);
        expect(fs.blocks).toBeGreaterThan(0n);
        expect(fs.bfree).toBeLessThanOrEqual(fs.blocks);
        expect(fs.namelen).toBe(255);
      });
    });

    describe("walk", () => {
      it("walks several names at once, clones with none and stops at the first missing name", async () => {
        const { c } = await mounted();
        await c.mkdir("a");
        await c.mkdir("a/b");
        await c.writeFile("a/b/c", "deep");
        const fid = c.newFid();
        const full = await c.rpc({ type: "Twalk", fid: ROOT, newfid: fid, wnames: ["a", "b", "c"] });
        expect(full.wqids.map((q) => q.type)).toEqual([QidType.DIR, QidType.DIR, QidType.FILE]);
        const clone = c.newFid();
        expect((await c.rpc({ type: "Twalk", fid, newfid: clone, wnames: [] })).wqids).toEqual([]);
        expect(await c.readText("a/b/c")).toBe("deep");
        const partial = c.newFid();
        const some = await c.rpc({ type: "Twalk", fid: ROOT, newfid: partial, wnames: ["a", "nope", "c"] });
        expect(some.wqids.length).toBe(1);
        expect(await c.fail({ type: "Tclunk", fid: partial })).toBe(Errno.EBADF);
        expect(await c.fail({ type: "Twalk", fid: ROOT, newfid: c.newFid(), wnames: ["nope"] })).toBe(Errno.ENOENT);
        expect(await c.fail({ type: "Twalk", fid, newfid: c.newFid(), wnames: ["x"] })).toBe(Errno.ENOTDIR);
        expect(await c.fail({ type: "Twalk", fid: ROOT, newfid: fid, wnames: ["a"] })).toBe(Errno.EBADF);
      });

      it("walks in place when newfid is fid", async () => {
        const { c } = await mounted();
        await c.mkdir("d");
        const fid = await c.walk("");
        await c.rpc({ type: "Twalk", fid, newfid: fid, wnames: ["d"] });
        expect((await c.rpc({ type: "Tgetattr", fid, requestMask: GetattrMask.BASIC })).mode & FileMode.TYPE).toBe(FileMode.DIR);
      });

      it("refuses \"..\", \".\", \"\", \"/\" and NUL in names, even from a subdirectory", async () => {
        const { c } = await mounted();
        await c.mkdir("sub");
        const sub = await c.walk("sub");
        for (const [name, errno] of [["..", Errno.ENOENT], [".", Errno.ENOENT], ["", Errno.ENOENT], ["/", Errno.EINVAL],
          ["sub/..", Errno.EINVAL], ["a\0b", Errno.EINVAL], ["x".repeat(256), Errno.ENAMETOOLONG]] as const) {
          expect(await c.fail({ type: "Twalk", fid: ROOT, newfid: c.newFid(), wnames: [name] }), name).toBe(errno);
          expect(await c.fail({ type: "Twalk", fid: sub, newfid: c.newFid(), wnames: [name] }), name).toBe(errno);
        }
        // A bad name after a good one ends the walk there.
        const some = await c.rpc({ type: "Twalk", fid: ROOT, newfid: c.newFid(), wnames: ["sub", ".."] });
        expect(some.wqids.length).toBe(1);
        const dir = await c.walk("");
        expect(await c.fail({ type: "Tlcreate", fid: dir, name: "..", flags: WRONLY | CREAT, mode: 0o100644, gid: 0 })).toBe(Errno.EEXIST);
        expect(await c.fail({ type: "Tmkdir", dfid: ROOT, name: "a/b", mode: 0o40755, gid: 0 })).toBe(Errno.EINVAL);
        expect(await c.fail({ type: "Tunlinkat", dirfid: ROOT, name: "..", flags: AT_REMOVEDIR })).toBe(Errno.EINVAL);
        expect(await c.fail({ type: "Trenameat", olddirfid: ROOT, oldname: "sub", newdirfid: ROOT, newname: "../x" })).toBe(Errno.EINVAL);
        expect(await c.names("")).toEqual(["sub"]);
      });
    });

    describe("directories", () => {
      it("lists a large directory across several readdir calls, each entry once, by cookie", async () => {
        const { c } = await mounted();
        await c.mkdir("many");
        const names: string[] = [];
        for (let i = 0; i < 60; i++) {
          const name = `file-${String(i).padStart(3, "0")}-${"x".repeat(i % 17)}`;
          names.push(name);
          await c.writeFile(`many/${name}`, String(i));
        }
        await c.mkdir("many/subdir");
        const entries = await c.list("many", 300);
        const seen = entries.map((e) => e.name);
        expect(seen.filter((n) => n === ".").length).toBe(1);
        expect(seen.filter((n) => n === "..").length).toBe(1);
        expect(seen.filter((n) => n !== "." && n !== "..").sort()).toEqual([...names, "subdir"].sort());
        const byName = new Map(entries.map((e) => [e.name, e]));
        expect(byName.get("subdir")!.type).toBe(4);
        expect(byName.get(names[0]!)!.type).toBe(8);
        expect(byName.get(".")!.type).toBe(4);
        expect(new Set(entries.map((e) => e.offset)).size).toBe(entries.length);
      });

      it("resumes at any cookie and restarts at offset 0", async () => {
        const { c } = await mounted();
        for (const n of ["a", "b", "c", "d"]) await c.writeFile(n, n);
        const fid = await c.walk("");
        await c.rpc({ type: "Tlopen", fid, flags: RDONLY | DIRECTORY });
        const first = await c.rpc({ type: "Treaddir", fid, offset: 0n, count: 8192 });
        expect(first.entries.length).toBe(6);
        const third = first.entries[2]!;
        const rest = await c.rpc({ type: "Treaddir", fid, offset: third.offset, count: 8192 });
        expect(rest.entries.map((e) => e.name)).toEqual(first.entries.slice(3).map((e) => e.name));
        const end = await c.rpc({ type: "Treaddir", fid, offset: first.entries[5]!.offset, count: 8192 });
        expect(end.entries).toEqual([]);
        await c.writeFile("e", "e");
        const again = await c.rpc({ type: "Treaddir", fid, offset: 0n, count: 8192 });
        expect(again.entries.length).toBe(7);
        const tiny = await c.rpc({ type: "Treaddir", fid, offset: 0n, count: 10 });
        expect(tiny.entries).toEqual([]);
      });

      it("needs an open directory to read", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "x");
        const dir = await c.walk("");
        expect(await c.fail({ type: "Treaddir", fid: dir, offset: 0n, count: 8192 })).toBe(Errno.EBADF);
        const file = await c.walk("f");
        await c.rpc({ type: "Tlopen", fid: file, flags: RDONLY });
        expect(await c.fail({ type: "Treaddir", fid: file, offset: 0n, count: 8192 })).toBe(Errno.ENOTDIR);
        const root = await c.walk("");
        expect(await c.fail({ type: "Tlopen", fid: root, flags: WRONLY })).toBe(Errno.EISDIR);
      });

      it("makes nested directories with mode and owner, and counts their links", async () => {
        const { c } = await mounted({}, 500);
        await c.mkdir("top", 0o750, 50);
        await c.mkdir("top/a");
        await c.mkdir("top/b");
        const top = await c.getattr("top");
        expect(top.mode).toBe(FileMode.DIR | 0o750);
        expect(top.uid).toBe(500);
        expect(top.gid).toBe(50);
        expect(top.qid.type).toBe(QidType.DIR);
        expect(top.nlink).toBe(4n);
        expect(await c.names("top")).toEqual(["a", "b"]);
      });
    });

    describe("links", () => {
      it("makes symlinks the guest resolves; the server never follows them", async () => {
        const { c } = await mounted();
        await c.mkdir("dir");
        await c.writeFile("dir/target", "through the link");
        const root = await c.walk("");
        const made = await c.rpc({ type: "Tsymlink", fid: root, name: "link", symtgt: "dir/target", gid: 0 });
        expect(made.qid.type).toBe(QidType.SYMLINK);
        await c.rpc({ type: "Tsymlink", fid: root, name: "dirlink", symtgt: "dir", gid: 0 });
        await c.rpc({ type: "Tsymlink", fid: root, name: "escape", symtgt: "../../../../etc/passwd", gid: 0 });
        const link = await c.walk("link");
        expect((await c.rpc({ type: "Treadlink", fid: link })).target).toBe("dir/target");
        expect((await c.getattr("link")).mode & FileMode.TYPE).toBe(FileMode.LNK);
        expect((await c.getattr("escape")).size).toBe(BigInt("../../../../etc/passwd".length));
        expect(await c.fail({ type: "Tlopen", fid: link, flags: RDONLY })).toBe(Errno.ELOOP);
        // Walking through a symlink stops at it: the guest must read the link and walk its target.
        const through = c.newFid();
        expect((await c.rpc({ type: "Twalk", fid: ROOT, newfid: through, wnames: ["dirlink", "target"] })).wqids.length).toBe(1);
        expect(await c.fail({ type: "Tclunk", fid: through })).toBe(Errno.EBADF);
        const dirlink = await c.walk("dirlink");
        expect(await c.fail({ type: "Twalk", fid: dirlink, newfid: c.newFid(), wnames: ["target"] })).toBe(Errno.ENOTDIR);
        const escape = await c.walk("escape");
        expect(await c.fail({ type: "Tlopen", fid: escape, flags: RDONLY })).toBe(Errno.ELOOP);
        expect(await c.fail({ type: "Treadlink", fid: root })).toBe(Errno.EINVAL);
        expect(await c.fail({ type: "Tsymlink", fid: root, name: "empty", symtgt: "", gid: 0 })).toBe(Errno.ENOENT);
        const types = Object.fromEntries((await c.list("")).map((e) => [e.name, e.type]));
        expect(types).toMatchObject({ link: 10, dirlink: 10, dir: 4 });
      });

      it("hard-links files, sharing contents and counting names", async () => {
        const { c } = await mounted();
        await c.writeFile("one", "shared");
        await c.mkdir("d");
        const dir = await c.walk("d");
        const file = await c.walk("one");
        await c.rpc({ type: "Tlink", dfid: dir, fid: file, name: "two" });
        expect((await c.getattr("one")).nlink).toBe(2n);
        expect((await c.getattr("d/two")).qid.path).toBe((await c.getattr("one")).qid.path);
        const writer = await c.walk("d/two");
        await c.rpc({ type: "Tlopen", fid: writer, flags: WRONLY });
        await c.rpc({ type: "Twrite", fid: writer, offset: 0n, data: text("SH") });
        await c.clunk(writer);
        expect(await c.readText("one")).toBe("SHared");
        await c.rpc({ type: "Tunlinkat", dirfid: ROOT, name: "one", flags: 0 });
        expect((await c.getattr("d/two")).nlink).toBe(1n);
        expect(await c.readText("d/two")).toBe("SHared");
        expect(await c.fail({ type: "Tlink", dfid: ROOT, fid: dir, name: "dirlink" })).toBe(Errno.EPERM);
        expect(await c.fail({ type: "Tlink", dfid: dir, fid: await c.walk("d/two"), name: "two" })).toBe(Errno.EEXIST);
      });
    });

    describe("rename", () => {
      it("renames files and directories with renameat, replacing a file target", async () => {
        const { c } = await mounted();
        await c.mkdir("from");
        await c.mkdir("to");
        await c.writeFile("from/f", "moved");
        await c.writeFile("to/old", "replaced");
        await c.mkdir("from/sub");
        await c.writeFile("from/sub/inner", "inner");
        const from = await c.walk("from");
        const to = await c.walk("to");
        await c.rpc({ type: "Trenameat", olddirfid: from, oldname: "f", newdirfid: to, newname: "old" });
        await c.rpc({ type: "Trenameat", olddirfid: from, oldname: "sub", newdirfid: to, newname: "sub2" });
        expect(await c.names("from")).toEqual([]);
        expect(await c.names("to")).toEqual(["old", "sub2"]);
        expect(await c.readText("to/old")).toBe("moved");
        expect(await c.readText("to/sub2/inner")).toBe("inner");
        expect(await c.fail({ type: "Trenameat", olddirfid: from, oldname: "f", newdirfid: to, newname: "x" })).toBe(Errno.ENOENT);
      });

      it("keeps rename(2)'s rules: no directory into itself, no file over a directory, no dir over a non-empty one", async () => {
        const { c } = await mounted();
        await c.mkdir("d");
        await c.mkdir("d/inner");
        await c.mkdir("full");
        await c.writeFile("full/x", "x");
        await c.writeFile("f", "f");
        const d = await c.walk("d/inner");
        expect(await c.fail({ type: "Trenameat", olddirfid: ROOT, oldname: "d", newdirfid: d, newname: "loop" })).toBe(Errno.EINVAL);
        expect(await c.fail({ type: "Trenameat", olddirfid: ROOT, oldname: "f", newdirfid: ROOT, newname: "d" })).toBe(Errno.EISDIR);
        expect(await c.fail({ type: "Trenameat", olddirfid: ROOT, oldname: "d", newdirfid: ROOT, newname: "f" })).toBe(Errno.ENOTDIR);
        expect(await c.fail({ type: "Trenameat", olddirfid: ROOT, oldname: "d", newdirfid: ROOT, newname: "full" })).toBe(Errno.ENOTEMPTY);
        await c.mkdir("empty");
        await c.rpc({ type: "Trenameat", olddirfid: ROOT, oldname: "d", newdirfid: ROOT, newname: "empty" });
        await c.rpc({ type: "Trenameat", olddirfid: ROOT, oldname: "f", newdirfid: ROOT, newname: "f" });
        expect(await c.names("")).toEqual(["empty", "f", "full"]);
        expect(await c.names("empty")).toEqual(["inner"]);
      });

      it("keeps fids on a renamed file working, and renames with legacy Trename", async () => {
        const { c } = await mounted();
        await c.mkdir("dir");
        await c.writeFile("dir/file", "still here");
        const open = await c.walk("dir/file");
        await c.rpc({ type: "Tlopen", fid: open, flags: RDONLY });
        const held = await c.walk("dir/file");
        await c.rpc({ type: "Trenameat", olddirfid: ROOT, oldname: "dir", newdirfid: ROOT, newname: "moved" });
        const read = await c.rpc({ type: "Tread", fid: open, offset: 0n, count: 100 });
        expect(new TextDecoder().decode(read.data)).toBe("still here");
        expect((await c.rpc({ type: "Tgetattr", fid: held, requestMask: GetattrMask.BASIC })).size).toBe(10n);
        const root = await c.walk("");
        await c.rpc({ type: "Trename", fid: held, dfid: root, name: "renamed" });
        expect(await c.names("")).toEqual(["moved", "renamed"]);
        expect(await c.names("moved")).toEqual([]);
        expect((await c.rpc({ type: "Tgetattr", fid: held, requestMask: GetattrMask.BASIC })).size).toBe(10n);
        await c.rpc({ type: "Trename", fid: held, dfid: root, name: "again" });
        expect(await c.readText("again")).toBe("still here");
        expect(await c.fail({ type: "Trename", fid: ROOT, dfid: root, name: "x" })).toBe(Errno.EBUSY);
      });
    });

    describe("remove", () => {
      it("unlinks files and empty directories with unlinkat's rules", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "x");
        await c.mkdir("d");
        await c.mkdir("full");
        await c.writeFile("full/x", "x");
        expect(await c.fail({ type: "Tunlinkat", dirfid: ROOT, name: "f", flags: AT_REMOVEDIR })).toBe(Errno.ENOTDIR);
        expect(await c.fail({ type: "Tunlinkat", dirfid: ROOT, name: "d", flags: 0 })).toBe(Errno.EISDIR);
        expect(await c.fail({ type: "Tunlinkat", dirfid: ROOT, name: "full", flags: AT_REMOVEDIR })).toBe(Errno.ENOTEMPTY);
        expect(await c.fail({ type: "Tunlinkat", dirfid: ROOT, name: "nope", flags: 0 })).toBe(Errno.ENOENT);
        await c.rpc({ type: "Tunlinkat", dirfid: ROOT, name: "f", flags: 0 });
        await c.rpc({ type: "Tunlinkat", dirfid: ROOT, name: "d", flags: AT_REMOVEDIR });
        expect(await c.names("")).toEqual(["full"]);
      });

      it("keeps an unlinked open file readable through its fid", async () => {
        const { c } = await mounted();
        await c.writeFile("tmp", "ghost");
        const fid = await c.walk("tmp");
        await c.rpc({ type: "Tlopen", fid, flags: RDWR });
        await c.rpc({ type: "Tunlinkat", dirfid: ROOT, name: "tmp", flags: 0 });
        expect(await c.names("")).toEqual([]);
        const data = await c.rpc({ type: "Tread", fid, offset: 0n, count: 100 });
        expect(new TextDecoder().decode(data.data)).toBe("ghost");
        const a = await c.rpc({ type: "Tgetattr", fid, requestMask: GetattrMask.BASIC });
        expect(a.nlink).toBe(0n);
        expect(a.size).toBe(5n);
      });

      it("truncates and chmods an open file through its fid after its name is gone", async () => {
        const { c } = await mounted();
        const dir = await c.walk("");
        await c.rpc({ type: "Tlcreate", fid: dir, name: "scratch", flags: RDWR | CREAT, mode: 0o100600, gid: 0 });
        await c.rpc({ type: "Tunlinkat", dirfid: ROOT, name: "scratch", flags: 0 });
        const none = { mode: 0, uid: 0, gid: 0, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };
        await c.rpc({ type: "Tsetattr", fid: dir, valid: SetattrValid.SIZE, ...none, size: 4096n });
        await c.rpc({ type: "Tsetattr", fid: dir, valid: SetattrValid.MODE, ...none, size: 0n, mode: 0o640 });
        const a = await c.rpc({ type: "Tgetattr", fid: dir, requestMask: GetattrMask.BASIC });
        expect([a.size, a.mode, a.nlink]).toEqual([4096n, FileMode.REG | 0o640, 0n]);
        expect((await c.rpc({ type: "Tread", fid: dir, offset: 4000n, count: 200 })).data).toEqual(new Uint8Array(96));
      });

      it("removes with legacy Tremove, which clunks the fid even when it fails", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "x");
        await c.mkdir("full");
        await c.writeFile("full/x", "x");
        const f = await c.walk("f");
        await c.rpc({ type: "Tremove", fid: f });
        expect(await c.fail({ type: "Tclunk", fid: f })).toBe(Errno.EBADF);
        const full = await c.walk("full");
        expect(await c.fail({ type: "Tremove", fid: full })).toBe(Errno.ENOTEMPTY);
        expect(await c.fail({ type: "Tclunk", fid: full })).toBe(Errno.EBADF);
        expect(await c.names("")).toEqual(["full"]);
      });
    });

    describe("setattr", () => {
      it("changes mode, owner and times as chmod, chown and utimensat do", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "x");
        const fid = await c.walk("f");
        const set = (valid: number, fields: Partial<Record<"mode" | "uid" | "gid", number>> & { atime?: bigint; mtime?: bigint }) =>
          c.rpc({
            type: "Tsetattr", fid, valid, mode: fields.mode ?? 0, uid: fields.uid ?? 0, gid: fields.gid ?? 0, size: 0n,
            atimeSec: fields.atime ?? 0n, atimeNsec: 5000n, mtimeSec: fields.mtime ?? 0n, mtimeNsec: 0n,
          });
        await set(SetattrValid.MODE | SetattrValid.CTIME, { mode: 0o4711 });
        await set(SetattrValid.UID | SetattrValid.GID, { uid: 1234, gid: 4321 });
        await set(SetattrValid.ATIME | SetattrValid.ATIME_SET | SetattrValid.MTIME | SetattrValid.MTIME_SET,
          { atime: 1_000_000_000n, mtime: 1_234_567_890n });
        let a = await c.getattr("f");
        expect(a.mode).toBe(FileMode.REG | 0o4711);
        expect([a.uid, a.gid]).toEqual([1234, 4321]);
        expect(a.atimeSec).toBe(1_000_000_000n);
        expect(a.mtimeSec).toBe(1_234_567_890n);
        expect(a.mtimeNsec).toBe(0n);
        const before = BigInt(Math.floor(Date.now() / 1000)) - 2n;
        await set(SetattrValid.MTIME, {});
        a = await c.getattr("f");
        expect(a.mtimeSec).toBeGreaterThanOrEqual(before);
        await c.mkdir("d");
        const d = await c.walk("d");
        await c.rpc({ type: "Tsetattr", fid: d, valid: SetattrValid.MODE, mode: 0o1777, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n });
        expect((await c.getattr("d")).mode).toBe(FileMode.DIR | 0o1777);
      });

      it("truncates down and up, zero-filling", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "0123456789");
        const fid = await c.walk("f");
        const truncate = (size: bigint) => c.rpc({ type: "Tsetattr", fid, valid: SetattrValid.SIZE, mode: 0, uid: 0, gid: 0, size, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n });
        await truncate(4n);
        expect(await c.readText("f")).toBe("0123");
        await truncate(6n);
        expect(await c.readFile("f")).toEqual(new Uint8Array([48, 49, 50, 51, 0, 0]));
        const dir = await c.walk("");
        expect(await c.fail({ type: "Tsetattr", fid: dir, valid: SetattrValid.SIZE, mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n })).toBe(Errno.EISDIR);
      });
    });

    describe("locks and xattrs", () => {
      it("grants, reports and releases POSIX byte-range locks without ever blocking", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "locked");
        const fid = await c.walk("f");
        await c.rpc({ type: "Tlopen", fid, flags: RDWR });
        const lock = (lockType: number, procId: number, start = 0n, length = 0n) =>
          c.rpc({ type: "Tlock", fid, lockType, flags: 1, start, length, procId, clientId: "guest" });
        expect((await lock(LockType.WRLCK, 10)).status).toBe(LockStatus.SUCCESS);
        expect((await lock(LockType.WRLCK, 11, 5n, 10n)).status).toBe(LockStatus.BLOCKED);
        const held = await c.rpc({ type: "Tgetlock", fid, lockType: LockType.RDLCK, start: 100n, length: 1n, procId: 11, clientId: "guest" });
        expect(held).toMatchObject({ lockType: LockType.WRLCK, start: 0n, length: 0n, procId: 10 });
        expect((await lock(LockType.UNLCK, 10)).status).toBe(LockStatus.SUCCESS);
        expect((await lock(LockType.RDLCK, 11)).status).toBe(LockStatus.SUCCESS);
        expect((await lock(LockType.RDLCK, 12, 3n, 3n)).status).toBe(LockStatus.SUCCESS);
        expect((await lock(LockType.WRLCK, 13, 4n, 1n)).status).toBe(LockStatus.BLOCKED);
        const free = await c.rpc({ type: "Tgetlock", fid, lockType: LockType.RDLCK, start: 0n, length: 0n, procId: 13, clientId: "guest" });
        expect(free.lockType).toBe(LockType.UNLCK);
        expect(await c.fail({ type: "Tlock", fid, lockType: 7, flags: 0, start: 0n, length: 0n, procId: 1, clientId: "" })).toBe(Errno.EINVAL);
      });

      it("has no extended attributes: an empty list, every name absent, none settable", async () => {
        const { c } = await mounted();
        await c.writeFile("f", "x");
        const fid = await c.walk("f");
        const list = c.newFid();
        const listed = await c.send({ type: "Txattrwalk", fid, newfid: list, name: "" });
        if (listed.type === "Rxattrwalk") {
          expect(listed.size).toBe(0n);
          expect((await c.rpc({ type: "Tread", fid: list, offset: 0n, count: 100 })).data.length).toBe(0);
          await c.clunk(list);
        } else {
          expect(listed).toMatchObject({ type: "Rlerror", ecode: Errno.ENOTSUP });
        }
        expect([Errno.ENODATA, Errno.ENOTSUP]).toContain(await c.fail({ type: "Txattrwalk", fid, newfid: c.newFid(), name: "user.x" }));
        expect(await c.fail({ type: "Txattrcreate", fid, name: "user.x", attrSize: 1n, flags: 0 })).toBe(Errno.ENOTSUP);
      });
    });

    describe("read-only share", () => {
      it("refuses every mutation with EROFS and leaves the tree as it was", async () => {
        const backend = await makeBackend();
        const rw = serve(backend, {}, { readOnly: false });
        await rw.mount();
        await rw.mkdir("dir");
        await rw.mkdir("dir/empty");
        await rw.writeFile("dir/file", "keep me");
        await rw.writeFile("top", "top");
        const root = await rw.walk("");
        await rw.rpc({ type: "Tsymlink", fid: root, name: "link", symtgt: "dir/file", gid: 0 });
        const before = await rw.snapshot();
        const used = await backend.usedBytes();

        const c = serve(backend, {}, { readOnly: true });
        await c.mount();
        expect(await c.readText("dir/file")).toBe("keep me");
        const dir = await c.walk("dir");
        const file = await c.walk("dir/file");
        const none = { mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };
        const mutations: Request[] = [
          { type: "Tlcreate", fid: await c.walk("dir"), name: "new", flags: WRONLY | CREAT, mode: 0o100644, gid: 0 },
          { type: "Tlcreate", fid: await c.walk("dir"), name: "file", flags: RDWR | CREAT | TRUNC, mode: 0o100644, gid: 0 },
          { type: "Tmkdir", dfid: dir, name: "newdir", mode: 0o40755, gid: 0 },
          { type: "Tsymlink", fid: dir, name: "newlink", symtgt: "file", gid: 0 },
          { type: "Tmknod", dfid: dir, name: "fifo", mode: FileMode.FIFO | 0o644, major: 0, minor: 0, gid: 0 },
          { type: "Tlink", dfid: dir, fid: file, name: "hard" },
          { type: "Trenameat", olddirfid: dir, oldname: "file", newdirfid: dir, newname: "renamed" },
          { type: "Trename", fid: file, dfid: dir, name: "renamed" },
          { type: "Tunlinkat", dirfid: dir, name: "file", flags: 0 },
          { type: "Tunlinkat", dirfid: dir, name: "empty", flags: AT_REMOVEDIR },
          { type: "Tsetattr", fid: file, valid: SetattrValid.MODE, ...none, mode: 0o777 },
          { type: "Tsetattr", fid: file, valid: SetattrValid.SIZE, ...none },
          { type: "Tsetattr", fid: file, valid: SetattrValid.SIZE, ...none, size: 100n },
          { type: "Tsetattr", fid: file, valid: SetattrValid.UID | SetattrValid.MTIME, ...none, uid: 5 },
          { type: "Tsetattr", fid: dir, valid: SetattrValid.GID, ...none, gid: 5 },
          { type: "Tlopen", fid: await c.walk("dir/file"), flags: WRONLY },
          { type: "Tlopen", fid: await c.walk("dir/file"), flags: RDWR },
          { type: "Tlopen", fid: await c.walk("dir/file"), flags: WRONLY | APPEND },
          { type: "Tlopen", fid: await c.walk("dir/file"), flags: RDONLY | TRUNC },
          { type: "Tremove", fid: await c.walk("top") },
          { type: "Tremove", fid: await c.walk("dir/empty") },
        ];
        for (const request of mutations) expect(await c.fail(request), JSON.stringify(request, (_, v: unknown) => typeof v === "bigint" ? `${v}` : v)).toBe(Errno.EROFS);
        // Nothing is left open by a refused open, and reading goes on.
        expect(c.server.openFileCount).toBe(0);
        const reader = await c.walk("dir/file");
        await c.rpc({ type: "Tlopen", fid: reader, flags: RDONLY });
        expect(await c.fail({ type: "Twrite", fid: reader, offset: 0n, data: text("x") })).toBe(Errno.EBADF);
        await c.rpc({ type: "Tfsync", fid: reader, datasync: 0 });
        expect(await c.snapshot()).toEqual(before);
        expect(await rw.snapshot()).toEqual(before);
        expect(await backend.usedBytes()).toBe(used);
        expect((await rw.getattr("dir/file")).uid).toBe(0);
      });
    });

    describe("quota", () => {
      const none = { mode: 0, uid: 0, gid: 0, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };

      it("stops writes at the quota with a short write, then ENOSPC, and stores no more", async () => {
        const backend = await makeBackend();
        const quota = (await backend.usedBytes()) + 10_000;
        const c = serve(backend, {}, { readOnly: false, quotaBytes: quota });
        await c.mount();
        await c.writeFile("a", new Uint8Array(6000).fill(1));
        const root = await c.walk("");
        await c.rpc({ type: "Tlcreate", fid: root, name: "b", flags: WRONLY | CREAT, mode: 0o100644, gid: 0 });
        // What is left, as the backend counts it (a host folder also charges names and its store).
        const room = quota - (await backend.usedBytes());
        expect(room).toBeGreaterThan(0);
        expect(room).toBeLessThan(8000);
        const short = await c.rpc({ type: "Twrite", fid: root, offset: 0n, data: new Uint8Array(8000).fill(2) });
        expect(short.count).toBe(room);
        expect(await c.fail({ type: "Twrite", fid: root, offset: BigInt(room), data: new Uint8Array(10).fill(3) })).toBe(Errno.ENOSPC);
        expect(await c.fail({ type: "Twrite", fid: root, offset: 50_000n, data: new Uint8Array(10).fill(3) })).toBe(Errno.ENOSPC);
        // Overwriting inside the file needs no room.
        expect((await c.rpc({ type: "Twrite", fid: root, offset: 0n, data: new Uint8Array(100).fill(4) })).count).toBe(100);
        await c.clunk(root);
        expect(await backend.usedBytes()).toBe(quota);
        expect((await c.getattr("b")).size).toBe(BigInt(room));
        // Freeing space makes room again.
        await c.rpc({ type: "Tunlinkat", dirfid: ROOT, name: "a", flags: 0 });
        await c.writeFile("c", "fits now");
        expect(await c.readText("c")).toBe("fits now");
        expect(await backend.usedBytes()).toBeLessThanOrEqual(quota);
      });

      it("refuses to grow a file or make any new name once full", async () => {
        const backend = await makeBackend();
        const quota = (await backend.usedBytes()) + 5000;
        const c = serve(backend, {}, { readOnly: false, quotaBytes: quota });
        await c.mount();
        await c.writeFile("a", new Uint8Array(3000).fill(1));
        const a = await c.walk("a");
        // Truncating up past the quota fails whole; within it, it works. The room is as the
        // backend counts it (a host folder also charges names and its attribute store).
        const full = 3000 + quota - (await backend.usedBytes());
        expect(full).toBeGreaterThan(3000);
        expect(await c.fail({ type: "Tsetattr", fid: a, valid: SetattrValid.SIZE, ...none, size: BigInt(full + 1) })).toBe(Errno.ENOSPC);
        expect((await c.getattr("a")).size).toBe(3000n);
        await c.rpc({ type: "Tsetattr", fid: a, valid: SetattrValid.SIZE, ...none, size: BigInt(full) });
        expect(await backend.usedBytes()).toBe(quota);
        expect(await c.fail({ type: "Tsetattr", fid: a, valid: SetattrValid.SIZE, ...none, size: BigInt(full + 1) })).toBe(Errno.ENOSPC);
        const dir = await c.walk("");
        const refused: Request[] = [
          { type: "Tlcreate", fid: dir, name: "c", flags: WRONLY | CREAT, mode: 0o100644, gid: 0 },
          { type: "Tmkdir", dfid: dir, name: "d", mode: 0o40755, gid: 0 },
          { type: "Tsymlink", fid: dir, name: "l", symtgt: "a", gid: 0 },
          { type: "Tmknod", dfid: dir, name: "fifo", mode: FileMode.FIFO | 0o644, major: 0, minor: 0, gid: 0 },
          { type: "Tlink", dfid: dir, fid: a, name: "hard" },
        ];
        for (const request of refused) expect(await c.fail(request), request.type).toBe(Errno.ENOSPC);
        expect(await c.names("")).toEqual(["a"]);
        expect(c.server.openFileCount).toBe(0);
        // Shrinking is always allowed, and makes room for names again.
        await c.rpc({ type: "Tsetattr", fid: a, valid: SetattrValid.SIZE, ...none, size: 10n });
        await c.rpc({ type: "Tlink", dfid: dir, fid: a, name: "hard" });
        await c.mkdir("d");
        expect(await c.names("")).toEqual(["a", "d", "hard"]);
      });

      it("reports the quota, not the disk, in statfs", async () => {
        const backend = await makeBackend();
        const quota = (await backend.usedBytes()) + 40_000;
        const c = serve(backend, {}, { readOnly: false, quotaBytes: quota });
        await c.mount();
        await c.writeFile("a", new Uint8Array(12_000));
        const fs = await c.rpc({ type: "Tstatfs", fid: ROOT });
        const bsize = fs.bsize;
        expect(fs.blocks).toBe(BigInt(Math.ceil(quota / bsize)));
        const free = BigInt(Math.floor((quota - (await backend.usedBytes())) / bsize));
        expect(fs.bfree).toBe(free);
        expect(fs.bavail).toBe(free);
        const file = await c.walk("a");
        expect((await c.rpc({ type: "Tstatfs", fid: file })).blocks).toBe(fs.blocks);
        const root = await c.walk("");
        await c.rpc({ type: "Tlcreate", fid: root, name: "fill", flags: WRONLY | CREAT, mode: 0o100644, gid: 0 });
        await c.rpc({ type: "Twrite", fid: root, offset: 0n, data: new Uint8Array(40_000) });
        const full = await c.rpc({ type: "Tstatfs", fid: ROOT });
        expect([full.bfree, full.bavail]).toEqual([0n, 0n]);
      });

      it("counts an O_APPEND write from the end of the file, whatever offset the guest sends", async () => {
        const backend = await makeBackend();
        const quota = (await backend.usedBytes()) + 4096;
        const c = serve(backend, {}, { readOnly: false, quotaBytes: quota });
        await c.mount();
        await c.writeFile("log", "x".repeat(60));
        const fid = await c.walk("log");
        await c.rpc({ type: "Tlopen", fid, flags: WRONLY | APPEND });
        // Fill the quota up to 40 bytes from the end (as the backend counts it) elsewhere.
        await c.writeFile("fill", "");
        const fill = await c.walk("fill");
        await c.rpc({ type: "Tsetattr", fid: fill, valid: SetattrValid.SIZE, ...none, size: BigInt(quota - (await backend.usedBytes()) - 40) });
        const left = quota - (await backend.usedBytes());
        expect(left).toBeGreaterThan(30);
        expect(left).toBeLessThan(60);
        expect((await c.rpc({ type: "Twrite", fid, offset: 0n, data: text("y".repeat(30)) })).count).toBe(30);
        expect((await c.rpc({ type: "Twrite", fid, offset: 0n, data: text("z".repeat(30)) })).count).toBe(left - 30);
        expect(await c.fail({ type: "Twrite", fid, offset: 0n, data: text("w") })).toBe(Errno.ENOSPC);
        await c.clunk(fid);
        expect(await c.readText("log")).toBe(`${"x".repeat(60)}${"y".repeat(30)}${"z".repeat(left - 30)}`);
        expect(await backend.usedBytes()).toBe(quota);
      });
    });
  });
}
