// Addresses: IPv4 as an unsigned 32-bit number (cheap to compare and to use as a map key),
// shown and parsed as dotted quads; MAC addresses as 6-byte arrays, shown as aa:bb:cc:dd:ee:ff.

import { getU32, setU32 } from "./wire.js";

export type Ipv4 = number;

export function ipv4(text: string): Ipv4 {
  const parsed = parseIpv4Text(text);
  if (parsed === undefined) throw new RangeError(`"${text}" is not an IPv4 address`);
  return parsed;
}

export function parseIpv4Text(text: string): Ipv4 | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

export function formatIpv4(ip: Ipv4): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

export function readIpv4(b: Uint8Array, at: number): Ipv4 {
  return getU32(b, at);
}

export function writeIpv4(b: Uint8Array, at: number, ip: Ipv4): void {
  setU32(b, at, ip);
}

/** True when `ip` is inside `net`/`prefix`. */
export function inSubnet(ip: Ipv4, net: Ipv4, prefix: number): boolean {
  if (prefix === 0) return true;
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  return ((ip & mask) >>> 0) === ((net & mask) >>> 0);
}

export function prefixMask(prefix: number): Ipv4 {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export type Mac = Uint8Array;

export const BROADCAST_MAC: Mac = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function parseMac(text: string): Mac {
  const parts = text.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new RangeError(`"${text}" is not a MAC address`);
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(mac: Mac): string {
  return [...mac.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

export function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Group bit set: broadcast or multicast. */
export function isGroupMac(mac: Uint8Array): boolean {
  return (mac[0]! & 1) === 1;
}
