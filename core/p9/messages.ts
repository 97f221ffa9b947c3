// 9P2000.L messages: pure encode/decode of whole frames, size[4] type[1] tag[2] body, as
// discriminated unions named as the spec names them (Tversion ... Rlerror). Layouts follow the
// 9P2000.L protocol notes of diod (protocol.md) and QEMU, as the Linux v9fs client speaks them
// (Documentation/filesystems/9p.rst). No state, no I/O: server.ts gives the messages meaning.

import { ByteReader, ByteWriter, P9WireError, QID_SIZE, stringSize, type Qid } from "./wire.js";

/** The tag of Tversion, and of replies to frames whose tag cannot be read (intro(5)). */
export const NOTAG = 0xffff;
/** "No fid": Tattach's afid when there is no authentication (intro(5), attach(5)). */
export const NOFID = 0xffffffff;
/** Tattach's n_uname when the numeric uid is not given (9P2000.u). */
export const NONUNAME = 0xffffffff;
/** size[4] type[1] tag[2]. */
export const HEADER_SIZE = 7;
/** Header of Rread/Rreaddir: size[4] type[1] tag[2] count[4]. */
export const READ_HEADER_SIZE = 11;
/** What the Linux client keeps free of msize for a Twrite/Tread header (P9_IOHDRSZ). */
export const IO_HEADER_SIZE = 24;
/** Twalk carries at most 16 names (walk(5): MAXWELEM). */
export const MAX_WALK_NAMES = 16;
export const VERSION_9P2000L = "9P2000.L";

/** Message type numbers (diod protocol.md; include/net/9p/9p.h in Linux). */
export const MessageType = {
  Tlerror: 6,
  Rlerror: 7,
  Tstatfs: 8,
  Rstatfs: 9,
  Tlopen: 12,
  Rlopen: 13,
  Tlcreate: 14,
  Rlcreate: 15,
  Tsymlink: 16,
  Rsymlink: 17,
  Tmknod: 18,
  Rmknod: 19,
  Trename: 20,
  Rrename: 21,
  Treadlink: 22,
  Rreadlink: 23,
  Tgetattr: 24,
  Rgetattr: 25,
  Tsetattr: 26,
  Rsetattr: 27,
  Txattrwalk: 30,
  Rxattrwalk: 31,
  Txattrcreate: 32,
  Rxattrcreate: 33,
  Treaddir: 40,
  Rreaddir: 41,
  Tfsync: 50,
  Rfsync: 51,
  Tlock: 52,
  Rlock: 53,
  Tgetlock: 54,
  Rgetlock: 55,
  Tlink: 70,
  Rlink: 71,
  Tmkdir: 72,
  Rmkdir: 73,
  Trenameat: 74,
  Rrenameat: 75,
  Tunlinkat: 76,
  Runlinkat: 77,
  Tversion: 100,
  Rversion: 101,
  Tauth: 102,
  Rauth: 103,
  Tattach: 104,
  Rattach: 105,
  Terror: 106,
  Rerror: 107,
  Tflush: 108,
  Rflush: 109,
  Twalk: 110,
  Rwalk: 111,
  Topen: 112,
  Ropen: 113,
  Tcreate: 114,
  Rcreate: 115,
  Tread: 116,
  Rread: 117,
  Twrite: 118,
  Rwrite: 119,
  Tclunk: 120,
  Rclunk: 121,
  Tremove: 122,
  Rremove: 123,
  Tstat: 124,
  Rstat: 125,
  Twstat: 126,
  Rwstat: 127,
} as const;

/** qid.type bits (intro(5)); Linux reports symlinks as SYMLINK. */
export const QidType = {
  DIR: 0x80,
  APPEND: 0x40,
  EXCL: 0x20,
  MOUNT: 0x10,
  AUTH: 0x08,
  TMP: 0x04,
  SYMLINK: 0x02,
  LINK: 0x01,
  FILE: 0x00,
} as const;

/** Tgetattr request_mask / Rgetattr valid bits (diod protocol.md, "getattr"). */
export const GetattrMask = {
  MODE: 0x1n,
  NLINK: 0x2n,
  UID: 0x4n,
  GID: 0x8n,
  RDEV: 0x10n,
  ATIME: 0x20n,
  MTIME: 0x40n,
  CTIME: 0x80n,
  INO: 0x100n,
  SIZE: 0x200n,
  BLOCKS: 0x400n,
  BTIME: 0x800n,
  GEN: 0x1000n,
  DATA_VERSION: 0x2000n,
  BASIC: 0x7ffn,
  ALL: 0x3fffn,
} as const;

/** Tsetattr valid bits (diod protocol.md, "setattr"); ATIME without ATIME_SET means "now". */
export const SetattrValid = {
  MODE: 0x1,
  UID: 0x2,
  GID: 0x4,
  SIZE: 0x8,
  ATIME: 0x10,
  MTIME: 0x20,
  CTIME: 0x40,
  ATIME_SET: 0x80,
  MTIME_SET: 0x100,
} as const;

/** Tlopen/Tlcreate flags: Linux's x86 open(2) flags, as v9fs_open_to_dotl_flags sends them. */
export const OpenFlags = {
  RDONLY: 0o0,
  WRONLY: 0o1,
  RDWR: 0o2,
  ACCMODE: 0o3,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DSYNC: 0o10000,
  FASYNC: 0o20000,
  DIRECT: 0o40000,
  LARGEFILE: 0o100000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  NOATIME: 0o1000000,
  CLOEXEC: 0o2000000,
  SYNC: 0o4000000,
} as const;

/** Tlock/Tgetlock type (diod protocol.md, "lock"). */
export const LockType = { RDLCK: 0, WRLCK: 1, UNLCK: 2 } as const;
/** Rlock status. */
export const LockStatus = { SUCCESS: 0, BLOCKED: 1, ERROR: 2, GRACE: 3 } as const;
/** Tlock flags. */
export const LockFlags = { BLOCK: 1, RECLAIM: 2 } as const;
/** Tunlinkat flags: AT_REMOVEDIR, as in unlinkat(2). */
export const AT_REMOVEDIR = 0x200;

/** File type bits of st_mode (Linux stat.h), used by Rgetattr, Tmknod and Tlcreate. */
export const FileMode = {
  TYPE: 0o170000,
  SOCK: 0o140000,
  LNK: 0o120000,
  REG: 0o100000,
  BLK: 0o060000,
  DIR: 0o040000,
  CHR: 0o020000,
  FIFO: 0o010000,
  PERMS: 0o7777,
} as const;

/** Directory entry types of Rreaddir (Linux dirent.h DT_*). */
export const DirentType = { UNKNOWN: 0, FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;

export interface Dirent {
  readonly qid: Qid;
  /** The cookie to pass as Treaddir's offset to continue after this entry. */
  readonly offset: bigint;
  readonly type: number;
  readonly name: string;
}

/** Bytes one entry takes in Rreaddir's data: qid[13] offset[8] type[1] name[s]. */
export function direntSize(name: string): number {
  return QID_SIZE + 8 + 1 + stringSize(name);
}

type Msg<T extends string, Body = object> = { readonly type: T; readonly tag: number } & Readonly<Body>;

export type Tversion = Msg<"Tversion", { msize: number; version: string }>;
export type Rversion = Msg<"Rversion", { msize: number; version: string }>;
export type Tauth = Msg<"Tauth", { afid: number; uname: string; aname: string; nUname: number }>;
export type Rauth = Msg<"Rauth", { aqid: Qid }>;
export type Tattach = Msg<"Tattach", { fid: number; afid: number; uname: string; aname: string; nUname: number }>;
export type Rattach = Msg<"Rattach", { qid: Qid }>;
export type Rlerror = Msg<"Rlerror", { ecode: number }>;
export type Tflush = Msg<"Tflush", { oldtag: number }>;
export type Rflush = Msg<"Rflush">;
export type Twalk = Msg<"Twalk", { fid: number; newfid: number; wnames: readonly string[] }>;
export type Rwalk = Msg<"Rwalk", { wqids: readonly Qid[] }>;
export type Tread = Msg<"Tread", { fid: number; offset: bigint; count: number }>;
export type Rread = Msg<"Rread", { data: Uint8Array }>;
export type Twrite = Msg<"Twrite", { fid: number; offset: bigint; data: Uint8Array }>;
export type Rwrite = Msg<"Rwrite", { count: number }>;
export type Tclunk = Msg<"Tclunk", { fid: number }>;
export type Rclunk = Msg<"Rclunk">;
export type Tremove = Msg<"Tremove", { fid: number }>;
export type Rremove = Msg<"Rremove">;
export type Tstatfs = Msg<"Tstatfs", { fid: number }>;
export type Rstatfs = Msg<"Rstatfs", {
  fsType: number; bsize: number; blocks: bigint; bfree: bigint; bavail: bigint;
  files: bigint; ffree: bigint; fsid: bigint; namelen: number;
}>;
export type Tlopen = Msg<"Tlopen", { fid: number; flags: number }>;
export type Rlopen = Msg<"Rlopen", { qid: Qid; iounit: number }>;
export type Tlcreate = Msg<"Tlcreate", { fid: number; name: string; flags: number; mode: number; gid: number }>;
export type Rlcreate = Msg<"Rlcreate", { qid: Qid; iounit: number }>;
export type Tsymlink = Msg<"Tsymlink", { fid: number; name: string; symtgt: string; gid: number }>;
export type Rsymlink = Msg<"Rsymlink", { qid: Qid }>;
export type Tmknod = Msg<"Tmknod", { dfid: number; name: string; mode: number; major: number; minor: number; gid: number }>;
export type Rmknod = Msg<"Rmknod", { qid: Qid }>;
export type Trename = Msg<"Trename", { fid: number; dfid: number; name: string }>;
export type Rrename = Msg<"Rrename">;
export type Treadlink = Msg<"Treadlink", { fid: number }>;
export type Rreadlink = Msg<"Rreadlink", { target: string }>;
export type Tgetattr = Msg<"Tgetattr", { fid: number; requestMask: bigint }>;
export type Rgetattr = Msg<"Rgetattr", {
  valid: bigint; qid: Qid; mode: number; uid: number; gid: number; nlink: bigint; rdev: bigint;
  size: bigint; blksize: bigint; blocks: bigint; atimeSec: bigint; atimeNsec: bigint;
  mtimeSec: bigint; mtimeNsec: bigint; ctimeSec: bigint; ctimeNsec: bigint;
  btimeSec: bigint; btimeNsec: bigint; gen: bigint; dataVersion: bigint;
}>;
export type Tsetattr = Msg<"Tsetattr", {
  fid: number; valid: number; mode: number; uid: number; gid: number; size: bigint;
  atimeSec: bigint; atimeNsec: bigint; mtimeSec: bigint; mtimeNsec: bigint;
}>;
export type Rsetattr = Msg<"Rsetattr">;
export type Txattrwalk = Msg<"Txattrwalk", { fid: number; newfid: number; name: string }>;
export type Rxattrwalk = Msg<"Rxattrwalk", { size: bigint }>;
export type Txattrcreate = Msg<"Txattrcreate", { fid: number; name: string; attrSize: bigint; flags: number }>;
export type Rxattrcreate = Msg<"Rxattrcreate">;
export type Treaddir = Msg<"Treaddir", { fid: number; offset: bigint; count: number }>;
export type Rreaddir = Msg<"Rreaddir", { entries: readonly Dirent[] }>;
export type Tfsync = Msg<"Tfsync", { fid: number; datasync: number }>;
export type Rfsync = Msg<"Rfsync">;
export type Tlock = Msg<"Tlock", {
  fid: number; lockType: number; flags: number; start: bigint; length: bigint; procId: number; clientId: string;
}>;
export type Rlock = Msg<"Rlock", { status: number }>;
export type Tgetlock = Msg<"Tgetlock", { fid: number; lockType: number; start: bigint; length: bigint; procId: number; clientId: string }>;
export type Rgetlock = Msg<"Rgetlock", { lockType: number; start: bigint; length: bigint; procId: number; clientId: string }>;
export type Tlink = Msg<"Tlink", { dfid: number; fid: number; name: string }>;
export type Rlink = Msg<"Rlink">;
export type Tmkdir = Msg<"Tmkdir", { dfid: number; name: string; mode: number; gid: number }>;
export type Rmkdir = Msg<"Rmkdir", { qid: Qid }>;
export type Trenameat = Msg<"Trenameat", { olddirfid: number; oldname: string; newdirfid: number; newname: string }>;
export type Rrenameat = Msg<"Rrenameat">;
export type Tunlinkat = Msg<"Tunlinkat", { dirfid: number; name: string; flags: number }>;
export type Runlinkat = Msg<"Runlinkat">;

export type TMessage =
  | Tversion | Tauth | Tattach | Tflush | Twalk | Tread | Twrite | Tclunk | Tremove | Tstatfs
  | Tlopen | Tlcreate | Tsymlink | Tmknod | Trename | Treadlink | Tgetattr | Tsetattr
  | Txattrwalk | Txattrcreate | Treaddir | Tfsync | Tlock | Tgetlock | Tlink | Tmkdir
  | Trenameat | Tunlinkat;

export type RMessage =
  | Rversion | Rauth | Rattach | Rlerror | Rflush | Rwalk | Rread | Rwrite | Rclunk | Rremove
  | Rstatfs | Rlopen | Rlcreate | Rsymlink | Rmknod | Rrename | Rreadlink | Rgetattr | Rsetattr
  | Rxattrwalk | Rxattrcreate | Rreaddir | Rfsync | Rlock | Rgetlock | Rlink | Rmkdir
  | Rrenameat | Runlinkat;

export type P9Message = TMessage | RMessage;
export type P9MessageName = P9Message["type"];

type Body<M> = Omit<M, "type" | "tag">;
type MessageOf<N extends P9MessageName> = Extract<P9Message, { type: N }>;

interface Codec<M> {
  encode(w: ByteWriter, m: M): void;
  decode(r: ByteReader): Body<M>;
  /** A first guess of the body size, so large replies are written without regrowing. */
  size?(m: M): number;
}

const empty: Codec<{ type: string; tag: number }> = {
  encode() {},
  decode: () => ({}),
};

function qidBody(): Codec<{ qid: Qid }> {
  return { encode: (w, m) => void w.qid(m.qid), decode: (r) => ({ qid: r.qid() }) };
}

function fidBody(): Codec<{ fid: number }> {
  return { encode: (w, m) => void w.u32(m.fid), decode: (r) => ({ fid: r.u32("fid") }) };
}

function openReply(): Codec<{ qid: Qid; iounit: number }> {
  return {
    encode: (w, m) => void w.qid(m.qid).u32(m.iounit),
    decode: (r) => ({ qid: r.qid(), iounit: r.u32("iounit") }),
  };
}

const GETATTR_U64_FIELDS = [
  "nlink", "rdev", "size", "blksize", "blocks", "atimeSec", "atimeNsec", "mtimeSec", "mtimeNsec",
  "ctimeSec", "ctimeNsec", "btimeSec", "btimeNsec", "gen", "dataVersion",
] as const;

const CODECS: { [N in P9MessageName]: Codec<MessageOf<N>> } = {
  // version(5): size[4] Tversion tag[2] msize[4] version[s]
  Tversion: {
    encode: (w, m) => void w.u32(m.msize).string(m.version),
    decode: (r) => ({ msize: r.u32("msize"), version: r.string("version") }),
  },
  Rversion: {
    encode: (w, m) => void w.u32(m.msize).string(m.version),
    decode: (r) => ({ msize: r.u32("msize"), version: r.string("version") }),
  },
  // diod protocol.md "auth"/"attach": the 9P2000.u forms with n_uname[4]
  Tauth: {
    encode: (w, m) => void w.u32(m.afid).string(m.uname).string(m.aname).u32(m.nUname),
    decode: (r) => ({ afid: r.u32("afid"), uname: r.string("uname"), aname: r.string("aname"), nUname: r.u32("n_uname") }),
  },
  Rauth: { encode: (w, m) => void w.qid(m.aqid), decode: (r) => ({ aqid: r.qid() }) },
  Tattach: {
    encode: (w, m) => void w.u32(m.fid).u32(m.afid).string(m.uname).string(m.aname).u32(m.nUname),
    decode: (r) => ({
      fid: r.u32("fid"), afid: r.u32("afid"), uname: r.string("uname"), aname: r.string("aname"), nUname: r.u32("n_uname"),
    }),
  },
  Rattach: qidBody(),
  // diod protocol.md "lerror": size[4] Rlerror tag[2] ecode[4]
  Rlerror: { encode: (w, m) => void w.u32(m.ecode), decode: (r) => ({ ecode: r.u32("ecode") }) },
  Tflush: { encode: (w, m) => void w.u16(m.oldtag), decode: (r) => ({ oldtag: r.u16("oldtag") }) },
  Rflush: empty,
  // walk(5): nwname[2] nwname*(wname[s]); nwqid[2] nwqid*(qid[13])
  Twalk: {
    encode: (w, m) => {
      w.u32(m.fid).u32(m.newfid).u16(m.wnames.length, "nwname");
      for (const name of m.wnames) w.string(name, "wname");
    },
    decode: (r) => {
      const fid = r.u32("fid");
      const newfid = r.u32("newfid");
      const n = r.u16("nwname");
      if (n > MAX_WALK_NAMES) throw new P9WireError(`Twalk: nwname ${n} is over ${MAX_WALK_NAMES}`);
      const wnames: string[] = [];
      for (let i = 0; i < n; i++) wnames.push(r.string("wname"));
      return { fid, newfid, wnames };
    },
  },
  Rwalk: {
    encode: (w, m) => {
      w.u16(m.wqids.length, "nwqid");
      for (const qid of m.wqids) w.qid(qid);
    },
    decode: (r) => {
      const n = r.u16("nwqid");
      if (n > MAX_WALK_NAMES) throw new P9WireError(`Rwalk: nwqid ${n} is over ${MAX_WALK_NAMES}`);
      const wqids: Qid[] = [];
      for (let i = 0; i < n; i++) wqids.push(r.qid("wqid"));
      return { wqids };
    },
  },
  // read(5): Tread fid[4] offset[8] count[4]; Rread count[4] data[count]
  Tread: {
    encode: (w, m) => void w.u32(m.fid).u64(m.offset).u32(m.count),
    decode: (r) => ({ fid: r.u32("fid"), offset: r.u64("offset"), count: r.u32("count") }),
  },
  Rread: {
    encode: (w, m) => void w.u32(m.data.length).bytes(m.data),
    decode: (r) => ({ data: r.bytes(r.u32("count"), "Rread data") }),
    size: (m) => 4 + m.data.length,
  },
  Twrite: {
    encode: (w, m) => void w.u32(m.fid).u64(m.offset).u32(m.data.length).bytes(m.data),
    decode: (r) => {
      const fid = r.u32("fid");
      const offset = r.u64("offset");
      return { fid, offset, data: r.bytes(r.u32("count"), "Twrite data") };
    },
    size: (m) => 16 + m.data.length,
  },
  Rwrite: { encode: (w, m) => void w.u32(m.count), decode: (r) => ({ count: r.u32("count") }) },
  Tclunk: fidBody(),
  Rclunk: empty,
  Tremove: fidBody(),
  Rremove: empty,
  // diod protocol.md "statfs"
  Tstatfs: fidBody(),
  Rstatfs: {
    encode: (w, m) =>
      void w.u32(m.fsType).u32(m.bsize).u64(m.blocks).u64(m.bfree).u64(m.bavail).u64(m.files).u64(m.ffree)
        .u64(m.fsid).u32(m.namelen),
    decode: (r) => ({
      fsType: r.u32("type"), bsize: r.u32("bsize"), blocks: r.u64("blocks"), bfree: r.u64("bfree"),
      bavail: r.u64("bavail"), files: r.u64("files"), ffree: r.u64("ffree"), fsid: r.u64("fsid"),
      namelen: r.u32("namelen"),
    }),
  },
  // diod protocol.md "lopen", "lcreate"
  Tlopen: {
    encode: (w, m) => void w.u32(m.fid).u32(m.flags),
    decode: (r) => ({ fid: r.u32("fid"), flags: r.u32("flags") }),
  },
  Rlopen: openReply(),
  Tlcreate: {
    encode: (w, m) => void w.u32(m.fid).string(m.name).u32(m.flags).u32(m.mode).u32(m.gid),
    decode: (r) => ({ fid: r.u32("fid"), name: r.string("name"), flags: r.u32("flags"), mode: r.u32("mode"), gid: r.u32("gid") }),
  },
  Rlcreate: openReply(),
  // diod protocol.md "symlink", "mknod"
  Tsymlink: {
    encode: (w, m) => void w.u32(m.fid).string(m.name).string(m.symtgt, "symtgt").u32(m.gid),
    decode: (r) => ({ fid: r.u32("fid"), name: r.string("name"), symtgt: r.string("symtgt"), gid: r.u32("gid") }),
  },
  Rsymlink: qidBody(),
  Tmknod: {
    encode: (w, m) => void w.u32(m.dfid).string(m.name).u32(m.mode).u32(m.major).u32(m.minor).u32(m.gid),
    decode: (r) => ({
      dfid: r.u32("dfid"), name: r.string("name"), mode: r.u32("mode"), major: r.u32("major"),
      minor: r.u32("minor"), gid: r.u32("gid"),
    }),
  },
  Rmknod: qidBody(),
  // diod protocol.md "rename", "readlink"
  Trename: {
    encode: (w, m) => void w.u32(m.fid).u32(m.dfid).string(m.name),
    decode: (r) => ({ fid: r.u32("fid"), dfid: r.u32("dfid"), name: r.string("name") }),
  },
  Rrename: empty,
  Treadlink: fidBody(),
  Rreadlink: { encode: (w, m) => void w.string(m.target, "target"), decode: (r) => ({ target: r.string("target") }) },
  // diod protocol.md "getattr": request_mask[8]; valid[8] qid[13] mode[4] uid[4] gid[4] then 15 x [8]
  Tgetattr: {
    encode: (w, m) => void w.u32(m.fid).u64(m.requestMask),
    decode: (r) => ({ fid: r.u32("fid"), requestMask: r.u64("request_mask") }),
  },
  Rgetattr: {
    encode: (w, m) => {
      w.u64(m.valid).qid(m.qid).u32(m.mode).u32(m.uid).u32(m.gid);
      for (const field of GETATTR_U64_FIELDS) w.u64(m[field], field);
    },
    decode: (r) => {
      const head = { valid: r.u64("valid"), qid: r.qid(), mode: r.u32("mode"), uid: r.u32("uid"), gid: r.u32("gid") };
      const rest = {} as Record<(typeof GETATTR_U64_FIELDS)[number], bigint>;
      for (const field of GETATTR_U64_FIELDS) rest[field] = r.u64(field);
      return { ...head, ...rest };
    },
  },
  // diod protocol.md "setattr": valid[4] mode[4] uid[4] gid[4] size[8] atime[8+8] mtime[8+8]
  Tsetattr: {
    encode: (w, m) =>
      void w.u32(m.fid).u32(m.valid).u32(m.mode).u32(m.uid).u32(m.gid).u64(m.size)
        .u64(m.atimeSec).u64(m.atimeNsec).u64(m.mtimeSec).u64(m.mtimeNsec),
    decode: (r) => ({
      fid: r.u32("fid"), valid: r.u32("valid"), mode: r.u32("mode"), uid: r.u32("uid"), gid: r.u32("gid"),
      size: r.u64("size"), atimeSec: r.u64("atime_sec"), atimeNsec: r.u64("atime_nsec"),
      mtimeSec: r.u64("mtime_sec"), mtimeNsec: r.u64("mtime_nsec"),
    }),
  },
  Rsetattr: empty,
  // diod protocol.md "xattrwalk", "xattrcreate"
  Txattrwalk: {
    encode: (w, m) => void w.u32(m.fid).u32(m.newfid).string(m.name),
    decode: (r) => ({ fid: r.u32("fid"), newfid: r.u32("newfid"), name: r.string("name") }),
  },
  Rxattrwalk: { encode: (w, m) => void w.u64(m.size), decode: (r) => ({ size: r.u64("size") }) },
  Txattrcreate: {
    encode: (w, m) => void w.u32(m.fid).string(m.name).u64(m.attrSize).u32(m.flags),
    decode: (r) => ({ fid: r.u32("fid"), name: r.string("name"), attrSize: r.u64("attr_size"), flags: r.u32("flags") }),
  },
  Rxattrcreate: empty,
  // diod protocol.md "readdir": Rreaddir count[4] data[count], entries qid[13] offset[8] type[1] name[s]
  Treaddir: {
    encode: (w, m) => void w.u32(m.fid).u64(m.offset).u32(m.count),
    decode: (r) => ({ fid: r.u32("fid"), offset: r.u64("offset"), count: r.u32("count") }),
  },
  Rreaddir: {
    encode: (w, m) => {
      const at = w.length;
      w.u32(0);
      for (const e of m.entries) w.qid(e.qid).u64(e.offset).u8(e.type, "dirent type").string(e.name, "dirent name");
      w.patchU32(at, w.length - at - 4);
    },
    decode: (r) => {
      const data = new ByteReader(r.bytes(r.u32("count"), "Rreaddir data"));
      const entries: Dirent[] = [];
      while (data.remaining > 0) {
        entries.push({ qid: data.qid(), offset: data.u64("dirent offset"), type: data.u8("dirent type"), name: data.string("dirent name") });
      }
      return { entries };
    },
    size: (m) => 4 + m.entries.reduce((sum, e) => sum + direntSize(e.name), 0),
  },
  // diod protocol.md "fsync" lists fid[4]; Linux since 2.6.39 also sends datasync[4] (QEMU reads both)
  Tfsync: {
    encode: (w, m) => void w.u32(m.fid).u32(m.datasync),
    decode: (r) => ({ fid: r.u32("fid"), datasync: r.remaining > 0 ? r.u32("datasync") : 0 }),
  },
  Rfsync: empty,
  // diod protocol.md "lock", "getlock"
  Tlock: {
    encode: (w, m) =>
      void w.u32(m.fid).u8(m.lockType).u32(m.flags).u64(m.start).u64(m.length).u32(m.procId).string(m.clientId),
    decode: (r) => ({
      fid: r.u32("fid"), lockType: r.u8("type"), flags: r.u32("flags"), start: r.u64("start"),
      length: r.u64("length"), procId: r.u32("proc_id"), clientId: r.string("client_id"),
    }),
  },
  Rlock: { encode: (w, m) => void w.u8(m.status), decode: (r) => ({ status: r.u8("status") }) },
  Tgetlock: {
    encode: (w, m) => void w.u32(m.fid).u8(m.lockType).u64(m.start).u64(m.length).u32(m.procId).string(m.clientId),
    decode: (r) => ({
      fid: r.u32("fid"), lockType: r.u8("type"), start: r.u64("start"), length: r.u64("length"),
      procId: r.u32("proc_id"), clientId: r.string("client_id"),
    }),
  },
  Rgetlock: {
    encode: (w, m) => void w.u8(m.lockType).u64(m.start).u64(m.length).u32(m.procId).string(m.clientId),
    decode: (r) => ({
      lockType: r.u8("type"), start: r.u64("start"), length: r.u64("length"), procId: r.u32("proc_id"),
      clientId: r.string("client_id"),
    }),
  },
  // diod protocol.md "link", "mkdir", "renameat", "unlinkat"
  Tlink: {
    encode: (w, m) => void w.u32(m.dfid).u32(m.fid).string(m.name),
    decode: (r) => ({ dfid: r.u32("dfid"), fid: r.u32("fid"), name: r.string("name") }),
  },
  Rlink: empty,
  Tmkdir: {
    encode: (w, m) => void w.u32(m.dfid).string(m.name).u32(m.mode).u32(m.gid),
    decode: (r) => ({ dfid: r.u32("dfid"), name: r.string("name"), mode: r.u32("mode"), gid: r.u32("gid") }),
  },
  Rmkdir: qidBody(),
  Trenameat: {
    encode: (w, m) => void w.u32(m.olddirfid).string(m.oldname).u32(m.newdirfid).string(m.newname),
    decode: (r) => ({
      olddirfid: r.u32("olddirfid"), oldname: r.string("oldname"), newdirfid: r.u32("newdirfid"), newname: r.string("newname"),
    }),
  },
  Rrenameat: empty,
  Tunlinkat: {
    encode: (w, m) => void w.u32(m.dirfid).string(m.name).u32(m.flags),
    decode: (r) => ({ dirfid: r.u32("dirfid"), name: r.string("name"), flags: r.u32("flags") }),
  },
  Runlinkat: empty,
};

const NAME_OF_ID = new Map<number, P9MessageName>(
  (Object.keys(CODECS) as P9MessageName[]).map((name) => [MessageType[name], name]),
);

/** The name of a message type number ("Twalk"), or undefined for one this codec does not speak. */
export function messageName(id: number): P9MessageName | undefined {
  return NAME_OF_ID.get(id);
}

export function isTMessage(m: P9Message): m is TMessage {
  return m.type.startsWith("T");
}

/** One whole frame, size field included. */
export function encodeMessage(m: P9Message): Uint8Array {
  const codec = CODECS[m.type] as Codec<P9Message>;
  const w = new ByteWriter(HEADER_SIZE + (codec.size?.(m) ?? 64));
  w.u32(0).u8(MessageType[m.type]).u16(m.tag, "tag");
  codec.encode(w, m);
  w.patchU32(0, w.length);
  return w.finish();
}

export interface FrameHeader {
  readonly size: number;
  readonly id: number;
  readonly tag: number;
}

/** The header of a frame, or undefined if it is shorter than one; trusts nothing else. */
export function peekHeader(frame: Uint8Array): FrameHeader | undefined {
  if (frame.length < HEADER_SIZE) return undefined;
  const r = new ByteReader(frame);
  return { size: r.u32(), id: r.u8(), tag: r.u16() };
}

/**
 * Decodes one whole frame. The size field must equal the frame's length, every field must lie
 * within it and nothing may be left over. Byte fields (Twrite/Rread data) share the frame.
 */
export function decodeMessage(frame: Uint8Array): P9Message {
  const header = peekHeader(frame);
  if (!header) throw new P9WireError(`frame of ${frame.length} bytes is shorter than the 7-byte header`);
  if (header.size !== frame.length) {
    throw new P9WireError(`frame size field says ${header.size} bytes but the frame has ${frame.length}`);
  }
  const name = messageName(header.id);
  if (!name) throw new P9WireError(`message type ${header.id} is not a 9P2000.L message this server speaks`);
  const r = new ByteReader(frame.subarray(HEADER_SIZE));
  const body = CODECS[name].decode(r);
  r.end(name);
  return { type: name, tag: header.tag, ...body } as P9Message;
}
