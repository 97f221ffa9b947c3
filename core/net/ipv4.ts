// IPv4 (RFC 791): header decode with every length checked and the header checksum verified;
// fragments are reported so the gateway can drop them (a guest with a 1500-byte MTU does not
// fragment what it sends: Linux sets DF). Outgoing frames get a complete Ethernet + IPv4 header
// here and the transport layer writes the rest.

import { readIpv4, writeIpv4, type Ipv4, type Mac } from "./addr.js";
import { checksum } from "./checksum.js";
import { allocFrame, ETHERNET_HEADER, ETHERTYPE } from "./ethernet.js";
import { getU16, setU16 } from "./wire.js";

export const IP_PROTOCOL = { icmp: 1, tcp: 6, udp: 17 } as const;

export const IPV4_HEADER = 20;

export interface Ipv4Packet {
  src: Ipv4;
  dst: Ipv4;
  protocol: number;
  ttl: number;
  id: number;
  /** More-fragments set or a non-zero offset: one piece of a larger datagram. */
  fragment: boolean;
  /** The whole packet, header included, cut to its total length (ICMP errors quote it). */
  packet: Uint8Array;
  /** The transport payload, cut to the total length (Ethernet padding removed). */
  payload: Uint8Array;
}

export function parseIpv4(bytes: Uint8Array): Ipv4Packet | undefined {
  if (bytes.length < IPV4_HEADER) return undefined;
  const versionIhl = bytes[0]!;
  if (versionIhl >> 4 !== 4) return undefined;
  const headerLength = (versionIhl & 0x0f) * 4;
  if (headerLength < IPV4_HEADER) return undefined;
  const total = getU16(bytes, 2);
  if (total < headerLength || total > bytes.length) return undefined;
  if (checksum(bytes, 0, headerLength) !== 0) return undefined;
  const flagsOffset = getU16(bytes, 6);
  return {
    src: readIpv4(bytes, 12),
    dst: readIpv4(bytes, 16),
    protocol: bytes[9]!,
    ttl: bytes[8]!,
    id: getU16(bytes, 4),
    fragment: (flagsOffset & 0x2000) !== 0 || (flagsOffset & 0x1fff) !== 0,
    packet: bytes.subarray(0, total),
    payload: bytes.subarray(headerLength, total),
  };
}

export interface Ipv4Header {
  srcMac: Mac;
  dstMac: Mac;
  src: Ipv4;
  dst: Ipv4;
  protocol: number;
  id: number;
  ttl?: number;
}

/**
 * A frame with Ethernet and IPv4 headers written (DF set, no options) and room for
 * `payloadLength` transport bytes at ETHERNET_HEADER + IPV4_HEADER.
 */
export function allocIpv4Frame(h: Ipv4Header, payloadLength: number): Uint8Array {
  const total = IPV4_HEADER + payloadLength;
  const frame = allocFrame(h.dstMac, h.srcMac, ETHERTYPE.ipv4, total);
  const at = ETHERNET_HEADER;
  frame[at] = 0x45;
  setU16(frame, at + 2, total);
  setU16(frame, at + 4, h.id & 0xffff);
  setU16(frame, at + 6, 0x4000);
  frame[at + 8] = h.ttl ?? 64;
  frame[at + 9] = h.protocol;
  writeIpv4(frame, at + 12, h.src);
  writeIpv4(frame, at + 16, h.dst);
  setU16(frame, at + 10, checksum(frame, at, at + IPV4_HEADER));
  return frame;
}

/** Where the transport header starts in a frame from allocIpv4Frame. */
export const L4_OFFSET = ETHERNET_HEADER + IPV4_HEADER;
