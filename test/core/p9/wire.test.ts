// The 9P wire primitives: little-endian integers, u16-prefixed UTF-8 strings and qids round-trip
// exactly, and a short or lying buffer is a P9WireError, never a RangeError or a silent zero.

import { describe, expect, it } from "vitest";
import { Errno } from "../../../core/p9/errno.js";
import { ByteReader, ByteWriter, P9WireError, stringSize } from "../../../core/p9/wire.js";

describe("ByteWriter and ByteReader", () => {
  it("round-trips integers at their limits, little-endian", () => {
    const w = new ByteWriter(1);
    w.u8(0xff).u16(0xfffe).u32(0xfffffffd).u64((1n << 64n) - 3n).u64(Number.MAX_SAFE_INTEGER).u32(0x01020304);
    const bytes = w.finish();
    expect(bytes.length).toBe(1 + 2 + 4 + 8 + 8 + 4);
    expect([...bytes.subarray(bytes.length - 4)]).toEqual([4, 3, 2, 1]);
    const r = new ByteReader(bytes);
    expect(r.u8()).toBe(0xff);
    expect(r.u16()).toBe(0xfffe);
    expect(r.u32()).toBe(0xfffffffd);
    expect(r.u64()).toBe((1n << 64n) - 3n);
    expect(r.u64()).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    expect(r.u32()).toBe(0x01020304);
    expect(r.remaining).toBe(0);
    r.end("test");
  });

  it("round-trips strings as a u16 byte length and UTF-8, and qids as 13 bytes", () => {
    const names = ["", "plain", "ünïcödé", "日本語", "emoji 🎉", "x".repeat(65535)];
    const w = new ByteWriter();
    for (const name of names) w.string(name);
    w.qid({ type: 0x80, version: 7, path: 0x1122334455667788n });
    const bytes = w.finish();
    expect(bytes.length).toBe(names.reduce((n, s) => n + stringSize(s), 0) + 13);
    expect([...bytes.subarray(0, 2)]).toEqual([0, 0]);
    const r = new ByteReader(bytes);
    for (const name of names) expect(r.string()).toBe(name);
    expect(r.qid()).toEqual({ type: 0x80, version: 7, path: 0x1122334455667788n });
    expect(stringSize("日本語")).toBe(2 + 9);
  });

  it("reads within a subarray of a larger buffer", () => {
    const backing = new Uint8Array([9, 9, 9, 1, 0, 2, 0, 9]);
    const r = new ByteReader(backing.subarray(3, 7));
    expect(r.u16()).toBe(1);
    expect(r.u16()).toBe(2);
    expect(() => r.u8()).toThrow(P9WireError);
  });

  it("throws P9WireError for every read past the end", () => {
    const reads: ((r: ByteReader) => unknown)[] = [
      (r) => r.u8(), (r) => r.u16(), (r) => r.u32(), (r) => r.u64(), (r) => r.qid(), (r) => r.string(), (r) => r.bytes(1),
    ];
    for (const read of reads) {
      expect(() => read(new ByteReader(new Uint8Array(0)))).toThrow(P9WireError);
    }
    expect(() => new ByteReader(new Uint8Array(7)).u64()).toThrow(/truncated/);
    expect(() => new ByteReader(new Uint8Array(12)).qid()).toThrow(P9WireError);
  });

  it("refuses a string whose length lies or whose bytes are not UTF-8", () => {
    expect(() => new ByteReader(new Uint8Array([5, 0, 65, 66])).string()).toThrow(P9WireError);
    try {
      new ByteReader(new Uint8Array([2, 0, 0xc3, 0x28])).string("name");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(P9WireError);
      expect((error as P9WireError).errno).toBe(Errno.EILSEQ);
    }
  });

  it("refuses leftover bytes at the end", () => {
    const r = new ByteReader(new Uint8Array(3));
    r.u16();
    expect(() => r.end("Tclunk")).toThrow(/1 bytes left over/);
  });

  it("refuses to write values that do not fit", () => {
    const w = new ByteWriter();
    expect(() => w.u8(256)).toThrow(P9WireError);
    expect(() => w.u16(-1)).toThrow(P9WireError);
    expect(() => w.u32(2 ** 32)).toThrow(P9WireError);
    expect(() => w.u32(1.5)).toThrow(P9WireError);
    expect(() => w.u64(-1n)).toThrow(P9WireError);
    expect(() => w.u64(1n << 64n)).toThrow(P9WireError);
    expect(() => w.u64(Number.MAX_SAFE_INTEGER + 2)).toThrow(P9WireError);
    expect(() => w.string("x".repeat(65536))).toThrow(P9WireError);
    expect(() => w.patchU32(0, 1)).toThrow(P9WireError);
    expect(w.length).toBe(0);
  });

  it("grows as it writes and patches what it wrote", () => {
    const w = new ByteWriter(16);
    w.u32(0);
    for (let i = 0; i < 10_000; i++) w.u16(i);
    w.bytes(new Uint8Array(100_000).fill(7));
    w.patchU32(0, w.length);
    const bytes = w.finish();
    const r = new ByteReader(bytes);
    expect(r.u32()).toBe(bytes.length);
    for (let i = 0; i < 10_000; i++) expect(r.u16()).toBe(i);
    expect(r.bytes(100_000).every((b) => b === 7)).toBe(true);
  });
});
