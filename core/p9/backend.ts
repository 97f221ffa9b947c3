// The 9P backend interface: a file tree seen as nodes, with no bytes, tags or fids. The server
// (server.ts) does the protocol and checks names; a backend (memory-backend.ts,
// main/p9/host-folder-backend.ts) stores; the shares backend (shares-backend.ts) wraps stores
// and is the one place read-only shares and quotas are enforced. Backends throw P9Error with a
// Linux errno, never follow a symlink, and all run one suite (test/core/p9/conformance.ts).

import type { Qid } from "./wire.js";

export interface P9Time {
  readonly sec: number;
  readonly nsec: number;
}

/** What Tgetattr reports, as Linux's struct stat. `mode` includes the file type bits. */
export interface P9Attr {
  readonly qid: Qid;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly rdev: number;
  readonly size: number;
  readonly blksize: number;
  readonly blocks: number;
  readonly atime: P9Time;
  readonly mtime: P9Time;
  readonly ctime: P9Time;
}

/** What Tsetattr changes; an absent field is left alone. "now" is the backend's clock. */
export interface P9AttrChange {
  /** Permission bits only (07777); the file type never changes. */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly size?: number;
  readonly atime?: P9Time | "now";
  readonly mtime?: P9Time | "now";
}

/** Who owns a new file: the attaching user and the gid the guest asked for. */
export interface P9Owner {
  readonly uid: number;
  readonly gid: number;
}

/** One entry of a directory listing ("." and ".." are the server's, never the backend's). */
export interface P9DirEntry {
  readonly name: string;
  readonly qid: Qid;
  /** DirentType (DT_REG, DT_DIR, ...). */
  readonly type: number;
}

export interface P9StatFs {
  readonly bsize: number;
  readonly blocks: number;
  readonly bfree: number;
  readonly bavail: number;
  readonly files: number;
  readonly ffree: number;
  readonly fsid: bigint;
  readonly namelen: number;
}

/** An open file. Offsets are byte positions the server has checked to be safe integers. */
export interface P9File {
  /** At most `count` bytes from `offset`; fewer at the end of the file, none past it. */
  read(offset: number, count: number): Promise<Uint8Array>;
  /** Writes all of `data` at `offset`, or at the end of the file if it was opened with APPEND. */
  write(offset: number, data: Uint8Array): Promise<number>;
  /** Attributes of the open file, valid even after its last name was unlinked. */
  getattr(): Promise<P9Attr>;
  /** Changes the open file itself, named or not (ftruncate, fchmod, futimens); a backend
   * without it has the server change the node instead. */
  setattr?(change: P9AttrChange): Promise<void>;
  fsync(datasync: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * A file, directory, symlink or special file. Names handed in are single components the server
 * has checked (no "", ".", "..", "/" or NUL). Operations that name a child are called on the
 * directory; a node that is not one throws ENOTDIR.
 */
export interface P9Node {
  /** The type never changes; the path identifies the file as long as it exists. */
  readonly qid: Qid;
  getattr(): Promise<P9Attr>;
  setattr(change: P9AttrChange): Promise<void>;
  /** The child `name`, never following a symlink: a symlink child is returned as itself. */
  walk(name: string): Promise<P9Node>;
  /**
   * `flags` are OpenFlags (access mode, TRUNC, APPEND); a symlink throws ELOOP. With APPEND,
   * every write lands at the end of the file, whatever the offset (as QEMU's 9P server does
   * with O_APPEND on the host): two guest processes appending to one file lose nothing.
   */
  open(flags: number): Promise<P9File>;
  /** A new regular file, opened with `flags` as open() does (APPEND included); EEXIST if the name is taken. */
  create(name: string, flags: number, mode: number, owner: P9Owner): Promise<{ node: P9Node; file: P9File }>;
  mkdir(name: string, mode: number, owner: P9Owner): Promise<P9Node>;
  symlink(name: string, target: string, owner: P9Owner): Promise<P9Node>;
  /** `mode` includes the type (FIFO, CHR, BLK, SOCK, REG); `rdev` is Linux's new_encode_dev. */
  mknod(name: string, mode: number, rdev: number, owner: P9Owner): Promise<P9Node>;
  readlink(): Promise<string>;
  /** A new name in this directory for `target` (a non-directory of the same backend). */
  link(name: string, target: P9Node): Promise<void>;
  /** Moves this directory's `name` to `toDir`/`toName`, replacing what rename(2) would replace. */
  rename(name: string, toDir: P9Node, toName: string): Promise<void>;
  /** Removes `name`: a directory (must be empty) if `dir`, anything else otherwise. */
  unlink(name: string, dir: boolean): Promise<void>;
  /** The whole listing, without "." and ".."; the server pages it. */
  readdir(): Promise<P9DirEntry[]>;
}

export interface P9Backend {
  /** The share's root directory, asked for at each Tattach. */
  root(): Promise<P9Node>;
  /** The file system holding `node` (a node of this backend), as Tstatfs on its fid reports it. */
  statfs(node: P9Node): Promise<P9StatFs>;
  /** Bytes the share's files take (their sizes, symlinks' targets), for the shares' quota. */
  usedBytes(): Promise<number>;
  /**
   * Names the store that `path` (names from the root, not walked here) leads into, the same
   * across runs only for the same store (a host folder: its id, which a copy or move keeps), so a
   * guest's saved session is rebuilt only against it. Undefined if the backend cannot tell:
   * such fids are not rebuilt.
   */
  scope?(path: readonly string[]): string | undefined;
  /** Another name the same store had in sessions saved by earlier versions, if any: such a
   * session is rebuilt against it too. */
  formerScope?(path: readonly string[]): string | undefined;
  /** Gives back what the backend holds on the host (descriptors, a store to sync) when the
   * session ends; open files are closed by the server first. */
  close?(): Promise<void>;
}
