// The host-folder 9P backend (served by core/p9/server.ts): a share or 9P root in a host folder.
// Confinement: every operation starts from the share root's descriptor and opens one folder at a
// time relative to the last (host-dir.ts), files are opened O_NOFOLLOW and checked to be the file
// that was looked up: no path string is ever resolved, so nothing follows a symlink out of the
// share, whenever it was swapped in. Guest owners and modes belong to the file (attr-store.ts);
// the quota counts what the host holds, open-but-removed files included.

import { constants, type BigIntStats } from "node:fs";
import * as fsp from "node:fs/promises";
import { resolve } from "node:path";
import type {
  P9Attr, P9AttrChange, P9Backend, P9DirEntry, P9File, P9Node, P9Owner, P9StatFs, P9Time,
} from "../../core/p9/backend.js";
import { Errno, P9Error } from "../../core/p9/errno.js";
import { DirentType, FileMode, OpenFlags, QidType } from "../../core/p9/messages.js";
import type { Qid } from "../../core/p9/wire.js";
import { AttrStore, ATTRS_FILE, ATTRS_LOG, type FileId, type MappedAttr } from "./attr-store.js";
import { FOLDER_ID_FILE, folderId } from "./folder-id.js";
import { descriptorPathsWork, hostDescriptors, Held, HeldDir, type DescriptorBudget } from "./host-dir.js";

export { ATTRS_FILE, ATTRS_LOG } from "./attr-store.js";

export interface HostFolderBackendOptions {
  /** Owner the guest sees on files it never created or chowned; the host's owner unless given. */
  readonly defaultOwner?: { readonly uid: number; readonly gid: number };
  /** Where host descriptors come from; the process-wide budget unless given. */
  readonly descriptors?: DescriptorBudget;
  /** Whether a folder without an id may be given one (folder-id.ts; an id it has is always
   * used); true unless given. */
  readonly identify?: boolean;
}

const { O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } = constants;
const SPECIAL_TYPES: readonly number[] = [FileMode.CHR, FileMode.BLK, FileMode.FIFO, FileMode.SOCK];
const STAT_BATCH = 64;
/** What the quota charges beyond bytes: each inode and each name of a file, as a host file
 * system spends them (ext4: a 256-byte inode, a directory entry); a folder's own size grows with
 * the names in it and is charged as it is. */
const ENTRY_BYTES = 512;

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

/** Host open flags for a guest's: the access mode, and APPEND so every write lands at the end. */
function hostOpenFlags(flags: number): number {
  const access = flags & OpenFlags.ACCMODE;
  const mode = access === OpenFlags.WRONLY ? O_WRONLY : access === OpenFlags.RDWR ? O_RDWR : O_RDONLY;
  return mode | (flags & OpenFlags.APPEND && access !== OpenFlags.RDONLY ? O_APPEND : 0);
}

function time(ns: bigint): P9Time {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

function seconds(t: P9Time | "now" | undefined, currentNs: bigint): number {
  if (t === undefined) return Number(currentNs) / 1e9;
  if (t === "now") return Date.now() / 1000;
  return t.sec + t.nsec / 1e9;
}

/** Bytes the host holds for a file, as the quota counts them: its size (a folder's listing, a
 * link's target) and its entry. Byte-exact, so a write of n more bytes costs exactly n. */
function charge(st: BigIntStats, names = Number(st.nlink)): number {
  const size = st.isFile() || st.isDirectory() || st.isSymbolicLink() ? Number(st.size) : 0;
  return size + ENTRY_BYTES * (st.isDirectory() ? 1 : Math.max(1, names));
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

/** Quota usage: bytes per file (hard links once), from a scan at the first question, then kept
 * up to date by every change the guest makes; a removed file still counts while it is open. */
class Usage {
  #files = 0;
  readonly #sizes = new Map<string, number>();

  get files(): number {
    return this.#files;
  }

  set(key: string, bytes: number): void {
    this.#files += bytes - (this.#sizes.get(key) ?? 0);
    this.#sizes.set(key, bytes);
  }

  drop(key: string): void {
    this.#files -= this.#sizes.get(key) ?? 0;
    this.#sizes.delete(key);
  }
}

class HostTree {
  readonly root: HeldDir;
  readonly budget: DescriptorBudget;
  readonly store: AttrStore;
  readonly defaultOwner: { readonly uid: number; readonly gid: number } | undefined;
  readonly #rootDev: bigint;
  usage: Usage | undefined;
  /** Open host files per file key: a removed file is forgotten with its last close. */
  readonly #opens = new Map<string, number>();
  readonly #nodes = new Map<string, WeakRef<HostNode>>();
  readonly #gone = new FinalizationRegistry<{ rel: string | null }>((holder) => {
    if (holder.rel !== null && this.#nodes.get(holder.rel)?.deref() === undefined) this.#nodes.delete(holder.rel);
  });

  constructor(root: HeldDir, rootDev: bigint, budget: DescriptorBudget, store: AttrStore, options: HostFolderBackendOptions) {
    this.root = root;
    this.#rootDev = rootDev;
    this.budget = budget;
    this.store = store;
    this.defaultOwner = options.defaultOwner;
  }

  static async start(folder: string, options: HostFolderBackendOptions): Promise<{ tree: HostTree; root: HostNode }> {
    const budget = options.descriptors ?? hostDescriptors;
    // Opened as recorded, following no link: see HeldDir.open.
    const root = await guard(`share folder ${folder}`, () => HeldDir.open(budget, resolve(folder)));
    try {
      if (!(await descriptorPathsWork(root))) throw new P9Error(Errno.ENOTSUP, `share folder ${folder}: this host has no /proc/self/fd to serve folders safely`);
      const st = await root.held.handle.stat({ bigint: true });
      const store = await guard(`share folder ${folder}`, () => AttrStore.open(root, budget));
      const tree = new HostTree(root, st.dev, budget, store, options);
      return { tree, root: tree.node("", st) };
    } catch (error) {
      await root.close();
      throw error;
    }
  }

  qid(st: BigIntStats): Qid {
    const type = st.isDirectory() ? QidType.DIR : st.isSymbolicLink() ? QidType.SYMLINK : QidType.FILE;
    const path = st.dev === this.#rootDev ? st.ino : st.ino ^ ((st.dev & 0xffffn) << 48n);
    return { type, version: 0, path };
  }

  /** The file's identity in the store and the quota: its inode (and device, off the share's). */
  id(st: BigIntStats): FileId {
    const key = st.dev === this.#rootDev ? `${st.ino}` : `${st.dev}:${st.ino}`;
    return { key, birth: `${st.birthtimeNs}` };
  }

  /** Runs `fn` on the real folder `rel`, opened one folder at a time from the root's descriptor. */
  async inDir<T>(rel: string, fn: (dir: HeldDir) => Promise<T>): Promise<T> {
    if (rel === "") return fn(this.root);
    let dir = this.root;
    try {
      for (const part of rel.split("/")) {
        // A symlink or a file where a folder was is ENOTDIR: never followed.
        const next = await dir.child(this.budget, part);
        if (dir !== this.root) await dir.close();
        dir = next;
      }
      return await fn(dir);
    } finally {
      if (dir !== this.root) await dir.close();
    }
  }

  /** Runs `fn` on the folder holding `rel` and the name of `rel` in it (`rel` is not the root). */
  inParent<T>(rel: string, fn: (dir: HeldDir, name: string) => Promise<T>): Promise<T> {
    return this.inDir(parentOf(rel), (dir) => fn(dir, baseOf(rel)));
  }

  /** lstat of `rel`, found from the root's descriptor. */
  stat(rel: string): Promise<BigIntStats> {
    if (rel === "") return this.root.held.handle.stat({ bigint: true });
    return this.inParent(rel, (dir, name) => fsp.lstat(dir.at(name), { bigint: true }));
  }

  /** Opens `name` in `dir` (lstat'ed as `st`) without following a symlink, and checks it is that file. */
  async openAt(dir: HeldDir, name: string, st: BigIntStats, flags: number): Promise<Held> {
    const held = await Held.open(this.budget, dir.at(name), flags | (st.isDirectory() ? O_DIRECTORY : 0) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    try {
      const now = await held.handle.stat({ bigint: true });
      if (now.ino !== st.ino || now.dev !== st.dev) throw new P9Error(Errno.EAGAIN, `"${name}" changed while it was opened`);
      return held;
    } catch (error) {
      await held.close();
      throw error;
    }
  }

  /** Opens the file at `rel` (its own folder for the root) for a change through its descriptor. */
  async openNode(rel: string, st: BigIntStats, flags: number): Promise<Held> {
    if (rel === "") return Held.open(this.budget, this.root.self, O_RDONLY | O_DIRECTORY);
    return this.inParent(rel, (dir, name) => this.openAt(dir, name, st, flags));
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

  /** Lays a chmod or chown over the guest's view of `st`; the new guest mode, if it changed. */
  async remap(st: BigIntStats, change: P9AttrChange): Promise<number | undefined> {
    if (change.mode === undefined && change.uid === undefined && change.gid === undefined) return undefined;
    const current = this.attr(st, await this.mapped(st));
    const mode = change.mode !== undefined ? (current.mode & FileMode.TYPE) | (change.mode & FileMode.PERMS) : current.mode;
    const entry: MappedAttr = { mode, uid: change.uid ?? current.uid, gid: change.gid ?? current.gid };
    if (current.rdev && (current.mode & FileMode.TYPE) !== (Number(st.mode) & FileMode.TYPE)) entry.rdev = current.rdev;
    await this.store.set(this.id(st), entry);
    return mode;
  }

  /** Applies a change to the open file `held` (lstat'ed or fstat'ed as `st`). A chmod or chown
   * also sets the host mode, which updates the file's ctime as POSIX asks. */
  async change(held: Held, st: BigIntStats, change: P9AttrChange): Promise<void> {
    const handle = held.handle;
    const mode = await this.remap(st, change);
    if (change.size !== undefined) {
      await handle.truncate(change.size);
      this.track(await handle.stat({ bigint: true }));
    }
    if (mode !== undefined) await handle.chmod(hostPerms(mode, st.isDirectory()));
    if (change.atime !== undefined || change.mtime !== undefined) {
      await handle.utimes(seconds(change.atime, st.atimeNs), seconds(change.mtime, st.mtimeNs));
    }
  }

  /** What the guest just made at `name` in `dir` (`rel`): its attributes recorded (the host
   * change undone if they cannot be), charged with its folder, and its node. */
  async made(dir: HeldDir, rel: string, name: string, entry: MappedAttr, undo: (path: string) => Promise<void>): Promise<HostNode> {
    let st: BigIntStats;
    try {
      st = await fsp.lstat(dir.at(name), { bigint: true });
      await this.store.set(this.id(st), entry);
    } catch (error) {
      await undo(dir.at(name)).catch(() => undefined);
      throw error;
    }
    this.track(st);
    await this.retrack(dir);
    return this.node(childOf(rel, name), st);
  }

  mapped(st: BigIntStats): Promise<MappedAttr | undefined> {
    return this.store.get(this.id(st));
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

  /** Charges every file of the share once, walking one folder at a time from the root (so it
   * holds two descriptors at most). A folder it cannot open for want of descriptors fails the
   * scan: a quota it could not count lets nothing grow. */
  async scan(): Promise<Usage> {
    const usage = new Usage();
    const top = await this.root.held.handle.stat({ bigint: true });
    usage.set(this.id(top).key, charge(top));
    const pending = [""];
    while (pending.length > 0) {
      const rel = pending.pop()!;
      await this.inDir(rel, async (dir) => {
        for (const name of await fsp.readdir(dir.self)) {
          if (name === ATTRS_LOG) continue; // counted as the store's bytes
          if (rel === "" && name === FOLDER_ID_FILE) continue; // the host's, not the guest's
          const st = await fsp.lstat(dir.at(name), { bigint: true }).catch(tolerateMissing);
          if (!st) continue;
          usage.set(this.id(st).key, charge(st));
          if (st.isDirectory()) pending.push(childOf(rel, name));
        }
      }).catch((error: unknown) => {
        // Gone or replaced by a link since it was listed: nothing there to count.
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "ENOTDIR") throw error;
      });
    }
    return usage;
  }

  usedBytes(): number {
    return (this.usage?.files ?? 0) + this.store.bytes;
  }

  track(st: BigIntStats): void {
    this.usage?.set(this.id(st).key, charge(st));
  }

  /** A folder's listing grew or shrank with a name: its size is charged as it now is. */
  async retrack(dir: HeldDir): Promise<void> {
    if (this.usage) this.track(await dir.held.handle.stat({ bigint: true }));
  }

  opened(st: BigIntStats): void {
    const key = this.id(st).key;
    this.#opens.set(key, (this.#opens.get(key) ?? 0) + 1);
  }

  /** An open file was closed: a file with no name left is gone from the quota and the store. */
  async closed(st: BigIntStats): Promise<void> {
    const key = this.id(st).key;
    const left = (this.#opens.get(key) ?? 1) - 1;
    if (left > 0) this.#opens.set(key, left);
    else this.#opens.delete(key);
    if (left <= 0 && st.nlink === 0n) await this.forget(st);
  }

  /** A name of `st` (lstat'ed before it went) is gone: with its last name, and no one holding it
   * open, the file leaves the quota and the store. */
  async unnamed(st: BigIntStats): Promise<void> {
    if (!st.isDirectory() && st.nlink > 1n) {
      this.usage?.set(this.id(st).key, charge(st, Number(st.nlink) - 1));
      return;
    }
    if (!st.isDirectory() && this.#opens.has(this.id(st).key)) {
      this.usage?.set(this.id(st).key, charge(st, 0));
      return;
    }
    await this.forget(st);
  }

  /** The file is gone from the host: out of the quota, and out of the store as far as it can be
   * written (the host change is done either way; a record left behind is never inherited, its
   * birth time will not match). */
  async forget(st: BigIntStats): Promise<void> {
    this.usage?.drop(this.id(st).key);
    await this.store.set(this.id(st), undefined).catch(() => undefined);
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
      const st = await this.#tree.stat(live(this));
      return this.#tree.attr(st, await this.#tree.mapped(st));
    });
  }

  setattr(change: P9AttrChange): Promise<void> {
    const tree = this.#tree;
    return guard("setattr", async () => {
      const rel = live(this);
      const st = await tree.stat(rel);
      if (change.size !== undefined) {
        if (st.isDirectory()) throw new P9Error(Errno.EISDIR, "cannot truncate a folder");
        if (!st.isFile()) throw new P9Error(Errno.EINVAL, "only regular files have a size to set");
      }
      const times = change.atime !== undefined || change.mtime !== undefined;
      if (st.isSymbolicLink()) {
        await tree.remap(st, change);
        if (times) await tree.inParent(rel, (dir, name) => fsp.lutimes(dir.at(name), seconds(change.atime, st.atimeNs), seconds(change.mtime, st.mtimeNs)));
        return;
      }
      if (Object.keys(change).length === 0) return;
      const held = await tree.openNode(rel, st, change.size !== undefined ? O_WRONLY : O_RDONLY);
      try {
        await tree.change(held, st, change);
      } finally {
        await held.close();
      }
    });
  }

  walk(name: string): Promise<P9Node> {
    return guard("walk", async () => {
      checkVisible(name);
      const rel = live(this);
      const st = await this.#tree.inDir(rel, (dir) => fsp.lstat(dir.at(name), { bigint: true }));
      return this.#tree.node(childOf(rel, name), st);
    });
  }

  open(flags: number): Promise<P9File> {
    const tree = this.#tree;
    return guard("open", async () => {
      const rel = live(this);
      const access = flags & OpenFlags.ACCMODE;
      if (rel === "") {
        if (access !== OpenFlags.RDONLY) throw new P9Error(Errno.EISDIR, "a folder opens read-only");
        return new HostDirFile(this);
      }
      return tree.inParent(rel, async (dir, name) => {
        const st = await fsp.lstat(dir.at(name), { bigint: true });
        if (st.isSymbolicLink()) throw new P9Error(Errno.ELOOP, "a symlink is not opened; the guest resolves it");
        if (st.isDirectory()) {
          if (access !== OpenFlags.RDONLY) throw new P9Error(Errno.EISDIR, "a folder opens read-only");
          return new HostDirFile(this);
        }
        if (!st.isFile()) throw new P9Error(Errno.EACCES, "host device files, fifos and sockets are not opened from the guest");
        const held = await tree.openAt(dir, name, st, hostOpenFlags(flags));
        if (flags & OpenFlags.TRUNC && access !== OpenFlags.RDONLY) {
          try {
            await held.handle.truncate(0);
          } catch (error) {
            await held.close();
            throw error;
          }
        }
        return HostFile.start(tree, held);
      });
    });
  }

  create(name: string, flags: number, mode: number, owner: P9Owner): Promise<{ node: P9Node; file: P9File }> {
    const tree = this.#tree;
    return guard("create", async () => {
      checkCreatable(name);
      const rel = live(this);
      return tree.inDir(rel, async (dir) => {
        const held = await Held.open(tree.budget, dir.at(name), hostOpenFlags(flags) | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, hostPerms(mode, false));
        let st: BigIntStats;
        try {
          st = await held.handle.stat({ bigint: true });
          await tree.store.set(tree.id(st), { mode: FileMode.REG | (mode & FileMode.PERMS), uid: owner.uid, gid: owner.gid });
        } catch (error) {
          await held.close();
          await fsp.unlink(dir.at(name)).catch(() => undefined);
          throw error;
        }
        const node = tree.node(childOf(rel, name), st);
        const file = await HostFile.start(tree, held);
        await tree.retrack(dir);
        return { node, file };
      });
    });
  }

  mkdir(name: string, mode: number, owner: P9Owner): Promise<P9Node> {
    const tree = this.#tree;
    return guard("mkdir", async () => {
      checkCreatable(name);
      const rel = live(this);
      return tree.inDir(rel, async (dir) => {
        await fsp.mkdir(dir.at(name), hostPerms(mode, true));
        return tree.made(dir, rel, name, { mode: FileMode.DIR | (mode & FileMode.PERMS), uid: owner.uid, gid: owner.gid }, (path) => fsp.rmdir(path));
      });
    });
  }

  symlink(name: string, target: string, owner: P9Owner): Promise<P9Node> {
    const tree = this.#tree;
    return guard("symlink", async () => {
      checkCreatable(name);
      const rel = live(this);
      return tree.inDir(rel, async (dir) => {
        await fsp.symlink(target, dir.at(name));
        return tree.made(dir, rel, name, { mode: FileMode.LNK | 0o777, uid: owner.uid, gid: owner.gid }, (path) => fsp.unlink(path));
      });
    });
  }

  mknod(name: string, mode: number, rdev: number, owner: P9Owner): Promise<P9Node> {
    const tree = this.#tree;
    return guard("mknod", async () => {
      checkCreatable(name);
      let type = mode & FileMode.TYPE;
      if (type === 0) type = FileMode.REG;
      if (type !== FileMode.REG && !SPECIAL_TYPES.includes(type)) throw new P9Error(Errno.EINVAL, "mknod makes files, devices, fifos and sockets");
      const rel = live(this);
      return tree.inDir(rel, async (dir) => {
        // Devices, fifos and sockets are empty host files; their type lives in the mapped store.
        const held = await Held.open(tree.budget, dir.at(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, type === FileMode.REG ? hostPerms(mode, false) : 0o600);
        await held.close();
        const entry: MappedAttr = { mode: type | (mode & FileMode.PERMS), uid: owner.uid, gid: owner.gid };
        if (type === FileMode.CHR || type === FileMode.BLK) entry.rdev = rdev;
        return tree.made(dir, rel, name, entry, (path) => fsp.unlink(path));
      });
    });
  }

  readlink(): Promise<string> {
    return guard("readlink", async () => {
      const rel = live(this);
      if (rel === "") throw new P9Error(Errno.EINVAL, "not a symlink");
      return this.#tree.inParent(rel, async (dir, name) => {
        const st = await fsp.lstat(dir.at(name), { bigint: true });
        if (!st.isSymbolicLink()) throw new P9Error(Errno.EINVAL, "not a symlink");
        return fsp.readlink(dir.at(name));
      });
    });
  }

  link(name: string, target: P9Node): Promise<void> {
    const tree = this.#tree;
    return guard("link", async () => {
      checkCreatable(name);
      if (!(target instanceof HostNode) || target.#tree !== tree) throw new P9Error(Errno.EXDEV, "link across shares");
      const from = live(target);
      if (from === "") throw new P9Error(Errno.EPERM, "folders cannot be hard-linked");
      const rel = live(this);
      await tree.inParent(from, (fromDir, fromName) => tree.inDir(rel, async (dir) => {
        const st = await fsp.lstat(fromDir.at(fromName), { bigint: true });
        if (st.isDirectory()) throw new P9Error(Errno.EPERM, "folders cannot be hard-linked");
        // link(2) makes a link to a symlink itself, never to what it points at; the new name
        // is the same file, so it has the same mapped attributes.
        await fsp.link(fromDir.at(fromName), dir.at(name));
        tree.track(await fsp.lstat(dir.at(name), { bigint: true }));
        await tree.retrack(dir);
      }));
    });
  }

  rename(name: string, toDir: P9Node, toName: string): Promise<void> {
    const tree = this.#tree;
    return guard("rename", async () => {
      checkVisible(name);
      checkCreatable(toName);
      if (!(toDir instanceof HostNode) || toDir.#tree !== tree) throw new P9Error(Errno.EXDEV, "rename across shares");
      const fromRel = live(this);
      const destRel = live(toDir);
      const from = childOf(fromRel, name);
      const to = childOf(destRel, toName);
      await tree.inDir(fromRel, (src) => tree.inDir(destRel, async (dest) => {
        const st = await fsp.lstat(src.at(name), { bigint: true });
        const old = await fsp.lstat(dest.at(toName), { bigint: true }).catch(tolerateMissing);
        if (old && old.ino === st.ino && old.dev === st.dev) return;
        if (st.isDirectory() && to.startsWith(`${from}/`)) throw new P9Error(Errno.EINVAL, "cannot move a folder into itself");
        if (old?.isDirectory() && st.isDirectory()) await clearEmptyDir(tree, dest, toName);
        await fsp.rename(src.at(name), dest.at(toName));
        await tree.retrack(src);
        await tree.retrack(dest);
        if (old) {
          await tree.unnamed(old);
          tree.detach(to);
        }
        tree.moved(from, to);
      }));
    });
  }

  unlink(name: string, dir: boolean): Promise<void> {
    const tree = this.#tree;
    return guard("unlink", async () => {
      checkVisible(name);
      const parent = live(this);
      await tree.inDir(parent, async (held) => {
        const st = await fsp.lstat(held.at(name), { bigint: true });
        if (dir) {
          if (!st.isDirectory()) throw new P9Error(Errno.ENOTDIR, `"${name}" is not a folder`);
          await clearEmptyDir(tree, held, name);
          await fsp.rmdir(held.at(name));
        } else {
          if (st.isDirectory()) throw new P9Error(Errno.EISDIR, `"${name}" is a folder`);
          await fsp.unlink(held.at(name));
        }
        await tree.retrack(held);
        await tree.unnamed(st);
      });
      tree.detach(childOf(parent, name));
    });
  }

  readdir(): Promise<P9DirEntry[]> {
    const tree = this.#tree;
    return guard("readdir", async () => {
      const rel = live(this);
      return tree.inDir(rel, async (dir) => {
        const names = (await fsp.readdir(dir.self)).filter((n) => !isReserved(n));
        const entries: P9DirEntry[] = [];
        for (let i = 0; i < names.length; i += STAT_BATCH) {
          const batch = names.slice(i, i + STAT_BATCH);
          const stats = await Promise.all(batch.map((n) => fsp.lstat(dir.at(n), { bigint: true }).catch(tolerateMissing)));
          for (const [j, st] of stats.entries()) {
            if (!st) continue;
            const mapped = st.isFile() ? await tree.mapped(st) : undefined;
            entries.push({ name: batch[j]!, qid: tree.qid(st), type: tree.direntType(st, mapped) });
          }
        }
        return entries;
      });
    });
  }
}

/** A folder the guest sees as empty may still hold an older attribute store: remove that too. */
async function clearEmptyDir(tree: HostTree, parent: HeldDir, name: string): Promise<void> {
  const sub = await parent.child(tree.budget, name);
  try {
    const names = await fsp.readdir(sub.self);
    if (names.some((n) => !isReserved(n))) throw new P9Error(Errno.ENOTEMPTY, `"${name}" is not empty`);
    for (const n of names) await fsp.unlink(sub.at(n)).catch(tolerateMissing);
  } finally {
    await sub.close();
  }
}

class HostFile implements P9File {
  readonly #tree: HostTree;
  readonly #held: Held;
  readonly #opened: BigIntStats;

  private constructor(tree: HostTree, held: Held, opened: BigIntStats) {
    this.#tree = tree;
    this.#held = held;
    this.#opened = opened;
  }

  static async start(tree: HostTree, held: Held): Promise<HostFile> {
    let st: BigIntStats;
    try {
      st = await held.handle.stat({ bigint: true });
    } catch (error) {
      await held.close();
      throw error;
    }
    tree.opened(st);
    tree.track(st);
    return new HostFile(tree, held, st);
  }

  read(offset: number, count: number): Promise<Uint8Array> {
    return guard("read", async () => {
      const buffer = new Uint8Array(count);
      let filled = 0;
      while (filled < count) {
        const { bytesRead } = await this.#held.handle.read(buffer, filled, count - filled, offset + filled);
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
        // On a file opened O_APPEND, Linux writes at the end whatever the position says.
        const { bytesWritten } = await this.#held.handle.write(data, done, data.length - done, offset + done);
        if (bytesWritten === 0) break;
        done += bytesWritten;
      }
      // Counted whether or not the file still has a name: its bytes are on the host all the same.
      if (this.#tree.usage) this.#tree.track(await this.#held.handle.stat({ bigint: true }));
      return done;
    });
  }

  /** ftruncate, fchmod, futimens on the file itself, whether or not it still has a name. */
  setattr(change: P9AttrChange): Promise<void> {
    return guard("setattr", async () => this.#tree.change(this.#held, await this.#held.handle.stat({ bigint: true }), change));
  }

  getattr(): Promise<P9Attr> {
    return guard("getattr", async () => {
      const st = await this.#held.handle.stat({ bigint: true });
      return this.#tree.attr(st, await this.#tree.mapped(st).catch(() => undefined));
    });
  }

  fsync(datasync: boolean): Promise<void> {
    return guard("fsync", async () => {
      await (datasync ? this.#held.handle.datasync() : this.#held.handle.sync());
      await this.#tree.store.sync();
    });
  }

  close(): Promise<void> {
    return guard("close", async () => {
      const st = await this.#held.handle.stat({ bigint: true }).catch(() => this.#opened);
      await this.#held.close();
      await this.#tree.closed(st);
    });
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
  /** The folder's own id (folder-id.ts), if it has one. */
  #id: string | undefined;
  /** The folder actually held open: where its descriptor leads, and which inode it is. */
  #place: string | undefined;
  #closed = false;

  constructor(folder: string, options: HostFolderBackendOptions = {}) {
    this.folder = folder;
    this.#tree = HostTree.start(folder, options).then(async (started) => {
      try {
        const st = await started.tree.root.held.handle.stat({ bigint: true });
        this.#place = `${await fsp.realpath(started.tree.root.self)} ${st.dev}:${st.ino}`;
      } catch {
        this.#place = undefined;
      }
      this.#id = await folderId(started.tree.root, options.identify ?? true);
      return started;
    });
    this.#tree.catch(() => undefined);
  }

  /** The folder's own id, which moves and is copied with it; its real path, device and inode
   * if it has none (a read-only share). Known once it is open. */
  scope(): string | undefined {
    if (this.#id !== undefined) return `folder ${this.#id}`;
    return this.#place === undefined ? undefined : `place ${this.#place}`;
  }

  /** Its real path, device and inode: how a session saved before folders had ids named it. */
  formerScope(): string | undefined {
    return this.#place;
  }

  async root(): Promise<P9Node> {
    return (await this.#tree).root;
  }

  async statfs(): Promise<P9StatFs> {
    const { tree } = await this.#tree;
    const fs = await guard("statfs", () => fsp.statfs(tree.root.self));
    const st = await guard("statfs", () => tree.root.held.handle.stat({ bigint: true }));
    return {
      bsize: fs.bsize, blocks: fs.blocks, bfree: fs.bfree, bavail: fs.bavail, files: fs.files, ffree: fs.ffree,
      fsid: st.dev, namelen: 255,
    };
  }

  async usedBytes(): Promise<number> {
    const { tree } = await this.#tree;
    tree.usage ??= await tree.scan();
    return Math.max(0, tree.usedBytes());
  }

  /** Makes the store durable and gives back the share root's descriptor (once, however often called). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const started = await this.#tree.catch(() => undefined);
    if (!started) return;
    await started.tree.store.release();
    await started.tree.root.close();
  }
}
