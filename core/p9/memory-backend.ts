// An in-memory 9P backend: a tree of nodes with Linux modes, owners, times, symlinks, device
// nodes and hard links, for unit tests and scratch shares. Counterpart of the host-folder
// backend (main/p9/host-folder-backend.ts); both pass test/core/p9/conformance.ts. Invariants:
// a directory has one parent, nlink counts names (and subdirectories' ".."), and the bytes held
// never exceed `capacityBytes` (ENOSPC), so a guest cannot exhaust the host's memory.

import { P9Error, Errno } from "./errno.js";
import { DirentType, FileMode, OpenFlags, QidType } from "./messages.js";
import type { Qid } from "./wire.js";
import type { P9Attr, P9AttrChange, P9Backend, P9DirEntry, P9File, P9Node, P9Owner, P9StatFs, P9Time } from "./backend.js";

export interface MemoryBackendOptions {
  /** The most file bytes (plus symlink targets) held at once; 64 MiB unless given. */
  readonly capacityBytes?: number;
  /** Owner and mode of the root directory; root:root 0755 unless given. */
  readonly root?: { readonly uid: number; readonly gid: number; readonly mode: number };
  /** What scope() names it by: one per backend made in this process unless given. */
  readonly identity?: string;
}

let made = 0;

const BLOCK = 4096;

function now(): P9Time {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

function direntType(mode: number): number {
  switch (mode & FileMode.TYPE) {
    case FileMode.DIR: return DirentType.DIR;
    case FileMode.LNK: return DirentType.LNK;
    case FileMode.CHR: return DirentType.CHR;
    case FileMode.BLK: return DirentType.BLK;
    case FileMode.FIFO: return DirentType.FIFO;
    case FileMode.SOCK: return DirentType.SOCK;
    default: return DirentType.REG;
  }
}

export class MemoryBackend implements P9Backend {
  readonly capacityBytes: number;
  #used = 0;
  #nextPath = 1n;
  readonly #root: MemoryNode;
  readonly #identity: string;

  constructor(options: MemoryBackendOptions = {}) {
    this.capacityBytes = options.capacityBytes ?? 64 * 1024 * 1024;
    this.#identity = options.identity ?? `memory ${++made}`;
    const root = options.root ?? { uid: 0, gid: 0, mode: 0o755 };
    this.#root = new MemoryNode(this, FileMode.DIR | (root.mode & FileMode.PERMS), root, undefined);
  }

  async root(): Promise<P9Node> {
    return this.#root;
  }

  /** The whole tree is one store. */
  scope(): string {
    return this.#identity;
  }

  async statfs(): Promise<P9StatFs> {
    const blocks = Math.ceil(this.capacityBytes / BLOCK);
    const free = Math.max(0, blocks - Math.ceil(this.#used / BLOCK));
    return { bsize: BLOCK, blocks, bfree: free, bavail: free, files: 1 << 20, ffree: (1 << 20) - Number(this.#nextPath), fsid: 0x6d656d6fn, namelen: 255 };
  }

  async usedBytes(): Promise<number> {
    return this.#used;
  }

  /** @internal A fresh qid path for a new node. */
  allocPath(): bigint {
    return this.#nextPath++;
  }

  /** @internal Accounts `delta` bytes, refusing growth past the capacity. */
  charge(delta: number): void {
    if (delta > 0) this.checkRoom(delta);
    this.#used += delta;
  }

  /** @internal Throws ENOSPC unless `bytes` more fit (an unlinked open file grows uncharged). */
  checkRoom(bytes: number): void {
    if (this.#used + bytes > this.capacityBytes) {
      throw new P9Error(Errno.ENOSPC, `memory share is full (${this.capacityBytes} bytes)`);
    }
  }
}

class MemoryNode implements P9Node {
  readonly qid: Qid;
  readonly #fs: MemoryBackend;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev = 0;
  atime: P9Time;
  mtime: P9Time;
  ctime: P9Time;
  /** Regular files: the bytes, of which `size` are the file. */
  data = new Uint8Array(0);
  size = 0;
  /** Directories: the entries and the one parent (the root is its own). */
  readonly children: Map<string, MemoryNode> | undefined;
  parent: MemoryNode;
  /** Symlinks: the target, never resolved here. */
  target = "";

  constructor(fs: MemoryBackend, mode: number, owner: P9Owner, parent: MemoryNode | undefined) {
    this.#fs = fs;
    this.mode = mode;
    this.uid = owner.uid;
    this.gid = owner.gid;
    const type = mode & FileMode.TYPE;
    const qidType = type === FileMode.DIR ? QidType.DIR : type === FileMode.LNK ? QidType.SYMLINK : QidType.FILE;
    this.qid = { type: qidType, version: 0, path: fs.allocPath() };
    this.children = type === FileMode.DIR ? new Map() : undefined;
    this.nlink = type === FileMode.DIR ? 2 : 1;
    this.parent = parent ?? this;
    this.atime = this.mtime = this.ctime = now();
  }

  get isDir(): boolean {
    return this.children !== undefined;
  }

  get isFile(): boolean {
    return (this.mode & FileMode.TYPE) === FileMode.REG;
  }

  get isSymlink(): boolean {
    return (this.mode & FileMode.TYPE) === FileMode.LNK;
  }

  #dir(): Map<string, MemoryNode> {
    if (!this.children) throw new P9Error(Errno.ENOTDIR, "not a directory");
    return this.children;
  }

  #child(name: string): MemoryNode {
    const child = this.#dir().get(name);
    if (!child) throw new P9Error(Errno.ENOENT, `no "${name}" in this directory`);
    return child;
  }

  #free(name: string): Map<string, MemoryNode> {
    const children = this.#dir();
    if (children.has(name)) throw new P9Error(Errno.EEXIST, `"${name}" already exists`);
    return children;
  }

  #touchDir(): void {
    this.mtime = this.ctime = now();
  }

  async getattr(): Promise<P9Attr> {
    const size = this.isFile ? this.size : this.isSymlink ? new TextEncoder().encode(this.target).length : this.isDir ? BLOCK : 0;
    return {
      qid: this.qid, mode: this.mode, uid: this.uid, gid: this.gid, nlink: this.nlink, rdev: this.rdev, size,
      blksize: BLOCK, blocks: Math.ceil(size / 512), atime: this.atime, mtime: this.mtime, ctime: this.ctime,
    };
  }

  async setattr(change: P9AttrChange): Promise<void> {
    if (change.size !== undefined) {
      if (this.isDir) throw new P9Error(Errno.EISDIR, "cannot truncate a directory");
      if (!this.isFile) throw new P9Error(Errno.EINVAL, "only regular files have a size to set");
      this.resize(change.size);
      this.mtime = now();
    }
    if (change.mode !== undefined) this.mode = (this.mode & FileMode.TYPE) | (change.mode & FileMode.PERMS);
    if (change.uid !== undefined) this.uid = change.uid;
    if (change.gid !== undefined) this.gid = change.gid;
    if (change.atime !== undefined) this.atime = change.atime === "now" ? now() : change.atime;
    if (change.mtime !== undefined) this.mtime = change.mtime === "now" ? now() : change.mtime;
    this.ctime = now();
  }

  /** Sets a regular file's size, zero-filling growth and charging linked bytes to the share. */
  resize(size: number): void {
    if (this.nlink > 0) this.#fs.charge(size - this.size);
    else if (size > this.size) this.#fs.checkRoom(size - this.size);
    if (size > this.data.length) {
      const grown = new Uint8Array(Math.max(size, Math.min(this.data.length * 2, size + 16 * 1024 * 1024)));
      grown.set(this.data.subarray(0, this.size));
      this.data = grown;
    } else if (size < this.size) {
      this.data.fill(0, size, this.size);
    }
    this.size = size;
  }

  async walk(name: string): Promise<P9Node> {
    return this.#child(name);
  }

  async open(flags: number): Promise<P9File> {
    if (this.isSymlink) throw new P9Error(Errno.ELOOP, "a symlink is not opened; the guest resolves it");
    const access = flags & OpenFlags.ACCMODE;
    if (this.isDir && access !== OpenFlags.RDONLY) throw new P9Error(Errno.EISDIR, "a directory opens read-only");
    if (this.isFile && flags & OpenFlags.TRUNC && access !== OpenFlags.RDONLY) {
      this.resize(0);
      this.mtime = this.ctime = now();
    }
    return new MemoryFile(this, (flags & OpenFlags.APPEND) !== 0);
  }

  async create(name: string, flags: number, mode: number, owner: P9Owner): Promise<{ node: P9Node; file: P9File }> {
    const children = this.#free(name);
    const node = new MemoryNode(this.#fs, FileMode.REG | (mode & FileMode.PERMS), owner, undefined);
    children.set(name, node);
    this.#touchDir();
    return { node, file: await node.open(flags & ~OpenFlags.TRUNC) };
  }

  async mkdir(name: string, mode: number, owner: P9Owner): Promise<P9Node> {
    const children = this.#free(name);
    const node = new MemoryNode(this.#fs, FileMode.DIR | (mode & FileMode.PERMS), owner, this);
    children.set(name, node);
    this.nlink++;
    this.#touchDir();
    return node;
  }

  async symlink(name: string, target: string, owner: P9Owner): Promise<P9Node> {
    const children = this.#free(name);
    this.#fs.charge(new TextEncoder().encode(target).length);
    const node = new MemoryNode(this.#fs, FileMode.LNK | 0o777, owner, undefined);
    node.target = target;
    children.set(name, node);
    this.#touchDir();
    return node;
  }

  async mknod(name: string, mode: number, rdev: number, owner: P9Owner): Promise<P9Node> {
    let type = mode & FileMode.TYPE;
    if (type === 0) type = FileMode.REG;
    if (type === FileMode.DIR || type === FileMode.LNK) throw new P9Error(Errno.EINVAL, "mknod makes files, devices, fifos and sockets");
    const children = this.#free(name);
    const node = new MemoryNode(this.#fs, type | (mode & FileMode.PERMS), owner, undefined);
    if (type === FileMode.CHR || type === FileMode.BLK) node.rdev = rdev;
    children.set(name, node);
    this.#touchDir();
    return node;
  }

  async readlink(): Promise<string> {
    if (!this.isSymlink) throw new P9Error(Errno.EINVAL, "not a symlink");
    this.atime = now();
    return this.target;
  }

  async link(name: string, target: P9Node): Promise<void> {
    if (!(target instanceof MemoryNode) || target.#fs !== this.#fs) throw new P9Error(Errno.EXDEV, "link across shares");
    if (target.isDir) throw new P9Error(Errno.EPERM, "directories cannot be hard-linked");
    if (target.nlink === 0) throw new P9Error(Errno.ENOENT, "the file was removed");
    const children = this.#free(name);
    children.set(name, target);
    target.nlink++;
    target.ctime = now();
    this.#touchDir();
  }

  async rename(name: string, toDir: P9Node, toName: string): Promise<void> {
    if (!(toDir instanceof MemoryNode) || toDir.#fs !== this.#fs) throw new P9Error(Errno.EXDEV, "rename across shares");
    const node = this.#child(name);
    const targets = toDir.#dir();
    const existing = targets.get(toName);
    if (existing === node) return;
    if (node.isDir) {
      for (let at: MemoryNode = toDir; ; at = at.parent) {
        if (at === node) throw new P9Error(Errno.EINVAL, "cannot move a directory into itself");
        if (at.parent === at) break;
      }
    }
    if (existing) {
      if (node.isDir && !existing.isDir) throw new P9Error(Errno.ENOTDIR, `"${toName}" is not a directory`);
      if (!node.isDir && existing.isDir) throw new P9Error(Errno.EISDIR, `"${toName}" is a directory`);
      if (existing.isDir && existing.children!.size > 0) throw new P9Error(Errno.ENOTEMPTY, `"${toName}" is not empty`);
      targets.delete(toName);
      toDir.#drop(existing);
    }
    this.children!.delete(name);
    targets.set(toName, node);
    if (node.isDir) {
      node.parent = toDir;
      this.nlink--;
      toDir.nlink++;
    }
    node.ctime = now();
    this.#touchDir();
    toDir.#touchDir();
  }

  async unlink(name: string, dir: boolean): Promise<void> {
    const node = this.#child(name);
    if (dir && !node.isDir) throw new P9Error(Errno.ENOTDIR, `"${name}" is not a directory`);
    if (!dir && node.isDir) throw new P9Error(Errno.EISDIR, `"${name}" is a directory`);
    if (node.isDir && node.children!.size > 0) throw new P9Error(Errno.ENOTEMPTY, `"${name}" is not empty`);
    this.children!.delete(name);
    this.#drop(node);
    this.#touchDir();
  }

  /** One name of `node` in this directory is gone. */
  #drop(node: MemoryNode): void {
    node.ctime = now();
    if (node.isDir) {
      node.nlink = 0;
      this.nlink--;
      return;
    }
    node.nlink--;
    if (node.nlink > 0) return;
    if (node.isFile) this.#fs.charge(-node.size);
    if (node.isSymlink) this.#fs.charge(-new TextEncoder().encode(node.target).length);
  }

  async readdir(): Promise<P9DirEntry[]> {
    this.atime = now();
    return [...this.#dir()].map(([name, node]) => ({ name, qid: node.qid, type: direntType(node.mode) }));
  }
}

class MemoryFile implements P9File {
  readonly #node: MemoryNode;
  readonly #append: boolean;

  constructor(node: MemoryNode, append: boolean) {
    this.#node = node;
    this.#append = append;
  }

  async read(offset: number, count: number): Promise<Uint8Array> {
    const node = this.#node;
    if (node.isDir) throw new P9Error(Errno.EISDIR, "read of a directory");
    if (offset >= node.size) return new Uint8Array(0);
    node.atime = now();
    return node.data.slice(offset, Math.min(node.size, offset + count));
  }

  async write(offset: number, data: Uint8Array): Promise<number> {
    const node = this.#node;
    if (!node.isFile) throw new P9Error(node.isDir ? Errno.EISDIR : Errno.EINVAL, "write to a non-regular file");
    // O_APPEND: the end of the file now, not where the guest last saw it.
    const at = this.#append ? node.size : offset;
    const end = at + data.length;
    if (end > node.size) node.resize(end);
    node.data.set(data, at);
    node.mtime = node.ctime = now();
    return data.length;
  }

  getattr(): Promise<P9Attr> {
    return this.#node.getattr();
  }

  async fsync(): Promise<void> {}

  async close(): Promise<void> {}
}
