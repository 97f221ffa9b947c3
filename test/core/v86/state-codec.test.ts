// A saved state as it is kept: zstd that v86 restores, the same bytes back, and the library's
// result copies made whole (copyResultsWhole) on the wrapper it is known by; decoded ahead of a
// resume (decodeState) only as far as its frame says and a limit allows.

import { describe, expect, it } from "vitest";
import { Zstd } from "@hpcc-js/wasm-zstd";
import { compressState, copyResultsWhole, decodeState, isCompressedState } from "../../../core/v86/state-codec.js";
import { frameContentSize } from "../../../core/v86/state-format.js";

/** 3 MiB as a machine's state looks: runs of zeros between pages of noise and of text. */
function stateLike(): Uint8Array {
  const bytes = new Uint8Array(3 * 1024 * 1024);
  let seed = 7;
  for (let page = 0; page < bytes.length / 4096; page++) {
    if (page % 3 === 0) continue;
    for (let i = page * 4096; i < (page + 1) * 4096; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      bytes[i] = page % 3 === 1 ? seed >>> 24 : 0x41 + (i % 26);
    }
  }
  return bytes;
}

describe("compressState", () => {
  it("gives a zstd frame that holds exactly the state", async () => {
    const raw = stateLike();
    const packed = await compressState(raw);
    expect(isCompressedState(packed)).toBe(true);
    expect(packed.length).toBeLessThan(raw.length * 0.75);
    const back = (await Zstd.load()).decompress(packed);
    expect(back.length).toBe(raw.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(raw))).toBe(0);
  });

  it("finds the library's result copy where it replaces it (an update that moves it fails here)", async () => {
    expect(copyResultsWhole(await Zstd.load())).toBe(true);
    expect(copyResultsWhole({} as Zstd)).toBe(false);
  });
});

describe("decodeState", () => {
  it("gives back exactly the state, the size its frame says", async () => {
    const raw = stateLike();
    const packed = await compressState(raw.slice());
    expect(frameContentSize(packed)).toBe(raw.length);
    const back = await decodeState(packed, 8 * 1024 * 1024);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(raw))).toBe(0);
  });

  it("decodes nothing over its limit, nor a frame that does not give its size, nor what is not zstd", async () => {
    const packed = await compressState(stateLike());
    await expect(decodeState(packed, 1024 * 1024)).rejects.toThrow(/^it decodes to 3145728 bytes, more than the 1048576 decoded ahead$/);
    const unsized = packed.slice();
    unsized[4] = unsized[4]! & 0x3f & ~0x20; // no content size field, not a single segment
    expect(frameContentSize(unsized)).toBeUndefined();
    await expect(decodeState(unsized, 8 * 1024 * 1024)).rejects.toThrow(/^it is not a zstd frame that gives its size$/);
    await expect(decodeState(new Uint8Array(16), 8 * 1024 * 1024)).rejects.toThrow(/zstd frame/);
  });

  it("reads each size field a frame header may have (RFC 8878 section 3.1.1.1)", () => {
    const header = (descriptor: number, ...rest: number[]): Uint8Array => new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, descriptor, ...rest]);
    expect(frameContentSize(header(0x20, 200))).toBe(200); // single segment, 1 byte
    expect(frameContentSize(header(0x60, 0x10, 0x00))).toBe(0x10 + 256); // 2 bytes, plus 256
    expect(frameContentSize(header(0x80, 0x58, 0x01, 0x02, 0x03, 0x04))).toBe(0x04030201); // window byte, then 4 bytes
    expect(frameContentSize(header(0xa1, 0x07, 1, 0, 0, 0))).toBe(1); // single segment, a 1-byte dictionary id, 4 bytes
    expect(frameContentSize(header(0xc0, 0x58, 1, 0, 0, 0, 1, 0, 0, 0))).toBe(2 ** 32 + 1); // 8 bytes
    expect(frameContentSize(header(0x80, 0x58, 1, 2))).toBeUndefined(); // cut short
  });
});
