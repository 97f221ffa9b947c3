// Huge pages for a headless guest's memory. A resume writes a guest's saved pages into RAM the
// host has not backed yet, and each first touch of a 4 KiB page is a fault: about 14 µs each on
// a virtual machine like the one this was measured on (tiny's 8,300 saved pages: 140 ms). Asked
// for transparent huge pages (madvise MADV_HUGEPAGE), the host backs 2 MiB at a fault: 128 MiB
// took 17-38 ms to touch there, against 510-590 ms in 4 KiB pages.
//
// Node has no call for madvise, so it is reached through koffi (an FFI with prebuilt binaries
// in its npm packages). Advice only: where koffi, libc or the kernel's huge pages are missing,
// or the host's setting is "never", nothing changes but the speed.

import { createRequire } from "node:module";

/** MADV_HUGEPAGE, from Linux's include/uapi/asm-generic/mman-common.h. */
const MADV_HUGEPAGE = 14;
const PAGE = 4096;

type Madvise = (address: Uint8Array, length: number, advice: number) => number;

let madvise: Madvise | null | undefined;

function load(): Madvise | null {
  if (madvise !== undefined) return madvise;
  madvise = null;
  if (process.platform !== "linux") return madvise;
  try {
    const koffi = createRequire(import.meta.url)("koffi") as { load(path: string): { func(signature: string): Madvise } };
    madvise = koffi.load("libc.so.6").func("int madvise(void *addr, size_t len, int advice)");
  } catch {
    // No koffi for this platform, or no glibc: 4 KiB pages, as before.
  }
  return madvise;
}

/**
 * Asks the host to back `memory` (a WebAssembly memory's buffer, which starts on a page) with
 * transparent huge pages from its next fault on. Pages already touched keep their size. True if
 * the kernel took the advice; false where it cannot be given.
 */
export function adviseHugePages(memory: ArrayBuffer): boolean {
  const call = load();
  const length = memory.byteLength - (memory.byteLength % PAGE);
  if (!call || length === 0) return false;
  try {
    return call(new Uint8Array(memory, 0, length), length, MADV_HUGEPAGE) === 0;
  } catch {
    return false;
  }
}
