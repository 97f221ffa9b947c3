// Huge pages for a headless guest's memory. A resume writes a guest's saved pages into RAM the
// host has not backed yet, and each first touch of a 4 KiB page is a fault: about 14 µs each on
// a virtual machine like the one this was measured on (tiny's 8,300 saved pages: 140 ms). Asked
// for transparent huge pages (madvise MADV_HUGEPAGE), the host backs 2 MiB at a fault: 128 MiB
// took 17-38 ms to touch there, against 510-590 ms in 4 KiB pages.
//
// Node has no call for madvise, so it is reached through koffi (native.ts). Advice only: where
// koffi, libc or the kernel's huge pages are missing, or the host's setting is "never", nothing
// changes but the speed.

import { nativeFunction } from "./native.js";

/** MADV_HUGEPAGE, from Linux's include/uapi/asm-generic/mman-common.h. */
const MADV_HUGEPAGE = 14;
const PAGE = 4096;

type Madvise = (address: Uint8Array, length: number, advice: number) => number;

/** madvise from glibc; null elsewhere (no koffi, another libc, another system): 4 KiB pages, as before. */
const load = (): Madvise | null => (process.platform === "linux" ? nativeFunction<Madvise>(["libc.so.6"], "int madvise(void *addr, size_t len, int advice)") : null);

/**
 * Asks the host to back `memory` (a WebAssembly memory's buffer, shared or not: it starts on a page) with
 * transparent huge pages from its next fault on. Pages already touched keep their size. True if
 * the kernel took the advice; false where it cannot be given.
 */
export function adviseHugePages(memory: ArrayBufferLike): boolean {
  const call = load();
  const length = memory.byteLength - (memory.byteLength % PAGE);
  if (!call || length === 0) return false;
  try {
    return call(new Uint8Array(memory, 0, length), length, MADV_HUGEPAGE) === 0;
  } catch {
    return false;
  }
}

// lib.dom is not loaded for main/: the one WebAssembly call used here, typed.
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => { readonly buffer: ArrayBufferLike };
};
const WASM_PAGE = 65536;

/**
 * `size` zero bytes in memory of their own asked for huge pages: a large buffer about to be
 * filled (a state read or decoded) without a fault for each 4 KiB of it. Shared memory when
 * `shared` (a worker sees it without a copy). A plain buffer where that memory cannot be had.
 */
export function bytesForFilling(size: number, shared: true): Uint8Array<SharedArrayBuffer> | undefined;
export function bytesForFilling(size: number): Uint8Array;
export function bytesForFilling(size: number, shared = false): Uint8Array | undefined {
  const pages = Math.max(1, Math.ceil(size / WASM_PAGE));
  try {
    const memory = new WebAssembly.Memory(shared ? { initial: pages, maximum: pages, shared: true } : { initial: pages, maximum: pages });
    adviseHugePages(memory.buffer);
    return new Uint8Array(memory.buffer, 0, size);
  } catch {
    return shared ? undefined : new Uint8Array(size);
  }
}
