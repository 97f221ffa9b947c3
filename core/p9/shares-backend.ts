// Several shares behind one 9P device: v86 gives a guest a single virtio-9p device (tag
// host9p), so its top level is a synthetic, read-only folder with one entry per share. Each
// share keeps its own policy, enforced here and nowhere else, before its backend is touched: a
// read-only share refuses every change with EROFS, a quota caps what the guest can store
// (ENOSPC) and is what statfs reports. Nothing crosses between shares (EXDEV).

import { Errno, P9Error } from "./errno.js";
import { DirentType, FileMode, OpenFlags, QidType } from "./messages.js";
import type { P9Attr, P9AttrChange, P9Backend, P9DirEntry, P9File, P9Node, P9Owner, P9StatFs } from "./backend.js";
import type { Qid } from "./wire.js";

export interface Share {
  tag: string;
  backend: P9Backend;
  readOnly: boolean;
  quotaBytes?: number;
}

const BLOCK = 4096;
const ROOT_QID: Qid = { type: QidType.DIR, version: 0, path: 0xffff_ffff_0000_0000n };

/** Share nodes' qid paths get the share's number in the top bits, so shares never collide. */
function shareQid(qid: Qid, index: number): Qid {
  return { ...qid, path: (BigInt(index + 1) << 48n) ^ qid.path };
}

class Policy {
  readonly share: Share;
  readonly index: number;

  constructor(share: Share, index: number) {
    this.share = share;
    this.index = index;
  }

  writable(what: string): void {
    if (this.share.readOnly) throw new P9Error(Errno.EROFS, `${what}: share "${this.share.tag}" is read-only`);
  }

  /** Bytes the guest may still add; Infinity without a quota. */
  async room(): Promise<number> {
    if (this.share.quotaBytes === undefined) return Infinity;
    return Math.max(0, this.share.quotaBytes - (await this.share.backend.usedBytes()));
  }

  /** A setattr may go ahead: the share is writable and a size it grows to fits the quota. */
  async mayChange(change: P9AttrChange, current: () => Promise<P9Attr>): Promise<void> {
    this.writable("setattr");
    if (change.size === undefined) return;
    const size = (await current()).size;
    if (change.size > size && change.size - size > (await this.room())) throw new P9Error(Errno.ENOSPC, `truncate: share "${this.share.tag}" is full`);
  }

  async needRoom(what: string): Promise<void> {
    if ((await this.room()) <= 0) throw new P9Error(Errno.ENOSPC, `${what}: share "${this.share.tag}" is full (quota ${this.share.quotaBytes} bytes)`);
  }

  /** The share's file system as the guest's df sees it: no bigger than the quota, if any. */
  async statfs(inner: P9Node): Promise<P9StatFs> {
    const fs = await this.share.backend.statfs(inner);
    const quota = this.share.quotaBytes;
    if (quota === undefined) return fs;
    const free = Math.floor((await this.room()) / fs.bsize);
    return {
      ...fs,
      blocks: Math.min(fs.blocks, Math.ceil(quota / fs.bsize)),
      bfree: Math.min(fs.bfree, free),
      bavail: Math.min(fs.bavail, free),
    };
  }
}

/** Opening with any of these changes the file (O_WRONLY, O_RDWR, O_TRUNC). */
function writes(flags: number): boolean {
  return (flags & OpenFlags.ACCMODE) !== OpenFlags.RDONLY || (flags & OpenFlags.TRUNC) !== 0;
}

class ShareFile implements P9File {
  readonly #file: P9File;
  readonly #policy: Policy;
  readonly #append: boolean;

  readonly #node: P9Node;

  constructor(file: P9File, node: P9Node, policy: Policy, flags: number) {
    this.#file = file;
    this.#node = node;
    this.#policy = policy;
    this.#append = (flags & OpenFlags.APPEND) !== 0;
  }

  /** ftruncate, fchmod, futimens: on the open file where the share's backend can, else its node. */
  async setattr(change: P9AttrChange): Promise<void> {
    await this.#policy.mayChange(change, () => this.#file.getattr());
    return this.#file.setattr ? this.#file.setattr(change) : this.#node.setattr(change);
  }

  read(offset: number, count: number): Promise<Uint8Array> {
    return this.#file.read(offset, count);
  }

  async write(offset: number, data: Uint8Array): Promise<number> {
    this.#policy.writable("write");
    const room = await this.#policy.room();
    if (room === Infinity || data.length === 0) return this.#file.write(offset, data);
    // Only bytes past the end of the file take room; what fits is written, the rest refused.
    // An APPEND file writes at its end, whatever offset the guest last knew.
    const size = (await this.#file.getattr()).size;
    const at = this.#append ? size : offset;
    const growth = Math.max(0, at + data.length - size);
    if (growth <= room) return this.#file.write(offset, data);
    const fits = Math.max(0, size + room - at);
    if (fits <= 0) throw new P9Error(Errno.ENOSPC, `write: share "${this.#policy.share.tag}" is full`);
    return this.#file.write(offset, data.subarray(0, fits));
  }

  async getattr(): Promise<P9Attr> {
    const attr = await this.#file.getattr();
    return { ...attr, qid: shareQid(attr.qid, this.#policy.index) };
  }

  fsync(datasync: boolean): Promise<void> {
    return this.#file.fsync(datasync);
  }

  close(): Promise<void> {
    return this.#file.close();
  }
}

class ShareNode implements P9Node {
  readonly inner: P9Node;
  readonly policy: Policy;
  readonly qid: Qid;

  constructor(inner: P9Node, policy: Policy) {
    this.inner = inner;
    this.policy = policy;
    this.qid = shareQid(inner.qid, policy.index);
  }

  #wrap(node: P9Node): ShareNode {
    return new ShareNode(node, this.policy);
  }

  async getattr(): Promise<P9Attr> {
    const attr = await this.inner.getattr();
    return { ...attr, qid: this.qid };
  }

  async setattr(change: P9AttrChange): Promise<void> {
    await this.policy.mayChange(change, () => this.inner.getattr());
    return this.inner.setattr(change);
  }

  async walk(name: string): Promise<P9Node> {
    return this.#wrap(await this.inner.walk(name));
  }

  async open(flags: number): Promise<P9File> {
    if (writes(flags)) this.policy.writable("open for writing");
    return new ShareFile(await this.inner.open(flags), this.inner, this.policy, flags);
  }

  async create(name: string, flags: number, mode: number, owner: P9Owner): Promise<{ node: P9Node; file: P9File }> {
    this.policy.writable("create");
    await this.policy.needRoom("create");
    const { node, file } = await this.inner.create(name, flags, mode, owner);
    return { node: this.#wrap(node), file: new ShareFile(file, node, this.policy, flags) };
  }

  async mkdir(name: string, mode: number, owner: P9Owner): Promise<P9Node> {
    this.policy.writable("mkdir");
    await this.policy.needRoom("mkdir");
    return this.#wrap(await this.inner.mkdir(name, mode, owner));
  }

  async symlink(name: string, target: string, owner: P9Owner): Promise<P9Node> {
    this.policy.writable("symlink");
    await this.policy.needRoom("symlink");
    return this.#wrap(await this.inner.symlink(name, target, owner));
  }

  async mknod(name: string, mode: number, rdev: number, owner: P9Owner): Promise<P9Node> {
    this.policy.writable("mknod");
    await this.policy.needRoom("mknod");
    return this.#wrap(await this.inner.mknod(name, mode, rdev, owner));
  }

  readlink(): Promise<string> {
    return this.inner.readlink();
  }

  async link(name: string, target: P9Node): Promise<void> {
    this.policy.writable("link");
    if (!(target instanceof ShareNode) || target.policy !== this.policy) throw new P9Error(Errno.EXDEV, "link: across shares");
    await this.policy.needRoom("link");
    return this.inner.link(name, target.inner);
  }

  async rename(name: string, toDir: P9Node, toName: string): Promise<void> {
    this.policy.writable("rename");
    if (!(toDir instanceof ShareNode) || toDir.policy !== this.policy) throw new P9Error(Errno.EXDEV, "rename: across shares");
    return this.inner.rename(name, toDir.inner, toName);
  }

  unlink(name: string, dir: boolean): Promise<void> {
    this.policy.writable("unlink");
    return this.inner.unlink(name, dir);
  }

  async readdir(): Promise<P9DirEntry[]> {
    return (await this.inner.readdir()).map((e) => ({ ...e, qid: shareQid(e.qid, this.policy.index) }));
  }
}

function refuse(what: string): never {
  throw new P9Error(Errno.EROFS, `${what}: the top folder of the shares cannot be changed`);
}

/** The top folder: one entry per share, nothing else, never changed by the guest. */
class TopNode implements P9Node {
  readonly qid = ROOT_QID;
  readonly #policies: Policy[];
  readonly #created = Date.now();

  constructor(policies: Policy[]) {
    this.#policies = policies;
  }

  async getattr(): Promise<P9Attr> {
    const t = { sec: Math.floor(this.#created / 1000), nsec: 0 };
    return { qid: ROOT_QID, mode: FileMode.DIR | 0o555, uid: 0, gid: 0, nlink: 2 + this.#policies.length, rdev: 0, size: 0, blksize: BLOCK, blocks: 0, atime: t, mtime: t, ctime: t };
  }

  async walk(name: string): Promise<P9Node> {
    const policy = this.#policies.find((p) => p.share.tag === name);
    if (!policy) throw new P9Error(Errno.ENOENT, `no share named "${name}"`);
    return new ShareNode(await policy.share.backend.root(), policy);
  }

  async readdir(): Promise<P9DirEntry[]> {
    return Promise.all(
      this.#policies.map(async (p) => ({ name: p.share.tag, qid: shareQid((await p.share.backend.root()).qid, p.index), type: DirentType.DIR })),
    );
  }

  async open(flags: number): Promise<P9File> {
    if (writes(flags)) refuse("open for writing");
    const attr = await this.getattr();
    return {
      read: async () => {
        throw new P9Error(Errno.EISDIR, "read: a folder");
      },
      write: async () => refuse("write"),
      getattr: async () => attr,
      fsync: async () => {},
      close: async () => {},
    };
  }

  setattr = async (): Promise<void> => refuse("setattr");
  create = async (): Promise<{ node: P9Node; file: P9File }> => refuse("create");
  mkdir = async (): Promise<P9Node> => refuse("mkdir");
  symlink = async (): Promise<P9Node> => refuse("symlink");
  mknod = async (): Promise<P9Node> => refuse("mknod");
  readlink = async (): Promise<string> => {
    throw new P9Error(Errno.EINVAL, "readlink: not a link");
  };
  link = async (): Promise<void> => refuse("link");
  rename = async (): Promise<void> => refuse("rename");
  unlink = async (): Promise<void> => refuse("unlink");
}

export class SharesBackend implements P9Backend {
  readonly #policies: Policy[];
  readonly #top: TopNode;

  constructor(shares: Share[]) {
    this.#policies = shares.map((share, i) => new Policy(share, i));
    this.#top = new TopNode(this.#policies);
  }

  async root(): Promise<P9Node> {
    return this.#top;
  }

  /** A share's node reports its share (quota applied); the top folder reports the first share. */
  async statfs(node: P9Node): Promise<P9StatFs> {
    if (node instanceof ShareNode) return node.policy.statfs(node.inner);
    const first = this.#policies[0];
    if (!first) return { bsize: BLOCK, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, fsid: 0n, namelen: 255 };
    return first.statfs(await first.share.backend.root());
  }

  /** The top folder is always this run's; a share's path is its tag's store, if it has one now. */
  scope(path: readonly string[]): string | undefined {
    const [tag, ...rest] = path;
    if (tag === undefined) return "shares";
    const policy = this.#policies.find((p) => p.share.tag === tag);
    const inner = policy?.share.backend.scope?.(rest);
    return inner === undefined ? undefined : `share ${JSON.stringify(tag)} ${inner}`;
  }

  /** A share's path as sessions saved by earlier versions named its store. */
  formerScope(path: readonly string[]): string | undefined {
    const [tag, ...rest] = path;
    if (tag === undefined) return undefined;
    const inner = this.#policies.find((p) => p.share.tag === tag)?.share.backend.formerScope?.(rest);
    return inner === undefined ? undefined : `share ${JSON.stringify(tag)} ${inner}`;
  }

  async usedBytes(): Promise<number> {
    let used = 0;
    for (const p of this.#policies) used += await p.share.backend.usedBytes();
    return used;
  }
  async close(): Promise<void> {
    await Promise.all(this.#policies.map((p) => p.share.backend.close?.()));
  }
}
