// 9P2000.L messages: every T- and R-message round-trips byte-exactly through encode/decode, and
// a truncated, padded or lying frame is a P9WireError, whichever field the lie is in.

import { describe, expect, it } from "vitest";
import {
  decodeMessage,
  direntSize,
  encodeMessage,
  isTMessage,
  MessageType,
  messageName,
  NOFID,
  NOTAG,
  peekHeader,
  type P9Message,
  type P9MessageName,
} from "../../../core/p9/messages.js";
import { P9WireError, type Qid } from "../../../core/p9/wire.js";

const qid: Qid = { type: 0x80, version: 3, path: 0xdeadbeefcafen };
const fileQid: Qid = { type: 0, version: 0, path: 42n };
const big = (1n << 63n) + 5n;

/** One message of every type, with values that exercise each field's width. */
const SAMPLES: { [N in P9MessageName]: Extract<P9Message, { type: N }> } = {
  Tversion: { type: "Tversion", tag: NOTAG, msize: 512000, version: "9P2000.L" },
  Rversion: { type: "Rversion", tag: NOTAG, msize: 65536, version: "9P2000.L" },
  Tauth: { type: "Tauth", tag: 1, afid: 5, uname: "user", aname: "/share", nUname: 1000 },
  Rauth: { type: "Rauth", tag: 1, aqid: qid },
  Tattach: { type: "Tattach", tag: 2, fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 },
  Rattach: { type: "Rattach", tag: 2, qid },
  Rlerror: { type: "Rlerror", tag: 3, ecode: 2 },
  Tflush: { type: "Tflush", tag: 4, oldtag: 3 },
  Rflush: { type: "Rflush", tag: 4 },
  Twalk: { type: "Twalk", tag: 5, fid: 0, newfid: 1, wnames: ["usr", "share", "döc"] },
  Rwalk: { type: "Rwalk", tag: 5, wqids: [qid, qid, fileQid] },
  Tread: { type: "Tread", tag: 6, fid: 1, offset: big, count: 0xffffffff },
  Rread: { type: "Rread", tag: 6, data: new Uint8Array([1, 2, 3, 0, 255]) },
  Twrite: { type: "Twrite", tag: 7, fid: 1, offset: 12n, data: new Uint8Array([9, 8, 7]) },
  Rwrite: { type: "Rwrite", tag: 7, count: 3 },
  Tclunk: { type: "Tclunk", tag: 8, fid: 1 },
  Rclunk: { type: "Rclunk", tag: 8 },
  Tremove: { type: "Tremove", tag: 9, fid: 2 },
  Rremove: { type: "Rremove", tag: 9 },
  Tstatfs: { type: "Tstatfs", tag: 10, fid: 0 },
  Rstatfs: {
    type: "Rstatfs", tag: 10, fsType: 0x01021997, bsize: 4096, blocks: 1000n, bfree: 500n, bavail: 400n,
    files: 100n, ffree: 50n, fsid: big, namelen: 255,
  },
  Tlopen: { type: "Tlopen", tag: 11, fid: 1, flags: 0o100002 },
  Rlopen: { type: "Rlopen", tag: 11, qid: fileQid, iounit: 511976 },
  Tlcreate: { type: "Tlcreate", tag: 12, fid: 1, name: "new.txt", flags: 0o101101, mode: 0o100644, gid: 100 },
  Rlcreate: { type: "Rlcreate", tag: 12, qid: fileQid, iounit: 0 },
  Tsymlink: { type: "Tsymlink", tag: 13, fid: 1, name: "link", symtgt: "../target", gid: 0 },
  Rsymlink: { type: "Rsymlink", tag: 13, qid: { type: 2, version: 0, path: 7n } },
  Tmknod: { type: "Tmknod", tag: 14, dfid: 1, name: "null", mode: 0o20666, major: 1, minor: 3, gid: 0 },
  Rmknod: { type: "Rmknod", tag: 14, qid: fileQid },
  Trename: { type: "Trename", tag: 15, fid: 2, dfid: 1, name: "renamed" },
  Rrename: { type: "Rrename", tag: 15 },
  Treadlink: { type: "Treadlink", tag: 16, fid: 2 },
  Rreadlink: { type: "Rreadlink", tag: 16, target: "/etc/passwd" },
  Tgetattr: { type: "Tgetattr", tag: 17, fid: 2, requestMask: 0x3fffn },
  Rgetattr: {
    type: "Rgetattr", tag: 17, valid: 0x7ffn, qid: fileQid, mode: 0o100644, uid: 1000, gid: 1000, nlink: 1n, rdev: 0n,
    size: big, blksize: 4096n, blocks: 8n, atimeSec: 1n, atimeNsec: 2n, mtimeSec: 3n, mtimeNsec: 4n, ctimeSec: 5n,
    ctimeNsec: 6n, btimeSec: 7n, btimeNsec: 8n, gen: 9n, dataVersion: 10n,
  },
  Tsetattr: {
    type: "Tsetattr", tag: 18, fid: 2, valid: 0x1ff, mode: 0o4755, uid: 1, gid: 2, size: 100n, atimeSec: 11n,
    atimeNsec: 12n, mtimeSec: 13n, mtimeNsec: 999_999_999n,
  },
  Rsetattr: { type: "Rsetattr", tag: 18 },
  Txattrwalk: { type: "Txattrwalk", tag: 19, fid: 2, newfid: 3, name: "security.capability" },
  Rxattrwalk: { type: "Rxattrwalk", tag: 19, size: 0n },
  Txattrcreate: { type: "Txattrcreate", tag: 20, fid: 3, name: "user.a", attrSize: 10n, flags: 1 },
  Rxattrcreate: { type: "Rxattrcreate", tag: 20 },
  Treaddir: { type: "Treaddir", tag: 21, fid: 1, offset: 2n, count: 8168 },
  Rreaddir: {
    type: "Rreaddir", tag: 21, entries: [
      { qid, offset: 1n, type: 4, name: "." },
      { qid, offset: 2n, type: 4, name: ".." },
      { qid: fileQid, offset: 3n, type: 8, name: "file.txt" },
    ],
  },
  Tfsync: { type: "Tfsync", tag: 22, fid: 1, datasync: 1 },
  Rfsync: { type: "Rfsync", tag: 22 },
  Tlock: { type: "Tlock", tag: 23, fid: 1, lockType: 1, flags: 1, start: 0n, length: 0n, procId: 123, clientId: "guest" },
  Rlock: { type: "Rlock", tag: 23, status: 1 },
  Tgetlock: { type: "Tgetlock", tag: 24, fid: 1, lockType: 0, start: 10n, length: 20n, procId: 5, clientId: "guest" },
  Rgetlock: { type: "Rgetlock", tag: 24, lockType: 2, start: 10n, length: 20n, procId: 5, clientId: "guest" },
  Tlink: { type: "Tlink", tag: 25, dfid: 1, fid: 2, name: "hard" },
  Rlink: { type: "Rlink", tag: 25 },
  Tmkdir: { type: "Tmkdir", tag: 26, dfid: 1, name: "dir", mode: 0o40755, gid: 0 },
  Rmkdir: { type: "Rmkdir", tag: 26, qid },
  Trenameat: { type: "Trenameat", tag: 27, olddirfid: 1, oldname: "a", newdirfid: 4, newname: "b" },
  Rrenameat: { type: "Rrenameat", tag: 27 },
  Tunlinkat: { type: "Tunlinkat", tag: 28, dirfid: 1, name: "gone", flags: 0x200 },
  Runlinkat: { type: "Runlinkat", tag: 28 },
};

const samples = Object.values(SAMPLES) as P9Message[];

/** A copy of `frame` cut to `length`, its size field saying `size`. */
function withSize(frame: Uint8Array, length: number, size: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(frame.subarray(0, length));
  if (length >= 4) new DataView(out.buffer).setUint32(0, size >>> 0, true);
  return out;
}

describe("9P2000.L messages", () => {
  it("round-trips every message type", () => {
    expect(samples.length).toBe(57);
    for (const message of samples) {
      const frame = encodeMessage(message);
      expect(peekHeader(frame), message.type).toEqual({ size: frame.length, id: MessageType[message.type], tag: message.tag });
      expect(decodeMessage(frame), message.type).toEqual(message);
      expect(encodeMessage(decodeMessage(frame))).toEqual(frame);
      expect(isTMessage(message)).toBe(message.type.startsWith("T"));
      expect(messageName(MessageType[message.type])).toBe(message.type);
    }
  });

  it("lays out Tversion byte for byte as the spec shows it", () => {
    const frame = encodeMessage({ type: "Tversion", tag: NOTAG, msize: 8192, version: "9P2000.L" });
    expect([...frame]).toEqual([21, 0, 0, 0, 100, 0xff, 0xff, 0x00, 0x20, 0, 0, 8, 0, ...new TextEncoder().encode("9P2000.L")]);
    const error = encodeMessage({ type: "Rlerror", tag: 0x1234, ecode: 2 });
    expect([...error]).toEqual([11, 0, 0, 0, 7, 0x34, 0x12, 2, 0, 0, 0]);
  });

  it("packs readdir entries as qid, offset, type and name, and counts them as direntSize says", () => {
    const frame = encodeMessage(SAMPLES.Rreaddir);
    const count = new DataView(frame.buffer).getUint32(7, true);
    expect(count).toBe(SAMPLES.Rreaddir.entries.reduce((n, e) => n + direntSize(e.name), 0));
    expect(count).toBe(frame.length - 11);
  });

  it("reads Tfsync without datasync, as older clients send it", () => {
    const frame = encodeMessage({ type: "Tfsync", tag: 1, fid: 7, datasync: 0 });
    const short = withSize(frame, frame.length - 4, frame.length - 4);
    expect(decodeMessage(short)).toEqual({ type: "Tfsync", tag: 1, fid: 7, datasync: 0 });
  });

  it("throws P9WireError for every truncation of every message, whatever the size field says", () => {
    for (const message of samples) {
      const frame = encodeMessage(message);
      for (let length = 0; length < frame.length; length++) {
        if (message.type === "Tfsync" && length === frame.length - 4) continue;
        expect(() => decodeMessage(withSize(frame, length, length)), `${message.type} cut to ${length}`).toThrow(P9WireError);
        expect(() => decodeMessage(withSize(frame, length, frame.length)), `${message.type} cut to ${length}`).toThrow(P9WireError);
      }
    }
  });

  it("throws P9WireError for a size field that lies or bytes left over", () => {
    for (const message of samples) {
      const frame = encodeMessage(message);
      expect(() => decodeMessage(withSize(frame, frame.length, frame.length + 1)), message.type).toThrow(P9WireError);
      expect(() => decodeMessage(withSize(frame, frame.length, frame.length - 1)), message.type).toThrow(P9WireError);
      expect(() => decodeMessage(withSize(frame, frame.length, 0xffffffff)), message.type).toThrow(P9WireError);
      const padded = new Uint8Array(frame.length + (message.type === "Tfsync" ? 5 : 1));
      padded.set(frame);
      expect(() => decodeMessage(withSize(padded, padded.length, padded.length)), message.type).toThrow(/left over/);
    }
  });

  it("throws P9WireError for lying counts and lengths inside the body", () => {
    const write = encodeMessage(SAMPLES.Twrite);
    new DataView(write.buffer).setUint32(7 + 4 + 8, 1000, true);
    expect(() => decodeMessage(write)).toThrow(/truncated/);
    const walk = encodeMessage({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: [] });
    new DataView(walk.buffer).setUint16(15, 17, true);
    expect(() => decodeMessage(walk)).toThrow(/nwname 17/);
    const name = encodeMessage({ type: "Tmkdir", tag: 1, dfid: 1, name: "abc", mode: 0, gid: 0 });
    new DataView(name.buffer).setUint16(11, 40, true);
    expect(() => decodeMessage(name)).toThrow(P9WireError);
    const readdir = encodeMessage(SAMPLES.Rreaddir);
    const view = new DataView(readdir.buffer);
    view.setUint32(7, view.getUint32(7, true) - 3, true);
    expect(() => decodeMessage(readdir)).toThrow(P9WireError);
  });

  it("throws P9WireError for types it does not speak", () => {
    for (const id of [0, 6, 99, 106, 112, 124, 200, 255]) {
      const frame = new Uint8Array([7, 0, 0, 0, id, 1, 0]);
      expect(() => decodeMessage(frame), `type ${id}`).toThrow(P9WireError);
    }
    expect(() => decodeMessage(new Uint8Array([1, 2, 3]))).toThrow(/shorter than the 7-byte header/);
    expect(peekHeader(new Uint8Array(6))).toBeUndefined();
  });

  it("refuses to encode values that do not fit their fields", () => {
    expect(() => encodeMessage({ type: "Tclunk", tag: 0x10000, fid: 1 })).toThrow(P9WireError);
    expect(() => encodeMessage({ type: "Tclunk", tag: 1, fid: -1 })).toThrow(P9WireError);
    expect(() => encodeMessage({ type: "Tread", tag: 1, fid: 1, offset: -1n, count: 1 })).toThrow(P9WireError);
  });
});
