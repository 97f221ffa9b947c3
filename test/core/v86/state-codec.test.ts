// A saved state as it is kept: zstd that v86 restores, the same bytes back, and the library's
// result copies made whole (copyResultsWhole) on the wrapper it is known by.

import { describe, expect, it } from "vitest";
import { Zstd } from "@hpcc-js/wasm-zstd";
import { compressState, copyResultsWhole, isCompressedState } from "../../../core/v86/state-codec.js";

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
