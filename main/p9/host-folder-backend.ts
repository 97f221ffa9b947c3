// The host-folder 9P backend (served by core/p9/server.ts): a share or 9P root in a host folder.
// Confinement: paths are rebuilt from the share root component by component, each parent
// lstat-checked to be a real directory, files opened O_NOFOLLOW and checked to be the file that
// was lstat'ed: nothing follows a symlink out of the share. Guest owners and modes live in a
// mapped store (QEMU's security_model=mapped idea), a hidden `.unmachine-attrs` per directory.

import { constants, type BigIntStats } from "node:fs";
import * as fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type {
  P9Attr, P9AttrChange, P9Backend, P9DirEntry, P9File, P9Node, P9Owner, P9StatFs, P9Time,
} from "../../core/p9/backend.js";
import { Errno, P9Error } from "../../core/p9/errno.js";
import { writePrivateFileAtomicAsync } from "../private-files.js";
import { DirentType, FileMode, OpenFlags, QidType } from "../../core/p9/messages.js";
import type { Qid } from "../../core/p9/wire.js";

/** The mapped store's file in each directory; this name and `<name>.*` are hidden from the guest. */
export const ATTRS_FILE = ".unmachine-attrs";

export interface HostFolderBackendOptions {
  /** Owner the guest sees on files it never created or chowned; the host's owner unless given. */
  readonly defaultOwner?: { readonly uid: number; readonly gid: number };
}

/** What the mapped store keeps for one file: the guest's view, where it differs from the host's. */
interface MappedAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  rdev?: number;
}

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } = constants;
const SPECIAL_TYPES: readonly number[] = [FileMode.CHR, FileMode.BLK, FileMode.FIFO, FileMode.SOCK];
const ATTR_CACHE_DIRS = 256;
const STAT_BATCH = 64;

function isReserved(name: string): boolean {
  return name === ATTRS_FILE || name.startsWith(`${ATTRS_FILE}.`);
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf("/");
  return slash < 0 ? "" : rel.slice(0, slash);
}

function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf("/") + 1);
}

function childOf(rel: string, name: string): string {
  return rel === "" ? name : `${rel}/${name}`;
}

/** Host permission bits for a guest mode: readable and executable bits follow the guest, the
 * owner (the host user) can always read and write, and nothing becomes group- or world-writable. */
function hostPerms(mode: number, dir: boolean): number {
  return (mode & 0o755) | (dir ? 0o700 : 0o600);
}

function time(ns: bigint): P9Time {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

function seconds(t: P9Time | "now" | undefined, currentNs: bigint): number {
  if (t === undefined) return Number(currentNs) / 1e9;
  if (t === "now") return Date.now() / 1000;
  return t.sec + t.nsec / 1e9;
}

function fileKey(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

/** A Node fs error as the errno the guest should see; anything unknown is EIO. */
function hostError(error: unknown, what: string): P9Error {
  if (error instanceof P9Error) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const known = code === "EOPNOTSUPP" ? "ENOTSUP" : code;
  const errno = known !== undefined && known in Errno ? Errno[known as keyof typeof Errno] : Errno.EIO;
  return new P9Error(errno, `${what}: ${(error as Error | undefined)?.message ?? String(error)}`);
}

async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw hostError(error, what);
  }
}

function tolerateMissing(error: unknown): undefined {
  if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
  throw error;
}

/** The per-directory mapped store: `.unmachine-attrs` holds JSON entries for the directory's
 * non-directory children (by name) and for the directory itself ("."). */
class AttrStore {
  readonly #tree: HostTree;
  readonly #cache = new Map<string, Map<string, MappedAttr>>();

  constructor(tree: HostTree) {
    this.#tree = tree;
  }

  async #load(dir: string): Promise<Map<string, MappedAttr>> {
    const cached = this.#cache.get(dir);
    if (cached) return cached;
    const entries = new Map<string, MappedAttr>();
    let text: string | undefined;
    try {
      const handle = await fsp.open(this.#tree.abs(childOf(dir, ATTRS_FILE)), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      try {
        text = await handle.readFile("utf8");
      } finally {
        await handle.close();
      }
    } catch (error) {
      // Missing, or not a plain file (a host-made symlink is never followed): nothing mapped.
      if ((error as NodeJS.ErrnoException).code !== "ELOOP") tolerateMissing(error);
    }
    if (text !== undefined) {
      try {
        const json = JSON.parse(text) as { entries?: unknown };
        if (Array.isArray(json.entries)) {
          for (const item of json.entries) {
            if (!Array.isArray(item) || typeof item[0] !== "string" || typeof item[1] !== "object" || item[1] === null) continue;
            const raw = item[1] as Record<string, unknown>;
            const attr: MappedAttr = {};
            for (const field of ["mode", "uid", "gid", "rdev"] as const) {
              const value = raw[field];
              if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffffffff) attr[field] = value;
            }
            entries.set(item[0], attr);
          }
        }
      } catch {
        // A store damaged outside the guest counts as empty: host attributes show through.
      }
    }
    if (this.#cache.size >= ATTR_CACHE_DIRS) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(dir, entries);
    return entries;
  }

  async get(dir: string, key: string): Promise<MappedAttr | undefined> {
    return (await this.#load(dir)).get(key);
  }

  /** Sets (or with undefined, drops) one entry and rewrites the directory's store atomically. */
  async set(dir: string, key: string, attr: MappedAttr | undefined): Promise<void> {
    const entries = await this.#load(dir);
    if (attr === undefined && !entries.has(key)) return;
    const next = new Map(entries);
    if (attr === undefined) next.delete(key);
    else next.set(key, attr);
    await this.#write(dir, next);
    this.#cache.set(dir, next);
  }

  async #write(dir: string, entries: Map<string, MappedAttr>): Promise<void> {
    const file = this.#tree.abs(childOf(dir, ATTRS_FILE));
    if (entries.size === 0) {
      await fsp.unlink(file).catch(tolerateMissing);
      return;
    }
    await writePrivateFileAtomicAsync(file, `${JSON.stringify({ version: 1, entries: [...entries] })}\n`);
  }

  /** Forgets cached stores (after a directory moved, their paths changed). */
  forget(): void {
    this.#cache.clear();
  }
}

/** Disk usage for the quota: file sizes (hard links once) and symlink targets, from a scan
 * at the first question, then kept up to date by every change the guest makes. */
class Usage {
  used = 0;
  readonly sizes = new Map<string, number>();

  set(st: BigIntStats, size: number): void {
    const key = fileKey(st);
    this.used += size - (this.sizes.get(key) ?? 0);
    this.sizes.set(key, size);
  }

  drop(st: BigIntStats): void {
    const key = fileKey(st);
    this.used -= this.sizes.get(key) ?? 0;
    this.sizes.delete(key);
  }
}

class HostTree {
  readonly #rootPath: string;
  readonly defaultOwner: { readonly uid: number; readonly gid: number } | undefined;
  readonly attrs = new AttrStore(this);
  #rootDev = 0n;
  usage: Usage | undefined;
  readonly #nodes = new Map<string, WeakRef<HostNode>>();
  readonly #gone = new FinalizationRegistry<{ rel: string | null }>((holder) => {
    if (holder.rel !== null && this.#nodes.get(holder.rel)?.deref() === undefined) this.#nodes.delete(holder.rel);
  });

  constructor(rootPath: string, options: HostFolderBackendOptions) {
    this.#rootPath = rootPath;
    this.defaultOwner = options.defaultOwner;
  }

  abs(rel: string): string {
    return rel === "" ? this.#rootPath : `${this.#rootPath}/${rel}`;
  }

  async start(): Promise<HostNode> {
    const st = await guard(`share folder ${this.#rootPath}`, () => fsp.lstat(this.#rootPath, { bigint: true }));
    if (!st.isDirectory()) throw new P9Error(Errno.ENOTDIR, `share folder ${this.#rootPath} is not a folder`);
    this.#rootDev = st.dev;
    return this.node("", st);
  }

  qid(st: BigIntStats): Qid {
    const type = st.isDirectory() ? QidType.DIR : st.isSymbolicLink() ? QidType.SYMLINK : QidType.FILE;
    const path = st.dev === this.#rootDev ? st.ino : st.ino ^ ((st.dev & 0xffffn) << 48n);
    return { type, version: 0, path };
  }

  /** The one live node for `rel`, so renames can move every fid's view of it at once. */
  node(rel: string, st: BigIntStats): HostNode {
    const existing = this.#nodes.get(rel)?.deref();
    if (existing && existing.qid.path === this.qid(st).path) return existing;
    if (existing) existing.holder.rel = null;
    const node = new HostNode(this, rel, this.qid(st));
    this.#nodes.set(rel, new WeakRef(node));
    this.#gone.register(node, node.holder);
    return node;
  }

  /** The file at `rel` is gone: nodes for it keep their open files but lose their path. */
  detach(rel: string): void {
    const node = this.#nodes.get(rel)?.deref();
    if (node) node.holder.rel = null;
    this.#nodes.delete(rel);
  }

  /** `from` (and everything below it) is now at `to`. */
  moved(from: string, to: string): void {
    const moving: [string, WeakRef<HostNode>][] = [];
    for (const entry of this.#nodes) {
      if (entry[0] === from || entry[0].startsWith(`${from}/`)) moving.push(entry);
    }
    for (const [rel] of moving) this.#nodes.delete(rel);
    for (const [rel, ref] of moving) {
      const node = ref.deref();
      if (!node) continue;
      const next = to + rel.slice(from.length);
      node.holder.rel = next;
      this.#nodes.set(next, ref);
    }
  }

  /** Every directory from the root down to (not including) `rel` must be a real directory. */
  async checkParents(rel: string): Promise<void> {
    const parts = rel === "" ? [] : rel.split("/");
    let at = "";
    for (let i = 0; i < parts.length; i++) {
      const st = await fsp.lstat(this.abs(at), { bigint: true });
      if (!st.isDirectory()) throw new P9Error(Errno.ENOENT, `"${at}" in the share is no longer a folder`);
      at = childOf(at, parts[i]!);
    }
  }

  /** lstat of `rel` after its parents are checked. */
  async stat(rel: string): Promise<BigIntStats> {
    await this.checkParents(rel);
    return fsp.lstat(this.abs(rel), { bigint: true });
  }

  async statDir(rel: string): Promise<BigIntStats> {
    const st = await this.stat(rel);
    if (!st.isDirectory()) throw new P9Error(Errno.ENOTDIR, `"${rel}" is not a folder`);
    return st;
  }

  /** Opens `rel` (lstat'ed as `st`) without following a symlink, and checks it is that file. */
  async openChecked(rel: string, st: BigIntStats, flags: number): Promise<FileHandle> {
    const dir = st.isDirectory() ? O_DIRECTORY : 0;
    const handle = await fsp.open(this.abs(rel), flags | dir | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    try {
      const now = await handle.stat({ bigint: true });
      if (now.ino !== st.ino || now.dev !== st.dev) throw new P9Error(Errno.EAGAIN, `"${rel}" changed while it was opened`);
      return handle;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Where the guest's attributes of `rel` are kept: [directory, key]. */
  attrKey(rel: string, dir: boolean): [string, string] {
    return dir ? [rel, "."] : [parentOf(rel), baseOf(rel)];
  }

  async mapped(rel: string | null, st: BigIntStats): Promise<MappedAttr | undefined> {
    if (rel === null) return undefined;
    const [dir, key] = this.attrKey(rel, st.isDirectory());
    return this.attrs.get(dir, key);
  }

  /** The guest's view of a host file: the host's stat with the mapped store laid over it. */
  attr(st: BigIntStats, mapped: MappedAttr | undefined): P9Attr {
    const hostMode = Number(st.mode);
    let type = hostMode & FileMode.TYPE;
    const mappedType = (mapped?.mode ?? 0) & FileMode.TYPE;
    if (type === FileMode.REG && SPECIAL_TYPES.includes(mappedType)) type = mappedType;
    const perms = mapped?.mode !== undefined ? mapped.mode & FileMode.PERMS : hostMode & FileMode.PERMS;
    const special = type !== (hostMode & FileMode.TYPE);
    const rdev = special ? (type === FileMode.CHR || type === FileMode.BLK ? mapped?.rdev ?? 0 : 0) : Number(st.rdev);
    const size = special ? 0 : Number(st.size);
    return {
      qid: this.qid(st),
      mode: type | perms,
      uid: mapped?.uid ?? this.defaultOwner?.uid ?? Number(st.uid),
      gid: mapped?.gid ?? this.defaultOwner?.gid ?? Number(st.gid),
      nlink: Number(st.nlink),
      rdev,
      size,
      blksize: Number(st.blksize),
      blocks: Number(st.blocks),
      atime: time(st.atimeNs),
      mtime: time(st.mtimeNs),
      ctime: time(st.ctimeNs),
    };
  }

  direntType(st: BigIntStats, mapped: MappedAttr | undefined): number {
    if (st.isDirectory()) return DirentType.DIR;
    if (st.isSymbolicLink()) return DirentType.LNK;
    if (st.isFIFO()) return DirentType.FIFO;
    if (st.isCharacterDevice()) return DirentType.CHR;
    if (st.isBlockDevice()) return DirentType.BLK;
    if (st.isSocket()) return DirentType.SOCK;
    switch ((mapped?.mode ?? 0) & FileMode.TYPE) {
      case FileMode.CHR: return DirentType.CHR;
      case FileMode.BLK: return DirentType.BLK;
      case FileMode.FIFO: return DirentType.FIFO;
      case FileMode.SOCK: return DirentType.SOCK;
      default: return DirentType.REG;
    }
  }

  /** Sums the share's file sizes (each inode once) without following symlinks. */
  async scan(): Promise<Usage> {
    const usage = new Usage();
    const pending = [""];
    while (pending.length > 0) {
      const dir = pending.pop()!;
      let names: string[];
      try {
        names = await fsp.readdir(this.abs(dir));
      } catch {
        continue;
      }
      for (const name of names) {
        if (isReserved(name)) continue;
        const rel = childOf(dir, name);
        const st = await fsp.lstat(this.abs(rel), { bigint: true }).catch(() => undefined);
        if (!st) continue;
        if (st.isDirectory()) pending.push(rel);
        else if (st.isFile() || st.isSymbolicLink()) usage.set(st, Number(st.size));
      }
    }
    return usage;
  }

  track(st: BigIntStats, size: number): void {
    this.usage?.set(st, size);
  }

  /** One name of the file `st` is gone; its bytes are freed with its last name. */
  untrack(st: BigIntStats): void {
    if (Number(st.nlink) <= 1 && !st.isDirectory()) this.usage?.drop(st);
  }
}

function live(node: HostNode): string {
  const rel = node.holder.rel;
  if (rel === null) throw new P9Error(Errno.ENOENT, "the file was removed");
  return rel;
}

function checkCreatable(name: string): void {
  if (isReserved(name)) throw new P9Error(Errno.EACCES, `"${name}" is reserved for the share's attribute store`);
}

function checkVisible(name: string): void {
  if (isReserved(name)) throw new P9Error(Errno.ENOENT, `no "${name}" in this folder`);
}

class HostNode implements P9Node {
  readonly qid: Qid;
  /** The path from the share root, or null once the file has no name left. */
  readonly holder: { rel: string | null };
  readonly #tree: HostTree;

  constructor(tree: HostTree, rel: string, qid: Qid) {
    this.#tree = tree;
    this.holder = { rel };
    this.qid = qid;
  }

  getattr(): Promise<P9Attr> {
    return guard("getattr", async () => {
      const rel = live(this);
      const st = await this.#tree.stat(rel);
      return this.#tree.attr(st, await this.#tree.mapped(rel, st));
    });
  }

  setattr(change: P9AttrChange): Promise<void> {
    const tree = this.#tree;
    return guard("setattr", async () => {
      const rel = live(this);
      const st = await tree.stat(rel);
      const isDir = st.isDirectory();
      const plain = st.isFile() || isDir;
      if (change.size !== undefined) {
        if (isDir) throw new P9Error(Errno.EISDIR, "cannot truncate a folder");
        if (!st.isFile()) throw new P9Error(Errno.EINVAL, "only regular files have a size to set");
      }
      const times = change.atime !== undefined || change.mtime !== undefined;
      if (change.mode !== undefined || change.uid !== undefined || change.gid !== undefined) {
        const [dir, key] = tree.attrKey(rel, isDir);
        const current = tree.attr(st, await tree.attrs.get(dir, key));
        const mode = change.mode !== undefined ? (current.mode & FileMode.TYPE) | (change.mode & FileMode.PERMS) : current.mode;
        const entry: MappedAttr = { mode, uid: change.uid ?? current.uid, gid: change.gid ?? current.gid };
        if (current.rdev && (current.mode & FileMode.TYPE) !== (Number(st.mode) & FileMode.TYPE)) entry.rdev = current.rdev;
        await tree.attrs.set(dir, key, entry);
      }
      if (st.isSymbolicLink()) {
        if (times) await fsp.lutimes(tree.abs(rel), seconds(change.atime, st.atimeNs), seconds(change.mtime, st.mtimeNs));
        return;
      }
      if (!plain || (change.size === undefined && change.mode === undefined && !times)) return;
      const handle = await tree.openChecked(rel, st, change.size !== undefined ? O_WRONLY : O_RDONLY);
      try {
        if (change.size !== undefined) {
          await handle.truncate(change.size);
          tree.track(st, change.size);
        }
        if (change.mode !== undefined) await handle.chmod(hostPerms(change.mode, isDir));
        if (times) await handle.utimes(seconds(change.atime, st.atimeNs), seconds(change.mtime, st.mtimeNs));
      } finally {
        await handle.close();
      }
    });
  }

  walk(name: string): Promise<P9Node> {
    return guard("walk", async () => {
      checkVisible(name);
      const rel = live(this);
      await this.#tree.statDir(rel);
      const child = childOf(rel, name);
      return this.#tree.node(child, await fsp.lstat(this.#tree.abs(child), { bigint: true }));
    });
  }

  open(flags: number): Promise<P9File> {
    const tree = this.#tree;
    return guard("open", async () => {
      const rel = live(this);
      const st = await tree.stat(rel);
      const access = flags & OpenFlags.ACCMODE;
      if (st.isSymbolicLink()) throw new P9Error(Errno.ELOOP, "a symlink is not opened; the guest resolves it");
      if (st.isDirectory()) {
        if (access !== OpenFlags.RDONLY) throw new P9Error(Errno.EISDIR, "a folder opens read-only");
        return new HostDirFile(this);
      }
      if (!st.isFile()) throw new P9Error(Errno.EACCES, "host device files, fifos and sockets are not opened from the guest");
      const hostAccess = access === OpenFlags.WRONLY ? O_WRONLY : access === OpenFlags.RDWR ? O_RDWR : O_RDONLY;
      const handle = await tree.openChecked(rel, st, hostAccess);
      if (flags & OpenFlags.TRUNC && access !== OpenFlags.RDONLY) {
        try {
          await handle.truncate(0);
        } catch (error) {
          await handle.close();
          throw error;
        }
        tree.track(st, 0);
      }
      return new HostFile(tree, this, handle);
    });
  }

  create(name: string, flags: number, mode: number, owner: P9Owner): Promise<{ node: P9Node; file: P9File }> {
    const tree = this.#tree;
    return guard("create", async () => {
      checkCreatable(name);
      const dir = live(this);
      await tree.statDir(dir);
      const rel = childOf(dir, name);
      const access = flags & OpenFlags.ACCMODE;
      const hostAccess = access === OpenFlags.WRONLY ? O_WRONLY : access === OpenFlags.RDWR ? O_RDWR : O_RDONLY;
      const handle = await fsp.open(tree.abs(rel), hostAccess | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, hostPerms(mode, false));
      let st: BigIntStats;
      try {
        st = await handle.stat({ bigint: true });
        await tree.attrs.set(dir, name, { mode: FileMode.REG | (mode & FileMode.PERMS), uid: owner.uid, gid: owner.gid });
      } catch (error) {
        await handle.close();
        await fsp.unlink(tree.abs(rel)).catch(() => undefined);
        throw error;
      }
      tree.track(st, 0);
      const node = tree.node(rel, st);
      return { node, file: new HostFile(tree, node, handle) };
    });
  }

  mkdir(name: string, mode: number, owner: P9Owner): Promise<P9Node> {
    const tree = this.#tree;
    return guard("mkdir", async () => {
      checkCreatable(name);
      const dir = live(this);
      await tree.statDir(dir);
      const rel = childOf(dir, name);
      await fsp.mkdir(tree.abs(rel), hostPerms(mode, true));
      try {
        await tree.attrs.set(rel, ".", { mode: FileMode.DIR | (mode & FileMode.PERMS), uid: owner.uid, gid: owner.gid });
      } catch (error) {
        await fsp.rmdir(tree.abs(rel)).catch(() => undefined);
        throw error;
      }
      return tree.node(rel, await fsp.lstat(tree.abs(rel), { bigint: true }));
    });
  }

  symlink(name: string, target: string, owner: P9Owner): Promise<P9Node> {
    const tree = this.#tree;
    return guard("symlink", async () => {
      checkCreatable(name);
      const dir = live(this);
      await tree.statDir(dir);
      const rel = childOf(dir, name);
      await fsp.symlink(target, tree.abs(rel));
      let st: BigIntStats;
      try {
        st = await fsp.lstat(tree.abs(rel), { bigint: true });
        await tree.attrs.set(dir, name, { mode: FileMode.LNK | 0o777, uid: owner.uid, gid: owner.gid });
      } catch (error) {
        await fsp.unlink(tree.abs(rel)).catch(() => undefined);
        throw error;
      }
      tree.track(st, Number(st.size));
      return tree.node(rel, st);
    });
  }

  mknod(name: string, mode: number, rdev: number, owner: P9Owner): Promise<P9Node> {
    const tree = this.#tree;
    return guard("mknod", async () => {
      checkCreatable(name);
      let type = mode & FileMode.TYPE;
      if (type === 0) type = FileMode.REG;
      if (type !== FileMode.REG && !SPECIAL_TYPES.includes(type)) throw new P9Error(Errno.EINVAL, "mknod makes files, devices, fifos and sockets");
      const dir = live(this);
      await tree.statDir(dir);
      const rel = childOf(dir, name);
      // Devices, fifos and sockets are empty host files; their type lives in the mapped store.
      const handle = await fsp.open(tree.abs(rel), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, type === FileMode.REG ? hostPerms(mode, false) : 0o600);
      const st = await handle.stat({ bigint: true }).finally(() => handle.close());
      const entry: MappedAttr = { mode: type | (mode & FileMode.PERMS), uid: owner.uid, gid: owner.gid };
      if (type === FileMode.CHR || type === FileMode.BLK) entry.rdev = rdev;
      try {
        await tree.attrs.set(dir, name, entry);
      } catch (error) {
        await fsp.unlink(tree.abs(rel)).catch(() => undefined);
        throw error;
      }
      tree.track(st, 0);
      return tree.node(rel, st);
    });
  }

  readlink(): Promise<string> {
    return guard("readlink", async () => {
      const rel = live(this);
      const st = await this.#tree.stat(rel);
      if (!st.isSymbolicLink()) throw new P9Error(Errno.EINVAL, "not a symlink");
      return fsp.readlink(this.#tree.abs(rel));
    });
  }

  link(name: string, target: P9Node): Promise<void> {
    const tree = this.#tree;
    return guard("link", async () => {
      checkCreatable(name);
      if (!(target instanceof HostNode) || target.#tree !== tree) throw new P9Error(Errno.EXDEV, "link across shares");
      const from = live(target);
      const st = await tree.stat(from);
      if (st.isDirectory()) throw new P9Error(Errno.EPERM, "folders cannot be hard-linked");
      const dir = live(this);
      await tree.statDir(dir);
      // link(2) makes a link to a symlink itself, never to what it points at.
      await fsp.link(tree.abs(from), tree.abs(childOf(dir, name)));
      const mapped = await tree.attrs.get(parentOf(from), baseOf(from));
      if (mapped) await tree.attrs.set(dir, name, { ...mapped });
    });
  }

  rename(name: string, toDir: P9Node, toName: string): Promise<void> {
    const tree = this.#tree;
    return guard("rename", async () => {
      checkVisible(name);
      checkCreatable(toName);
      if (!(toDir instanceof HostNode) || toDir.#tree !== tree) throw new P9Error(Errno.EXDEV, "rename across shares");
      const fromDir = live(this);
      const destDir = live(toDir);
      await tree.statDir(fromDir);
      await tree.statDir(destDir);
      const from = childOf(fromDir, name);
      const to = childOf(destDir, toName);
      const st = await fsp.lstat(tree.abs(from), { bigint: true });
      const old = await fsp.lstat(tree.abs(to), { bigint: true }).catch(tolerateMissing);
      if (old && old.ino === st.ino && old.dev === st.dev) return;
      if (st.isDirectory() && to.startsWith(`${from}/`)) throw new P9Error(Errno.EINVAL, "cannot move a folder into itself");
      if (old?.isDirectory() && st.isDirectory()) await this.#clearEmptyDir(to);
      await fsp.rename(tree.abs(from), tree.abs(to));
      if (old) {
        tree.untrack(old);
        tree.detach(to);
      }
      if (st.isDirectory()) {
        tree.attrs.forget();
      } else {
        const mapped = await tree.attrs.get(fromDir, name);
        await tree.attrs.set(destDir, toName, mapped);
        await tree.attrs.set(fromDir, name, undefined);
      }
      tree.moved(from, to);
    });
  }

  /** A folder the guest sees as empty may still hold its attribute store: remove that too. */
  async #clearEmptyDir(rel: string): Promise<void> {
    const names = await fsp.readdir(this.#tree.abs(rel));
    if (names.some((n) => !isReserved(n))) throw new P9Error(Errno.ENOTEMPTY, `"${baseOf(rel)}" is not empty`);
    for (const n of names) await fsp.unlink(this.#tree.abs(childOf(rel, n))).catch(tolerateMissing);
  }

  unlink(name: string, dir: boolean): Promise<void> {
    const tree = this.#tree;
    return guard("unlink", async () => {
      checkVisible(name);
      const parent = live(this);
      await tree.statDir(parent);
      const rel = childOf(parent, name);
      const st = await fsp.lstat(tree.abs(rel), { bigint: true });
      if (dir) {
        if (!st.isDirectory()) throw new P9Error(Errno.ENOTDIR, `"${name}" is not a folder`);
        await this.#clearEmptyDir(rel);
        await fsp.rmdir(tree.abs(rel));
        tree.attrs.forget();
      } else {
        if (st.isDirectory()) throw new P9Error(Errno.EISDIR, `"${name}" is a folder`);
        await fsp.unlink(tree.abs(rel));
        await tree.attrs.set(parent, name, undefined);
        tree.untrack(st);
      }
      tree.detach(rel);
    });
  }

  readdir(): Promise<P9DirEntry[]> {
    const tree = this.#tree;
    return guard("readdir", async () => {
      const rel = live(this);
      await tree.statDir(rel);
      const names = (await fsp.readdir(tree.abs(rel))).filter((n) => !isReserved(n));
      const entries: P9DirEntry[] = [];
      for (let i = 0; i < names.length; i += STAT_BATCH) {
        const batch = names.slice(i, i + STAT_BATCH);
        const stats = await Promise.all(batch.map((n) => fsp.lstat(tree.abs(childOf(rel, n)), { bigint: true }).catch(tolerateMissing)));
        for (const [j, st] of stats.entries()) {
          if (!st) continue;
          const name = batch[j]!;
          const mapped = st.isFile() ? await tree.attrs.get(rel, name) : undefined;
          entries.push({ name, qid: tree.qid(st), type: tree.direntType(st, mapped) });
        }
      }
      return entries;
    });
  }
}

class HostFile implements P9File {
  readonly #tree: HostTree;
  readonly #node: HostNode;
  readonly #handle: FileHandle;

  constructor(tree: HostTree, node: HostNode, handle: FileHandle) {
    this.#tree = tree;
    this.#node = node;
    this.#handle = handle;
  }

  read(offset: number, count: number): Promise<Uint8Array> {
    return guard("read", async () => {
      const buffer = new Uint8Array(count);
      let filled = 0;
      while (filled < count) {
        const { bytesRead } = await this.#handle.read(buffer, filled, count - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    });
  }

  write(offset: number, data: Uint8Array): Promise<number> {
    return guard("write", async () => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.#handle.write(data, done, data.length - done, offset + done);
        if (bytesWritten === 0) break;
        done += bytesWritten;
      }
      if (this.#tree.usage) {
        const st = await this.#handle.stat({ bigint: true });
        if (st.nlink > 0n) this.#tree.track(st, Number(st.size));
      }
      return done;
    });
  }

  getattr(): Promise<P9Attr> {
    return guard("getattr", async () => {
      const st = await this.#handle.stat({ bigint: true });
      const rel = st.nlink > 0n ? this.#node.holder.rel : null;
      return this.#tree.attr(st, await this.#tree.mapped(rel, st).catch(() => undefined));
    });
  }

  fsync(datasync: boolean): Promise<void> {
    return guard("fsync", () => (datasync ? this.#handle.datasync() : this.#handle.sync()));
  }

  close(): Promise<void> {
    return guard("close", () => this.#handle.close());
  }
}

/** An open folder: readdir goes through the node; there are no bytes to read or write. */
class HostDirFile implements P9File {
  readonly #node: HostNode;

  constructor(node: HostNode) {
    this.#node = node;
  }

  async read(): Promise<Uint8Array> {
    throw new P9Error(Errno.EISDIR, "read of a folder");
  }

  async write(): Promise<number> {
    throw new P9Error(Errno.EISDIR, "write to a folder");
  }

  getattr(): Promise<P9Attr> {
    return this.#node.getattr();
  }

  async fsync(): Promise<void> {}

  async close(): Promise<void> {}
}

/**
 * A host folder as a 9P backend. Nothing outside `folder` is ever read, written or followed;
 * the guest's owners and modes are kept in the folder's mapped store, never applied with chown.
 */
export class HostFolderBackend implements P9Backend {
  readonly folder: string;
  readonly #tree: Promise<{ tree: HostTree; root: HostNode }>;

  constructor(folder: string, options: HostFolderBackendOptions = {}) {
    this.folder = folder;
    this.#tree = (async () => {
      const real = await guard(`share folder ${folder}`, () => fsp.realpath(folder));
      const tree = new HostTree(real, options);
      return { tree, root: await tree.start() };
    })();
    this.#tree.catch(() => undefined);
  }

  async root(): Promise<P9Node> {
    return (await this.#tree).root;
  }

  async statfs(): Promise<P9StatFs> {
    const { tree } = await this.#tree;
    const fs = await guard("statfs", () => fsp.statfs(tree.abs("")));
    const st = await guard("statfs", () => fsp.lstat(tree.abs(""), { bigint: true }));
    return {
      bsize: fs.bsize, blocks: fs.blocks, bfree: fs.bfree, bavail: fs.bavail, files: fs.files, ffree: fs.ffree,
      fsid: st.dev, namelen: 255,
    };
  }

  async usedBytes(): Promise<number> {
    const { tree } = await this.#tree;
    tree.usage ??= await tree.scan();
    return Math.max(0, tree.usage.used);
  }
}
