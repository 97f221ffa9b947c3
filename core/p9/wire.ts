// 9P wire primitives: a bounds-checked ByteReader over one received frame and a growing
// ByteWriter for replies. Integers are little-endian, 8-byte ones are bigint; a string is
// u16 length + UTF-8; a qid is type[1] version[4] path[8] (9P2000 intro(5), "Messages").
// Reading past the end, a lying length or bad UTF-8 throws P9WireError, never a RangeError.

import { Errno } from "./errno.js";

/** A 9P qid: the server's identity of a file. `path` is unique per file within a backend. */
export interface Qid {
  readonly type: number;
  readonly version: number;
  readonly path: bigint;
}

/** A frame that cannot be read or a value that cannot be written; `errno` is what Rlerror says. */
export class P9WireError extends Error {
  readonly errno: number;

  constructor(message: string, errno: number = Errno.EPROTO) {
    super(message);
    this.name = "P9WireError";
    this.errno = errno;
  }
}

export const QID_SIZE = 13;
const MAX_U64 = (1n << 64n) - 1n;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes a 9P string takes on the wire (length prefix included). */
export function stringSize(value: string): number {
  return 2 + utf8.encode(value).length;
}

export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  #need(n: number, what: string): number {
    if (n > this.remaining) {
      throw new P9WireError(`truncated: ${what} needs ${n} bytes at offset ${this.#pos}, ${this.remaining} left`);
    }
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  u8(what = "u8"): number {
    return this.#view.getUint8(this.#need(1, what));
  }

  u16(what = "u16"): number {
    return this.#view.getUint16(this.#need(2, what), true);
  }

  u32(what = "u32"): number {
    return this.#view.getUint32(this.#need(4, what), true);
  }

  u64(what = "u64"): bigint {
    return this.#view.getBigUint64(this.#need(8, what), true);
  }

  /** `n` raw bytes, shared with the frame (no copy). */
  bytes(n: number, what = "data"): Uint8Array {
    const at = this.#need(n, what);
    return this.#bytes.subarray(at, at + n);
  }

  string(what = "string"): string {
    const length = this.u16(`${what} length`);
    const raw = this.bytes(length, what);
    try {
      return strictUtf8.decode(raw);
    } catch {
      throw new P9WireError(`${what} is not valid UTF-8`, Errno.EILSEQ);
    }
  }

  qid(what = "qid"): Qid {
    const type = this.u8(`${what} type`);
    const version = this.u32(`${what} version`);
    const path = this.u64(`${what} path`);
    return { type, version, path };
  }

  /** Throws if bytes are left over: a frame longer than its fields is as wrong as a short one. */
  end(what: string): void {
    if (this.remaining !== 0) throw new P9WireError(`${what}: ${this.remaining} bytes left over after the last field`);
  }
}

export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(capacity = 64) {
    this.#buf = new Uint8Array(Math.max(16, capacity));
    this.#view = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#len;
  }

  #grow(n: number): number {
    const at = this.#len;
    const need = at + n;
    if (need > this.#buf.length) {
      let size = this.#buf.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(0, at));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    this.#len = need;
    return at;
  }

  #check(value: number, max: number, what: string): void {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new P9WireError(`cannot encode ${what} ${value}: not an integer in 0..${max}`, Errno.EINVAL);
    }
  }

  u8(value: number, what = "u8"): this {
    this.#check(value, 0xff, what);
    const at = this.#grow(1);
    this.#view.setUint8(at, value);
    return this;
  }

  u16(value: number, what = "u16"): this {
    this.#check(value, 0xffff, what);
    const at = this.#grow(2);
    this.#view.setUint16(at, value, true);
    return this;
  }

  u32(value: number, what = "u32"): this {
    this.#check(value, 0xffffffff, what);
    const at = this.#grow(4);
    this.#view.setUint32(at, value, true);
    return this;
  }

  u64(value: bigint | number, what = "u64"): this {
    if (typeof value === "number") {
      this.#check(value, Number.MAX_SAFE_INTEGER, what);
      value = BigInt(value);
    }
    if (value < 0n || value > MAX_U64) throw new P9WireError(`cannot encode ${what} ${value}: not in 0..2^64-1`, Errno.EINVAL);
    const at = this.#grow(8);
    this.#view.setBigUint64(at, value, true);
    return this;
  }

  bytes(data: Uint8Array): this {
    const at = this.#grow(data.length);
    this.#buf.set(data, at);
    return this;
  }

  string(value: string, what = "string"): this {
    const raw = utf8.encode(value);
    if (raw.length > 0xffff) throw new P9WireError(`cannot encode ${what}: ${raw.length} bytes is over 65535`, Errno.ENAMETOOLONG);
    this.u16(raw.length);
    return this.bytes(raw);
  }

  qid(qid: Qid): this {
    this.u8(qid.type, "qid type");
    this.u32(qid.version, "qid version");
    return this.u64(qid.path, "qid path");
  }

  /** Overwrites a u32 written earlier (a frame's size, a count known only at the end). */
  patchU32(at: number, value: number): this {
    this.#check(value, 0xffffffff, "u32");
    if (at < 0 || at + 4 > this.#len) throw new P9WireError(`cannot patch u32 at ${at}: outside the ${this.#len} bytes written`, Errno.EINVAL);
    this.#view.setUint32(at, value, true);
    return this;
  }

  /** The bytes written so far, as a copy of exactly that length. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}
