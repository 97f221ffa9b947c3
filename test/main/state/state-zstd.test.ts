// A saved state decoded by the host's libzstd ahead of the emulator (state-zstd.ts): the same
// bytes v86 saved, in shared memory a worker sees without a copy; and nothing, so that the
// worker's own decoder reads the state as it is kept, for whatever this decoder cannot take.

import { describe, expect, it } from "vitest";
import { compressState } from "../../../core/v86/state-codec.js";
import { compressSaved, decodeState } from "../../../main/state/state-zstd.js";
import { Zstd } from "@hpcc-js/wasm-zstd";
import { nativeFunction } from "../../../main/native/native.js";
import { advisedMappingsOf, hostGivesHugePages } from "../../support/huge-pages.js";

const MiB = 1024 * 1024;
const hostHasLibzstd = nativeFunction(["libzstd.so.1"], "unsigned int ZSTD_versionNumber()") !== null;

/** `size` bytes as a machine's state looks: zero pages between pages of noise and of text. */
function stateLike(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let seed = 11;
  for (let page = 0; page < size / 4096; page++) {
    if (page % 3 === 0) continue;
    for (let i = page * 4096; i < (page + 1) * 4096; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      bytes[i] = page % 3 === 1 ? seed >>> 24 : 0x41 + (i % 26);
    }
  }
  return bytes;
}

describe.runIf(hostHasLibzstd)("decodeState (this host has libzstd)", () => {
  it("gives back exactly what was compressed, in shared memory", async () => {
    const raw = stateLike(3 * MiB);
    const packed = await compressState(raw.slice());
    const advised = 3 * MiB; // the memory's length: whole WebAssembly pages, here exactly the state's
    const before = advisedMappingsOf(advised);
    const decoded = decodeState(packed, 64 * MiB);
    expect(decoded).toBeDefined();
    expect(decoded!.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(decoded!.length).toBe(raw.length);
    expect(Buffer.compare(Buffer.from(decoded!), Buffer.from(raw))).toBe(0);
    // Its memory asked for huge pages, where the host gives them: no fault for each 4 KiB written.
    if (hostGivesHugePages) expect(advisedMappingsOf(advised)).toBe(before + 1);
  });

  // A state file's payload is checked against its SHA-256 before it is decoded (state-file.ts):
  // what reaches the decoder damaged is what that check let through, or a frame made so.
  it("leaves to the worker a state larger than the limit, one cut short, a frame that does not decode, and what is not zstd", async () => {
    const packed = await compressState(stateLike(2 * MiB));
    expect(decodeState(packed, 1 * MiB)).toBeUndefined();
    expect(decodeState(packed.subarray(0, packed.length - 1000), 64 * MiB)).toBeUndefined();
    const frameSays = (size: number): Uint8Array => {
      // The same frame, its header claiming another content size (its last 4 bytes, as compressState writes it).
      const forged = packed.slice();
      const view = new DataView(forged.buffer);
      const descriptor = forged[4]!;
      expect(descriptor >> 6).toBe(2); // a 4-byte content size
      const at = 5 + ((descriptor & 0x20) === 0 ? 1 : 0);
      view.setUint32(at, size, true);
      return forged;
    };
    expect(decodeState(frameSays(2 * MiB + 4096), 64 * MiB)).toBeUndefined();
    expect(decodeState(frameSays(2 * MiB - 4096), 64 * MiB)).toBeUndefined();
    expect(decodeState(new Uint8Array(64).fill(0x55), 64 * MiB)).toBeUndefined();
    expect(decodeState(new Uint8Array(0), 64 * MiB)).toBeUndefined();
  });
});

describe.runIf(hostHasLibzstd)("compressSaved (this host has libzstd)", () => {
  it("makes the frame compressState makes: the same state back from the page's decoder, its bitmap put first alike", async () => {
    const raw = stateLike(3 * MiB);
    const packed = await compressSaved(raw.slice());
    expect(packed.length).toBeLessThan(raw.length * 0.75);
    const back = (await Zstd.load()).decompress(packed);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(raw))).toBe(0);
    expect(Buffer.compare(Buffer.from(decodeState(packed, 64 * MiB)!), Buffer.from(raw))).toBe(0);
  });
});
