// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of
// 16-bit words. IPv4 headers, ICMP, and UDP/TCP with the pseudo-header (RFC 768, RFC 793
// §3.1) all use it. Sums are kept unfolded in a plain number and folded once at the end.

import type { Ipv4 } from "./addr.js";

/** Adds bytes [start, end) as big-endian 16-bit words to `acc`; an odd last byte is padded. */
export function sum16(b: Uint8Array, start: number, end: number, acc = 0): number {
  let i = start;
  const even = end - ((end - start) & 1);
  for (; i < even; i += 2) acc += (b[i]! << 8) | b[i + 1]!;
  if (i < end) acc += b[i]! << 8;
  return acc;
}

/** Folds carries back in and complements: the value to store in a checksum field. */
export function finish(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return ~acc & 0xffff;
}

/** The IPv4 pseudo-header's contribution for UDP (17) and TCP (6). */
export function pseudoSum(src: Ipv4, dst: Ipv4, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

export function checksum(b: Uint8Array, start = 0, end = b.length): number {
  return finish(sum16(b, start, end));
}
