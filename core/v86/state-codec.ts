// A saved machine state as it is kept: v86's raw state compressed with zstd (level 3), which
// v86 restores as it is (it reads the zstd magic). The page and the host compress alike; the
// WebAssembly module is loaded on first use and kept.

import type { Zstd } from "@hpcc-js/wasm-zstd";

const LEVEL = 3;
/** zstd's frame magic, little-endian (RFC 8878 section 3.1.1). */
export const ZSTD_MAGIC = 0xfd2fb528;

let zstd: Promise<Zstd> | undefined;

function load(): Promise<Zstd> {
  zstd ??= import("@hpcc-js/wasm-zstd").then((module) => module.Zstd.load());
  return zstd;
}

/** v86's raw state, compressed as v86 restores it. */
export async function compressState(raw: Uint8Array): Promise<Uint8Array> {
  return (await load()).compress(raw, LEVEL);
}

/** Whether bytes start as a zstd frame (what compressState gives). */
export function isCompressedState(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0 === ZSTD_MAGIC;
}
