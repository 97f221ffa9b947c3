// A saved machine state as it is kept: v86's raw state compressed with zstd (level 3), which
// v86 restores as it is (it reads the zstd magic). The page and the host compress alike; the
// WebAssembly module is loaded on first use and kept.

import type { Zstd } from "@hpcc-js/wasm-zstd";
import { frameContentSize, putBitmapFirst } from "./state-format.js";

export { isCompressedState, ZSTD_MAGIC } from "./state-format.js";

/** The zstd level a state is kept at (the host's native compressor uses it too). */
export const STATE_ZSTD_LEVEL = 3;

let zstd: Promise<Zstd> | undefined;

/** The part of @hpcc-js/wasm-zstd's module wrapper (Zstd's _mainModule) that copies results out of WebAssembly memory. */
interface HeapCopies {
  heapView(block: { ptr: number; size: number }): Uint8Array;
  heapToUint8Array(block: { ptr: number; size: number }): Uint8Array;
}

/**
 * The library copies each result out of WebAssembly memory one element at a time
 * (`new Uint8Array([...view])`): 3.2 s of a 3.5 s compression of tiny's 43 MiB state here. A
 * copy of the same view in one piece gives the same bytes. Done only where the wrapper has the
 * shape it is known by; a unit test says when an update changes it.
 */
export function copyResultsWhole(instance: Zstd): boolean {
  const main = (instance as unknown as { _mainModule?: Partial<HeapCopies> })._mainModule;
  if (typeof main?.heapView !== "function" || typeof main.heapToUint8Array !== "function") return false;
  const view = main.heapView.bind(main);
  main.heapToUint8Array = (block) => view(block).slice();
  return true;
}

function load(): Promise<Zstd> {
  zstd ??= import("@hpcc-js/wasm-zstd").then(async (module) => {
    const instance = await module.Zstd.load();
    copyResultsWhole(instance);
    return instance;
  });
  return zstd;
}

/**
 * v86's raw state, compressed as v86 restores it; its RAM's bitmap is put before its pages
 * first (in `raw` itself), for a resume that writes each page straight to its place.
 */
export async function compressState(raw: Uint8Array): Promise<Uint8Array> {
  putBitmapFirst(raw);
  return (await load()).compress(raw, STATE_ZSTD_LEVEL);
}

/**
 * A kept state decoded: v86's raw state, which a resume reads where it lies (state-format.ts
 * readState). Only a frame that says its size, at most `limit` bytes, is decoded; anything else
 * (or a frame that does not decode to that size) is an error that says so.
 */
export async function decodeState(bytes: Uint8Array, limit: number): Promise<Uint8Array> {
  const size = frameContentSize(bytes);
  if (size === undefined) throw new Error("it is not a zstd frame that gives its size");
  if (size > limit) throw new Error(`it decodes to ${size} bytes, more than the ${limit} decoded ahead`);
  const raw = (await load()).decompress(bytes);
  if (raw.length !== size) throw new Error(`it decoded to ${raw.length} bytes, its frame says ${size}`);
  return raw;
}
