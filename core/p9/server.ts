// P9Server: 9P2000.L protocol state (msize, fids, open modes, readdir cookies, locks) over a
// P9Backend, answering the guest's v9fs client through v86's handle9p: one whole T-message in,
// one whole R-message out. Invariants: handle() never rejects (every failure is an Rlerror with
// the request's tag), requests run one at a time in arrival order, names are checked here, and
// a session holds at most maxFids fids and maxOpenFiles open files. Policy is the backend's.

import type { Disposable } from "../disposable.js";
import type { P9AttrChange, P9Backend, P9File, P9Node, P9Time } from "./backend.js";
import { Errno, P9Error } from "./errno.js";
import {
  AT_REMOVEDIR,
  decodeMessage,
  direntSize,
  DirentType,
  encodeMessage,
  GetattrMask,
  IO_HEADER_SIZE,
  LockStatus,
  LockType,
  messageName,
  NOFID,
  NONUNAME,
  NOTAG,
  OpenFlags,
  peekHeader,
  QidType,
  READ_HEADER_SIZE,
  SetattrValid,
  VERSION_9P2000L,
  type Dirent,
  type RMessage,
  type TMessage,
} from "./messages.js";
import { P9WireError, type Qid } from "./wire.js";
import { parseSessionState, SESSION_STATE_FORMAT, type SavedFid, type SessionState } from "./session-state.js";

export interface P9ServerOptions {
  /** The largest msize granted; the client may ask for less. 1 MiB unless given. */
  readonly maxMsize?: number;
  /** The most fids a client may hold at once: a new one past it answers ENFILE. */
  readonly maxFids?: number;
  /**
   * The most fids with a file open at once (each may hold a host descriptor): an open or
   * create past it answers EMFILE, as open(2) does past RLIMIT_NOFILE.
   */
  readonly maxOpenFiles?: number;
  /** Failures that are not a backend's P9Error (bugs, host surprises): answered EIO, told here. */
  readonly onError?: (error: unknown, request: string) => void;
}

/** V9FS_MAGIC, the f_type Linux reports for a 9p mount. */
const V9FS_MAGIC = 0x01021997;
/** Below this msize a Rreadlink of a PATH_MAX target or a 16-name Twalk may not fit. */
const MIN_MSIZE = 4096;
const DEFAULT_MAX_MSIZE = 1024 * 1024;
const NAME_MAX = 255;
const PATH_MAX = 4096;
const MAX_LOCKS_PER_FILE = 4096;
/** Without options, no cap a test would hit; serveP9 (main/host/p9-service.ts) sets real ones. */
const DEFAULT_MAX_FIDS = 1 << 20;
const DEFAULT_MAX_OPEN_FILES = 1 << 20;
const MAX_U64 = (1n << 64n) - 1n;

interface Fid {
  node: P9Node;
  /** The directory this fid was walked from and its name there (for Trename, Tremove, ".."). */
  parent: P9Node | undefined;
  name: string;
  /** Names from the backend's root, kept through renames; null once the file was removed. */
  path: string[] | null;
  /** How many names of `path` the Tattach's aname took: the client sees nothing above them. */
  readonly base: number;
  /** The user of the Tattach this fid descends from: owner of what it creates. */
  readonly uid: number;
  /** Why a fid taken back from a saved session no longer reaches its file: every use fails. */
  stale?: string;
  file?: P9File;
  openFlags?: number;
  /** Readdir snapshot: entry i has cookie i + 1; taken at offset 0. */
  listing?: Dirent[];
  /** An xattr fid from Txattrwalk: the value (or name list) to read. */
  xattr?: Uint8Array;
}

type NameUse = "walk" | "create" | "remove";

const utf8 = new TextEncoder();

/** Refuses a name that is not one plain component, with the errno Linux would give. */
function checkName(name: string, use: NameUse): void {
  if (name === "") throw new P9Error(Errno.ENOENT, "empty name");
  if (name.includes("/") || name.includes("\0")) throw new P9Error(Errno.EINVAL, `name "${name}" contains "/" or NUL`);
  if (name === "." || name === "..") {
    const errno = use === "walk" ? Errno.ENOENT : use === "create" ? Errno.EEXIST : Errno.EINVAL;
    throw new P9Error(errno, `"${name}" is not served: the guest resolves it`);
  }
  if (utf8.encode(name).length > NAME_MAX) throw new P9Error(Errno.ENAMETOOLONG, `name is over ${NAME_MAX} bytes`);
}

function toSafe(value: bigint, errno: number, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new P9Error(errno, `${what} ${value} is too large`);
  return Number(value);
}

function toTime(sec: bigint, nsec: bigint): P9Time {
  if (nsec >= 1_000_000_000n) throw new P9Error(Errno.EINVAL, `nanoseconds ${nsec} out of range`);
  return { sec: toSafe(sec, Errno.EINVAL, "time"), nsec: Number(nsec) };
}

/** Linux's new_encode_dev(MKDEV(major, minor)), as glibc's makedev for 12-bit majors. */
function encodeDev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + Math.floor(minor / 0x100) * 0x100000;
}

interface HeldLock {
  readonly owner: string;
  readonly procId: number;
  readonly clientId: string;
  readonly type: number;
  readonly start: bigint;
  /** Inclusive; MAX_U64 means "to the end of the file, however long". */
  readonly end: bigint;
}

/** POSIX advisory byte-range locks, per file (qid path) and owner (client id + process id). */
class LockTable {
  readonly #byFile = new Map<bigint, HeldLock[]>();

  conflict(file: bigint, want: HeldLock): HeldLock | undefined {
    return this.#byFile.get(file)?.find((held) =>
      held.owner !== want.owner && held.start <= want.end && want.start <= held.end &&
      (held.type === LockType.WRLCK || want.type === LockType.WRLCK));
  }

  /** Replaces the owner's locks on [start, end] with `lock` (or with nothing for UNLCK). */
  set(file: bigint, lock: HeldLock): void {
    const kept: HeldLock[] = [];
    for (const held of this.#byFile.get(file) ?? []) {
      if (held.owner !== lock.owner || held.end < lock.start || lock.end < held.start) {
        kept.push(held);
        continue;
      }
      if (held.start < lock.start) kept.push({ ...held, end: lock.start - 1n });
      if (held.end > lock.end) kept.push({ ...held, start: lock.end + 1n });
    }
    if (lock.type !== LockType.UNLCK) kept.push(lock);
    if (kept.length > MAX_LOCKS_PER_FILE) throw new P9Error(Errno.ENOLCK, "too many locks on one file");
    if (kept.length === 0) this.#byFile.delete(file);
    else this.#byFile.set(file, kept);
  }

  clear(): void {
    this.#byFile.clear();
  }
}

export class P9Server implements Disposable {
  readonly #backend: P9Backend;
  readonly #maxMsize: number;
  readonly #maxFids: number;
  readonly #maxOpenFiles: number;
  readonly #onError: ((error: unknown, request: string) => void) | undefined;
  /** 0 until a Tversion for 9P2000.L is answered. */
  #msize = 0;
  readonly #fids = new Map<number, Fid>();
  /** Fids whose `file` is set. */
  #openFiles = 0;
  readonly #locks = new LockTable();
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;
  #closed: Promise<void> = Promise.resolve();
  /** A saved session being taken back (restore), until its fids are rebuilt. */
  #restoring: SessionState | undefined;

  constructor(backend: P9Backend, options: P9ServerOptions = {}) {
    this.#backend = backend;
    this.#maxMsize = Math.max(MIN_MSIZE, options.maxMsize ?? DEFAULT_MAX_MSIZE);
    this.#maxFids = options.maxFids ?? DEFAULT_MAX_FIDS;
    this.#maxOpenFiles = options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES;
    this.#onError = options.onError;
  }

  /** The negotiated msize, 0 before Tversion. */
  get msize(): number {
    return this.#msize;
  }

  /** Fids the client holds (for tests and diagnostics). */
  get fidCount(): number {
    return this.#fids.size;
  }

  /** Fids with a file open (for tests and diagnostics). */
  get openFileCount(): number {
    return this.#openFiles;
  }

  /**
   * Answers one whole T-message with one whole R-message. Never rejects: malformed frames,
   * unknown types and every failure become Rlerror, tagged as the request if its tag is readable.
   */
  handle(request: Uint8Array): Promise<Uint8Array> {
    const header = peekHeader(request);
    if (!header) return Promise.resolve(lerror(NOTAG, Errno.EPROTO));
    const name = messageName(header.id);
    if (!name) return Promise.resolve(lerror(header.tag, Errno.ENOTSUP));
    if (!name.startsWith("T")) return Promise.resolve(lerror(header.tag, Errno.EPROTO));
    let message: TMessage;
    try {
      message = decodeMessage(request) as TMessage;
    } catch (error) {
      return Promise.resolve(lerror(header.tag, error instanceof P9WireError ? error.errno : Errno.EPROTO));
    }
    // The caller may reuse its buffer once we return: keep our own copy of the payload.
    if (message.type === "Twrite") message = { ...message, data: message.data.slice() };
    const reply = this.#queue.then(() => this.#answer(message));
    this.#queue = reply;
    return reply;
  }

  /** Closes every open file once the requests in flight are answered; later requests answer
   * EIO. `closed` settles when that is done (then the backend may be closed). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const closing = this.#queue.then(() => this.#reset());
    this.#queue = closing;
    this.#closed = closing.catch(() => undefined);
  }

  /** Settles once a disposed server has closed every file it had open. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  async #answer(m: TMessage): Promise<Uint8Array> {
    try {
      if (this.#disposed) throw new P9Error(Errno.EIO, "the share was closed");
      const reply = encodeMessage(await this.#serve(m));
      if (this.#msize !== 0 && reply.length > this.#msize) {
        throw new P9Error(Errno.EMSGSIZE, `reply of ${reply.length} bytes is over msize ${this.#msize}`);
      }
      return reply;
    } catch (error) {
      let errno: number = Errno.EIO;
      if (error instanceof P9Error || error instanceof P9WireError) errno = error.errno;
      else this.#report(error, m.type);
      if (!Number.isInteger(errno) || errno <= 0 || errno > 0xffff) errno = Errno.EIO;
      return lerror(m.tag, errno);
    }
  }

  #report(error: unknown, request: string): void {
    try {
      this.#onError?.(error, request);
    } catch {
      // A failing listener must not take the share down with it.
    }
  }

  #fid(fid: number, evenStale = false): Fid {
    const found = this.#fids.get(fid);
    if (!found) throw new P9Error(Errno.EBADF, `fid ${fid} is not in use`);
    if (found.stale !== undefined && !evenStale) throw new P9Error(Errno.EIO, `fid ${fid}: ${found.stale}`);
    return found;
  }

  #fileFid(fid: number): Fid {
    const found = this.#fid(fid);
    if (found.xattr) throw new P9Error(Errno.EBADF, `fid ${fid} holds an xattr, not a file`);
    return found;
  }

  #dirFid(fid: number): Fid {
    const found = this.#fileFid(fid);
    if (!(found.node.qid.type & QidType.DIR)) throw new P9Error(Errno.ENOTDIR, `fid ${fid} is not a directory`);
    return found;
  }

  #newFid(fid: number, replacing?: number): void {
    if (fid === NOFID) throw new P9Error(Errno.EBADF, "NOFID cannot name a file");
    if (fid !== replacing && this.#fids.has(fid)) throw new P9Error(Errno.EBADF, `fid ${fid} is already in use`);
    if (fid !== replacing && this.#fids.size >= this.#maxFids) {
      throw new P9Error(Errno.ENFILE, `the guest holds ${this.#maxFids} fids, the most a session may`);
    }
  }

  /** EMFILE before the backend opens one more file than a session may hold open. */
  #canOpen(): void {
    if (this.#openFiles >= this.#maxOpenFiles) {
      throw new P9Error(Errno.EMFILE, `the guest holds ${this.#maxOpenFiles} open files, the most a session may`);
    }
  }

  /** The fid now holds `file` (it held none). */
  #opened(fid: Fid, file: P9File): void {
    fid.file = file;
    this.#openFiles++;
  }

  #iounit(): number {
    return this.#msize - IO_HEADER_SIZE;
  }

  /** Closes what the fid has open; a close that fails still clunks (clunk(5)). */
  async #release(fid: Fid): Promise<void> {
    const file = fid.file;
    fid.file = undefined;
    fid.listing = undefined;
    if (!file) return;
    this.#openFiles--;
    try {
      await file.close();
    } catch (error) {
      if (!(error instanceof P9Error)) this.#report(error, "close");
    }
  }

  async #reset(): Promise<void> {
    const fids = [...this.#fids.values()];
    this.#fids.clear();
    this.#locks.clear();
    for (const fid of fids) await this.#release(fid);
  }

  async #serve(m: TMessage): Promise<RMessage> {
    const tag = m.tag;
    if (m.type === "Tversion") return this.#version(m.tag, m.msize, m.version);
    if (this.#msize === 0) throw new P9Error(Errno.EPROTO, `${m.type} before a 9P2000.L Tversion`);

    switch (m.type) {
      case "Tauth":
        throw new P9Error(Errno.ENOTSUP, "no authentication: attach directly");

      case "Tattach": {
        this.#newFid(m.fid);
        if (m.afid !== NOFID) throw new P9Error(Errno.EINVAL, "no authentication: afid must be NOFID");
        let node = await this.#backend.root();
        const path = m.aname.split("/").filter((p) => p !== "");
        for (const part of path) {
          checkName(part, "walk");
          node = await node.walk(part);
        }
        if (!(node.qid.type & QidType.DIR)) throw new P9Error(Errno.ENOTDIR, `aname "${m.aname}" is not a directory`);
        // What aname names is the client's root: nothing above it is seen, moved or removed.
        this.#fids.set(m.fid, { node, parent: undefined, name: "", path, base: path.length, uid: m.nUname === NONUNAME ? 0 : m.nUname });
        return { type: "Rattach", tag, qid: node.qid };
      }

      case "Tflush":
        // Requests run in order, so the flushed one has been answered already (flush(5)).
        return { type: "Rflush", tag };

      case "Twalk": {
        const from = this.#fileFid(m.fid);
        this.#newFid(m.newfid, m.fid);
        let { node, parent, name } = from;
        const wqids: Qid[] = [];
        for (const [i, wname] of m.wnames.entries()) {
          let next: P9Node;
          try {
            checkName(wname, "walk");
            next = await node.walk(wname);
          } catch (error) {
            // walk(5): an error on the first name is Rlerror; later, the qids walked so far.
            if (i === 0) throw error;
            break;
          }
          parent = node;
          node = next;
          name = wname;
          wqids.push(next.qid);
        }
        if (wqids.length === m.wnames.length) {
          if (m.newfid === m.fid) await this.#release(from);
          const path = from.path && [...from.path, ...m.wnames];
          this.#fids.set(m.newfid, { node, parent, name, path, base: from.base, uid: from.uid });
        }
        return { type: "Rwalk", tag, wqids };
      }

      case "Tclunk": {
        const fid = this.#fid(m.fid, true);
        this.#fids.delete(m.fid);
        await this.#release(fid);
        return { type: "Rclunk", tag };
      }

      case "Tremove": {
        const fid = this.#fid(m.fid, true);
        // remove(5): the fid is clunked even when the remove fails.
        this.#fids.delete(m.fid);
        await this.#release(fid);
        if (fid.stale !== undefined) throw new P9Error(Errno.EIO, `fid ${m.fid}: ${fid.stale}`);
        if (fid.xattr) throw new P9Error(Errno.EBADF, `fid ${m.fid} holds an xattr, not a file`);
        if (!fid.parent) throw new P9Error(Errno.EBUSY, "the share's root cannot be removed");
        await fid.parent.unlink(fid.name, (fid.node.qid.type & QidType.DIR) !== 0);
        if (fid.path) this.#removed(fid.path);
        return { type: "Rremove", tag };
      }

      case "Tstatfs": {
        // Linux asks on the fid of the path statfs(2) names, so a share's quota shows per share.
        const fs = await this.#backend.statfs(this.#fileFid(m.fid).node);
        return {
          type: "Rstatfs", tag, fsType: V9FS_MAGIC, bsize: fs.bsize, blocks: BigInt(fs.blocks), bfree: BigInt(fs.bfree),
          bavail: BigInt(fs.bavail), files: BigInt(fs.files), ffree: BigInt(fs.ffree), fsid: fs.fsid, namelen: fs.namelen,
        };
      }

      case "Tlopen": {
        const fid = this.#fileFid(m.fid);
        if (fid.file) throw new P9Error(Errno.EINVAL, `fid ${m.fid} is already open`);
        const access = m.flags & OpenFlags.ACCMODE;
        if (access === OpenFlags.ACCMODE) throw new P9Error(Errno.EINVAL, "open access mode 3 is not valid");
        this.#canOpen();
        // The flags go to the backend as the guest gave them (APPEND included); CREAT and EXCL
        // mean nothing for a file that exists.
        this.#opened(fid, await fid.node.open(m.flags & ~(OpenFlags.CREAT | OpenFlags.EXCL)));
        fid.openFlags = m.flags;
        fid.listing = undefined;
        return { type: "Rlopen", tag, qid: fid.node.qid, iounit: this.#iounit() };
      }

      case "Tlcreate": {
        const dir = this.#dirFid(m.fid);
        if (dir.file) throw new P9Error(Errno.EINVAL, `fid ${m.fid} is already open`);
        checkName(m.name, "create");
        if ((m.flags & OpenFlags.ACCMODE) === OpenFlags.ACCMODE) throw new P9Error(Errno.EINVAL, "open access mode 3 is not valid");
        this.#canOpen();
        const flags = m.flags & ~(OpenFlags.CREAT | OpenFlags.EXCL);
        let created: { node: P9Node; file: P9File };
        try {
          created = await dir.node.create(m.name, flags, m.mode & 0o7777, { uid: dir.uid, gid: m.gid });
        } catch (error) {
          // open(2) with O_CREAT but not O_EXCL opens a file that appeared since the guest looked.
          if (!(error instanceof P9Error) || error.errno !== Errno.EEXIST || m.flags & OpenFlags.EXCL) throw error;
          const existing = await dir.node.walk(m.name);
          created = { node: existing, file: await existing.open(flags) };
        }
        const { node, file } = created;
        // diod protocol.md "lcreate": the fid now stands for the new, open file.
        Object.assign(dir, { parent: dir.node, node, name: m.name, path: dir.path && [...dir.path, m.name], openFlags: m.flags, listing: undefined });
        this.#opened(dir, file);
        return { type: "Rlcreate", tag, qid: node.qid, iounit: this.#iounit() };
      }

      case "Tsymlink": {
        const dir = this.#dirFid(m.fid);
        checkName(m.name, "create");
        const length = utf8.encode(m.symtgt).length;
        if (length === 0) throw new P9Error(Errno.ENOENT, "empty symlink target");
        if (length >= PATH_MAX) throw new P9Error(Errno.ENAMETOOLONG, `symlink target is over ${PATH_MAX - 1} bytes`);
        if (m.symtgt.includes("\0")) throw new P9Error(Errno.EINVAL, "symlink target contains NUL");
        const node = await dir.node.symlink(m.name, m.symtgt, { uid: dir.uid, gid: m.gid });
        return { type: "Rsymlink", tag, qid: node.qid };
      }

      case "Tmknod": {
        const dir = this.#dirFid(m.dfid);
        checkName(m.name, "create");
        const node = await dir.node.mknod(m.name, m.mode, encodeDev(m.major, m.minor), { uid: dir.uid, gid: m.gid });
        return { type: "Rmknod", tag, qid: node.qid };
      }

      case "Trename": {
        const fid = this.#fileFid(m.fid);
        const to = this.#dirFid(m.dfid);
        checkName(m.name, "remove");
        if (!fid.parent) throw new P9Error(Errno.EBUSY, "the share's root cannot be renamed");
        await fid.parent.rename(fid.name, to.node, m.name);
        this.#renamed(fid.parent, fid.name, to.node, m.name);
        this.#moved(fid.path, to.path && [...to.path, m.name]);
        return { type: "Rrename", tag };
      }

      case "Treadlink": {
        const fid = this.#fileFid(m.fid);
        return { type: "Rreadlink", tag, target: await fid.node.readlink() };
      }

      case "Tgetattr": {
        const fid = this.#fileFid(m.fid);
        const a = await (fid.file ? fid.file.getattr() : fid.node.getattr());
        return {
          type: "Rgetattr", tag, valid: GetattrMask.BASIC, qid: a.qid, mode: a.mode, uid: a.uid, gid: a.gid,
          nlink: BigInt(a.nlink), rdev: BigInt(a.rdev), size: BigInt(a.size), blksize: BigInt(a.blksize),
          blocks: BigInt(a.blocks), atimeSec: BigInt(a.atime.sec), atimeNsec: BigInt(a.atime.nsec),
          mtimeSec: BigInt(a.mtime.sec), mtimeNsec: BigInt(a.mtime.nsec), ctimeSec: BigInt(a.ctime.sec),
          ctimeNsec: BigInt(a.ctime.nsec), btimeSec: 0n, btimeNsec: 0n, gen: 0n, dataVersion: 0n,
        };
      }

      case "Tsetattr": {
        const fid = this.#fileFid(m.fid);
        const v = m.valid;
        const change: { -readonly [K in keyof P9AttrChange]: P9AttrChange[K] } = {};
        if (v & SetattrValid.MODE) change.mode = m.mode & 0o7777;
        if (v & SetattrValid.UID) change.uid = m.uid;
        if (v & SetattrValid.GID) change.gid = m.gid;
        if (v & SetattrValid.SIZE) change.size = toSafe(m.size, Errno.EFBIG, "size");
        if (v & SetattrValid.ATIME) change.atime = v & SetattrValid.ATIME_SET ? toTime(m.atimeSec, m.atimeNsec) : "now";
        if (v & SetattrValid.MTIME) change.mtime = v & SetattrValid.MTIME_SET ? toTime(m.mtimeSec, m.mtimeNsec) : "now";
        // An open fid changes the file it holds (ftruncate, fchmod), which may have no name left.
        if (fid.file?.setattr) await fid.file.setattr(change);
        else await fid.node.setattr(change);
        return { type: "Rsetattr", tag };
      }

      case "Txattrwalk": {
        const fid = this.#fileFid(m.fid);
        this.#newFid(m.newfid, m.fid);
        // No extended attributes are kept: the list is empty and every name is absent.
        if (m.name !== "") throw new P9Error(Errno.ENODATA, `no extended attribute "${m.name}"`);
        if (m.newfid === m.fid) await this.#release(fid);
        this.#fids.set(m.newfid, { node: fid.node, parent: fid.parent, name: fid.name, path: fid.path, base: fid.base, uid: fid.uid, xattr: new Uint8Array(0) });
        return { type: "Rxattrwalk", tag, size: 0n };
      }

      case "Txattrcreate":
        this.#fileFid(m.fid);
        throw new P9Error(Errno.ENOTSUP, "extended attributes are not stored");

      case "Tread": {
        const fid = this.#fid(m.fid);
        const max = Math.min(m.count, this.#msize - READ_HEADER_SIZE);
        if (fid.xattr) {
          const at = Math.min(fid.xattr.length, toSafe(m.offset, Errno.EINVAL, "offset"));
          return { type: "Rread", tag, data: fid.xattr.slice(at, at + max) };
        }
        if (!fid.file) throw new P9Error(Errno.EBADF, `fid ${m.fid} is not open`);
        if (((fid.openFlags ?? 0) & OpenFlags.ACCMODE) === OpenFlags.WRONLY) throw new P9Error(Errno.EBADF, `fid ${m.fid} is open write-only`);
        if (m.offset > BigInt(Number.MAX_SAFE_INTEGER)) return { type: "Rread", tag, data: new Uint8Array(0) };
        const data = await fid.file.read(Number(m.offset), max);
        return { type: "Rread", tag, data: data.length > max ? data.subarray(0, max) : data };
      }

      case "Twrite": {
        const fid = this.#fileFid(m.fid);
        if (!fid.file) throw new P9Error(Errno.EBADF, `fid ${m.fid} is not open`);
        if (((fid.openFlags ?? 0) & OpenFlags.ACCMODE) === OpenFlags.RDONLY) throw new P9Error(Errno.EBADF, `fid ${m.fid} is open read-only`);
        const offset = toSafe(m.offset + BigInt(m.data.length), Errno.EFBIG, "write end") - m.data.length;
        const count = await fid.file.write(offset, m.data);
        return { type: "Rwrite", tag, count };
      }

      case "Treaddir": {
        const fid = this.#dirFid(m.fid);
        if (!fid.file) throw new P9Error(Errno.EBADF, `fid ${m.fid} is not open`);
        if (m.offset === 0n || !fid.listing) {
          const parent = fid.parent ?? fid.node;
          const entries = await fid.node.readdir();
          fid.listing = [
            { name: ".", qid: fid.node.qid, type: DirentType.DIR, offset: 0n },
            { name: "..", qid: parent.qid, type: DirentType.DIR, offset: 0n },
            ...entries.map((e) => ({ ...e, offset: 0n })),
          ];
        }
        const max = Math.min(m.count, this.#msize - READ_HEADER_SIZE);
        const entries: Dirent[] = [];
        let used = 0;
        for (let i = toSafe(m.offset, Errno.EINVAL, "offset"); i < fid.listing.length; i++) {
          const entry = fid.listing[i]!;
          used += direntSize(entry.name);
          if (used > max) break;
          entries.push({ ...entry, offset: BigInt(i + 1) });
        }
        return { type: "Rreaddir", tag, entries };
      }

      case "Tfsync": {
        const fid = this.#fileFid(m.fid);
        if (!fid.file) throw new P9Error(Errno.EBADF, `fid ${m.fid} is not open`);
        await fid.file.fsync(m.datasync !== 0);
        return { type: "Rfsync", tag };
      }

      case "Tlock": {
        const fid = this.#fileFid(m.fid);
        const lock = this.#lockOf(m.lockType, m.start, m.length, m.procId, m.clientId);
        if (lock.type !== LockType.UNLCK && this.#locks.conflict(fid.node.qid.path, lock)) {
          // diod protocol.md "lock": the client retries a blocking lock itself; we never wait.
          return { type: "Rlock", tag, status: LockStatus.BLOCKED };
        }
        this.#locks.set(fid.node.qid.path, lock);
        return { type: "Rlock", tag, status: LockStatus.SUCCESS };
      }

      case "Tgetlock": {
        const fid = this.#fileFid(m.fid);
        const want = this.#lockOf(m.lockType, m.start, m.length, m.procId, m.clientId);
        const held = want.type === LockType.UNLCK ? undefined : this.#locks.conflict(fid.node.qid.path, want);
        if (!held) return { type: "Rgetlock", tag, lockType: LockType.UNLCK, start: m.start, length: m.length, procId: m.procId, clientId: m.clientId };
        const length = held.end === MAX_U64 ? 0n : held.end - held.start + 1n;
        return { type: "Rgetlock", tag, lockType: held.type, start: held.start, length, procId: held.procId, clientId: held.clientId };
      }

      case "Tlink": {
        const dir = this.#dirFid(m.dfid);
        const target = this.#fileFid(m.fid);
        checkName(m.name, "create");
        await dir.node.link(m.name, target.node);
        return { type: "Rlink", tag };
      }

      case "Tmkdir": {
        const dir = this.#dirFid(m.dfid);
        checkName(m.name, "create");
        const node = await dir.node.mkdir(m.name, m.mode & 0o7777, { uid: dir.uid, gid: m.gid });
        return { type: "Rmkdir", tag, qid: node.qid };
      }

      case "Trenameat": {
        const from = this.#dirFid(m.olddirfid);
        const to = this.#dirFid(m.newdirfid);
        checkName(m.oldname, "remove");
        checkName(m.newname, "remove");
        await from.node.rename(m.oldname, to.node, m.newname);
        this.#renamed(from.node, m.oldname, to.node, m.newname);
        this.#moved(from.path && [...from.path, m.oldname], to.path && [...to.path, m.newname]);
        return { type: "Rrenameat", tag };
      }

      case "Tunlinkat": {
        const dir = this.#dirFid(m.dirfid);
        checkName(m.name, "remove");
        if (m.flags & ~AT_REMOVEDIR) throw new P9Error(Errno.EINVAL, `unlinkat flags ${m.flags} not understood`);
        await dir.node.unlink(m.name, (m.flags & AT_REMOVEDIR) !== 0);
        if (dir.path) this.#removed([...dir.path, m.name]);
        return { type: "Runlinkat", tag };
      }
    }
  }

  async #version(tag: number, msize: number, version: string): Promise<RMessage> {
    // version(5): a Tversion aborts everything outstanding and clunks every fid.
    await this.#reset();
    this.#msize = 0;
    if (version !== VERSION_9P2000L && !version.startsWith(`${VERSION_9P2000L}.`)) {
      return { type: "Rversion", tag, msize: Math.min(msize, this.#maxMsize), version: "unknown" };
    }
    if (msize < MIN_MSIZE) throw new P9Error(Errno.EINVAL, `msize ${msize} is below ${MIN_MSIZE}`);
    this.#msize = Math.min(msize, this.#maxMsize);
    return { type: "Rversion", tag, msize: this.#msize, version: VERSION_9P2000L };
  }

  #lockOf(type: number, start: bigint, length: bigint, procId: number, clientId: string): HeldLock {
    if (type !== LockType.RDLCK && type !== LockType.WRLCK && type !== LockType.UNLCK) {
      throw new P9Error(Errno.EINVAL, `lock type ${type} not understood`);
    }
    const end = length === 0n || start + length - 1n > MAX_U64 ? MAX_U64 : start + length - 1n;
    return { owner: `${clientId}\0${procId}`, procId, clientId, type, start, end };
  }

  /** Paths at or under `from` now start with `to`; what `to` named before was replaced. */
  #moved(from: string[] | null, to: string[] | null): void {
    if (from && to && samePath(from, to)) return;
    if (to) this.#removed(to);
    for (const fid of this.#fids.values()) {
      if (!fid.path) continue;
      if (!from) continue;
      if (startsWith(fid.path, from)) fid.path = to ? [...to, ...fid.path.slice(from.length)] : null;
    }
  }

  /** Fids at or under `path` lost their name: a saved session can no longer find them. */
  #removed(path: string[]): void {
    for (const fid of this.#fids.values()) {
      if (fid.path && startsWith(fid.path, path)) fid.path = null;
    }
  }

  /**
   * The session as the guest holds it, for a suspended guest's state: msize and, per fid, its
   * names from the backend's root and the store they led into. Call it with no request in flight.
   */
  saveState(): SessionState {
    // Suspended again before the last session was taken back: that one is still the guest's.
    if (this.#restoring) return this.#restoring;
    const fids: SavedFid[] = [];
    for (const [number, fid] of this.#fids) {
      // An xattr fid lives for one getxattr/listxattr; the guest's retry gets a new one.
      if (fid.xattr) continue;
      const path = fid.stale === undefined ? fid.path : null;
      const saved = { fid: number, uid: fid.uid, path, base: fid.base, scope: path ? (this.#backend.scope?.(path) ?? null) : null };
      fids.push(fid.file ? { ...saved, open: fid.openFlags ?? 0 } : saved);
    }
    return { format: SESSION_STATE_FORMAT, msize: this.#msize, fids };
  }

  /**
   * Takes back a session saved by saveState, against this server's backend: a fid whose names
   * still lead to a file of the same store works again (reopened as it was, never truncated);
   * one whose file or store is gone, or whose share now names another folder, answers EIO to
   * every request but Tclunk. Throws SessionStateError, touching nothing, if `saved` is not a
   * session (it comes from a file); call it before the first request. Resolves with the counts.
   */
  restore(saved: unknown): Promise<{ restored: number; stale: number }> {
    if (this.#msize !== 0 || this.#fids.size > 0) throw new Error("a 9P session can only be restored into a new server");
    const state = parseSessionState(saved, { maxFids: this.#maxFids, maxOpenFiles: this.#maxOpenFiles, minMsize: MIN_MSIZE, maxMsize: this.#maxMsize });
    this.#msize = state.msize;
    this.#restoring = state;
    const done = this.#queue.then(async () => {
      let stale = 0;
      for (const f of state.fids) {
        const fid = await this.#rebuild(f);
        if (fid.stale !== undefined) stale++;
        this.#fids.set(f.fid, fid);
      }
      return { restored: state.fids.length - stale, stale };
    }).finally(() => {
      this.#restoring = undefined;
    });
    this.#queue = done.catch(() => undefined);
    return done;
  }

  async #rebuild(f: SavedFid): Promise<Fid> {
    const root = await this.#backend.root();
    const base = Math.min(f.base ?? 0, f.path?.length ?? 0);
    const fid: Fid = { node: root, parent: undefined, name: "", path: f.path ? [...f.path] : null, base, uid: f.uid };
    if (!f.path) return { ...fid, stale: "its file was removed before the guest was suspended" };
    const where = f.path.length === 0 ? "the top folder" : f.path.join("/");
    try {
      for (const [i, name] of f.path.entries()) {
        const next = await fid.node.walk(name);
        fid.parent = i < base ? undefined : fid.node;
        fid.node = next;
        fid.name = i < base ? "" : name;
      }
    } catch {
      return { ...fid, stale: `${where} is gone since the guest was suspended` };
    }
    const scope = this.#backend.scope?.(f.path);
    const same = f.scope !== null && (scope === f.scope || this.#backend.formerScope?.(f.path) === f.scope);
    if (!same) return { ...fid, stale: `${where} is in another folder than when the guest was suspended` };
    if (f.open === undefined) return fid;
    if ((f.open & OpenFlags.ACCMODE) === OpenFlags.ACCMODE || this.#openFiles >= this.#maxOpenFiles) return { ...fid, stale: `${where} cannot be opened again` };
    try {
      this.#opened(fid, await fid.node.open(f.open & ~(OpenFlags.TRUNC | OpenFlags.CREAT | OpenFlags.EXCL)));
    } catch {
      return { ...fid, stale: `${where} cannot be opened again` };
    }
    fid.openFlags = f.open & ~OpenFlags.TRUNC;
    return fid;
  }

  /** Fids that named `from/name` now name `to/toName` (the backend moved the file itself). */
  #renamed(from: P9Node, name: string, to: P9Node, toName: string): void {
    for (const fid of this.#fids.values()) {
      if (fid.parent === from && fid.name === name) {
        fid.parent = to;
        fid.name = toName;
      }
    }
  }
}

function startsWith(path: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= path.length && prefix.every((name, i) => path[i] === name);
}

function samePath(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && startsWith(a, b);
}

function lerror(tag: number, ecode: number): Uint8Array {
  return encodeMessage({ type: "Rlerror", tag, ecode });
}
