// Ethernet II frames (IEEE 802.3 with an EtherType): what v86's NIC sends and receives, without
// preamble or FCS. Frames shorter than the 60-byte minimum are padded on the way out; upper
// layers read their own length fields, so padding on the way in is harmless.

import type { Mac } from "./addr.js";
import { getU16, setU16 } from "./wire.js";

export const ETHERTYPE = { ipv4: 0x0800, arp: 0x0806, vlan: 0x8100, ipv6: 0x86dd } as const;

export const ETHERNET_HEADER = 14;
/** The smallest frame on the wire without its 4-byte FCS. */
export const MIN_FRAME = 60;
/** The largest frame this network carries: a 1500-byte MTU plus the header. */
export const MAX_FRAME = 1514;

export interface EthernetFrame {
  dst: Mac;
  src: Mac;
  type: number;
  payload: Uint8Array;
}

export function parseEthernet(frame: Uint8Array): EthernetFrame | undefined {
  if (frame.length < ETHERNET_HEADER) return undefined;
  return {
    dst: frame.subarray(0, 6),
    src: frame.subarray(6, 12),
    type: getU16(frame, 12),
    payload: frame.subarray(ETHERNET_HEADER),
  };
}

/** A zeroed frame of at least MIN_FRAME bytes with its header written. */
export function allocFrame(dst: Mac, src: Mac, type: number, payloadLength: number): Uint8Array {
  const frame = new Uint8Array(Math.max(MIN_FRAME, ETHERNET_HEADER + payloadLength));
  frame.set(dst.subarray(0, 6), 0);
  frame.set(src.subarray(0, 6), 6);
  setU16(frame, 12, type);
  return frame;
}
