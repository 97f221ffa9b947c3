// TCP segments (RFC 9293 §3.1): header and options decode with the checksum verified over the
// pseudo-header, and segment encode. Options understood: MSS, window scale (RFC 7323 §2),
// SACK-permitted and timestamps are recognised so they can be declined (never echoed). A
// malformed option list ends option parsing; the segment itself is still taken.

import { finish, pseudoSum, sum16 } from "./checksum.js";
import { allocIpv4Frame, IP_PROTOCOL, L4_OFFSET, type Ipv4Header, type Ipv4Packet } from "./ipv4.js";
import { getU16, getU32, setU16, setU32 } from "./wire.js";

export const TCP_FLAG = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20, ece: 0x40, cwr: 0x80 } as const;

export const TCP_HEADER = 20;

export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  timestamp?: boolean;
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: TcpOptions;
  payload: Uint8Array;
}

function parseOptions(b: Uint8Array, start: number, end: number): TcpOptions {
  const options: TcpOptions = {};
  let i = start;
  while (i < end) {
    const kind = b[i]!;
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= end) break;
    const length = b[i + 1]!;
    if (length < 2 || i + length > end) break;
    if (kind === 2 && length === 4) options.mss = getU16(b, i + 2);
    else if (kind === 3 && length === 3) options.windowScale = Math.min(b[i + 2]!, 14);
    else if (kind === 4 && length === 2) options.sackPermitted = true;
    else if (kind === 8 && length === 10) options.timestamp = true;
    i += length;
  }
  return options;
}

export function parseTcp(ip: Ipv4Packet): TcpSegment | undefined {
  const b = ip.payload;
  if (b.length < TCP_HEADER) return undefined;
  const headerLength = (b[12]! >> 4) * 4;
  if (headerLength < TCP_HEADER || headerLength > b.length) return undefined;
  if (finish(sum16(b, 0, b.length, pseudoSum(ip.src, ip.dst, IP_PROTOCOL.tcp, b.length))) !== 0) return undefined;
  const srcPort = getU16(b, 0);
  const dstPort = getU16(b, 2);
  if (srcPort === 0 || dstPort === 0) return undefined;
  return {
    srcPort,
    dstPort,
    seq: getU32(b, 4),
    ack: getU32(b, 8),
    flags: b[13]!,
    window: getU16(b, 14),
    options: parseOptions(b, TCP_HEADER, headerLength),
    payload: b.subarray(headerLength),
  };
}

/** What a connection sends; the ports and addresses come from its flow. */
export interface TcpSegmentOut {
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Only on SYN segments. */
  mss?: number;
  windowScale?: number;
  payload?: Uint8Array;
}

export function buildTcp(h: Omit<Ipv4Header, "protocol">, srcPort: number, dstPort: number, seg: TcpSegmentOut): Uint8Array {
  const optionLength = (seg.mss !== undefined ? 4 : 0) + (seg.windowScale !== undefined ? 4 : 0);
  const headerLength = TCP_HEADER + optionLength;
  const dataLength = seg.payload?.length ?? 0;
  const length = headerLength + dataLength;
  const frame = allocIpv4Frame({ ...h, protocol: IP_PROTOCOL.tcp }, length);
  const at = L4_OFFSET;
  setU16(frame, at, srcPort);
  setU16(frame, at + 2, dstPort);
  setU32(frame, at + 4, seg.seq >>> 0);
  setU32(frame, at + 8, seg.ack >>> 0);
  frame[at + 12] = (headerLength / 4) << 4;
  frame[at + 13] = seg.flags;
  setU16(frame, at + 14, Math.max(0, Math.min(0xffff, seg.window)));
  let o = at + TCP_HEADER;
  if (seg.mss !== undefined) {
    frame[o] = 2;
    frame[o + 1] = 4;
    setU16(frame, o + 2, seg.mss);
    o += 4;
  }
  if (seg.windowScale !== undefined) {
    frame[o] = 1;
    frame[o + 1] = 3;
    frame[o + 2] = 3;
    frame[o + 3] = seg.windowScale;
    o += 4;
  }
  if (seg.payload) frame.set(seg.payload, o);
  setU16(frame, at + 16, finish(sum16(frame, at, at + length, pseudoSum(h.src, h.dst, IP_PROTOCOL.tcp, length))));
  return frame;
}

/** Sequence-number comparisons modulo 2^32 (RFC 9293 §3.4). */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}
export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}
/** b - a, as a signed distance. */
export function seqDiff(b: number, a: number): number {
  return (b - a) | 0;
}
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
