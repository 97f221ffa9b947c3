// A saved state decoded and compressed by the host's own libzstd (main/native/native.ts), for
// the command line: v86's WebAssembly zstd (in the emulator, and @hpcc-js/wasm-zstd) is the
// page's.
//
// Decoded ahead of the emulator (decodeState). A headless resume sets v86 up in its worker
// while the host reads the state; decoded here in the meantime (on the other core), the worker
// then only copies its pages into RAM (core/v86/state-format.ts reads a raw state where it
// lies), instead of decoding 43 MiB through v86's WebAssembly zstd after it has loaded: that
// was most of a restore.
//
// The decoded state goes to the worker in shared memory (nothing copied on the way), a
// WebAssembly memory, which starts on a page and so can be given huge pages: its first touches
// cost a fault for each 4 KiB page otherwise (43 MiB decoded in 200 ms here, against 60 ms).
//
// Only a speed-up: without koffi or libzstd (main/native/native.ts), or for a frame that does
// not say its size, or one that does not decode, the state goes to the worker compressed, as it
// is kept, and the worker's own decoder reads it (and says what is wrong with it, if anything
// is).
//
// Compressed at a suspend (compressSaved): a zstd frame at the level compressState uses, in a
// fraction of the time (tiny's 43 MB state: 164-211 ms, against 844 ms for a process's first
// compression in WebAssembly here; 1 % larger), which is time a user waits for `unmachine run
// --exec` to end.

import { bytesForFilling } from "../native/huge-pages.js";
import { nativeFunction } from "../native/native.js";
import { compressState, STATE_ZSTD_LEVEL } from "../../core/v86/state-codec.js";
import { frameContentSize, putBitmapFirst } from "../../core/v86/state-format.js";

const LIBZSTD = ["libzstd.so.1", "libzstd.1.dylib", "libzstd.dll"];

type CompressBound = (srcSize: number) => number | bigint;
type Compress = (dst: Uint8Array, dstCapacity: number, src: Uint8Array, srcSize: number, level: number) => number | bigint;
type Decompress = (dst: Uint8Array, dstCapacity: number, src: Uint8Array, srcSize: number) => number | bigint;

/**
 * `compressed` (one zstd frame, as compressState makes it) decoded into shared memory, or
 * undefined where it cannot be here: no native decoder, a frame that does not give its size, a
 * size over `limit` bytes, or a frame that does not decode to exactly that size.
 */
export function decodeState(compressed: Uint8Array, limit: number): Uint8Array<SharedArrayBuffer> | undefined {
  const decompress = nativeFunction<Decompress>(LIBZSTD, "size_t ZSTD_decompress(void *dst, size_t dstCapacity, const void *src, size_t compressedSize)");
  if (!decompress) return undefined;
  // The frame's own word for its size, read as the page reads it (state-format.ts).
  const size = frameContentSize(compressed);
  if (size === undefined || size <= 0 || size > limit) return undefined;
  const out = bytesForFilling(size, true);
  if (!out) return undefined; // no room for it: the worker's decoder streams it instead
  return decompress(out, size, compressed, compressed.length) === size ? out : undefined;
}

/**
 * v86's raw state compressed as compressState compresses it (its RAM's bitmap put first, in
 * `raw` itself; zstd at the same level), by libzstd where the host has it, else by compressState.
 */
export async function compressSaved(raw: Uint8Array): Promise<Uint8Array> {
  const bound = nativeFunction<CompressBound>(LIBZSTD, "size_t ZSTD_compressBound(size_t srcSize)");
  const compress = nativeFunction<Compress>(LIBZSTD, "size_t ZSTD_compress(void *dst, size_t dstCapacity, const void *src, size_t srcSize, int compressionLevel)");
  const room = bound?.(raw.length);
  if (!compress || typeof room !== "number") return compressState(raw);
  putBitmapFirst(raw);
  const out = bytesForFilling(room);
  const written = compress(out, room, raw, raw.length, STATE_ZSTD_LEVEL);
  // An error comes as a value near 2^64: the WebAssembly compressor then.
  if (typeof written !== "number" || written <= 0 || written > room) return compressState(raw);
  return out.subarray(0, written);
}
