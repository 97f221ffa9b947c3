// UDP (RFC 768): the length field is checked against the IP payload, a non-zero checksum is
// verified over the pseudo-header, and a computed checksum of zero is sent as 0xffff.

import { finish, pseudoSum, sum16 } from "./checksum.js";
import { allocIpv4Frame, IP_PROTOCOL, L4_OFFSET, type Ipv4Header, type Ipv4Packet } from "./ipv4.js";
import { getU16, setU16 } from "./wire.js";

export const UDP_HEADER = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export function parseUdp(ip: Ipv4Packet): UdpDatagram | undefined {
  const b = ip.payload;
  if (b.length < UDP_HEADER) return undefined;
  const length = getU16(b, 4);
  if (length < UDP_HEADER || length > b.length) return undefined;
  if (getU16(b, 6) !== 0) {
    const acc = sum16(b, 0, length, pseudoSum(ip.src, ip.dst, IP_PROTOCOL.udp, length));
    if (finish(acc) !== 0) return undefined;
  }
  const srcPort = getU16(b, 0);
  const dstPort = getU16(b, 2);
  if (srcPort === 0 || dstPort === 0) return undefined;
  return { srcPort, dstPort, payload: b.subarray(UDP_HEADER, length) };
}

export function buildUdp(h: Omit<Ipv4Header, "protocol">, srcPort: number, dstPort: number, data: Uint8Array): Uint8Array {
  const length = UDP_HEADER + data.length;
  const frame = allocIpv4Frame({ ...h, protocol: IP_PROTOCOL.udp }, length);
  const at = L4_OFFSET;
  setU16(frame, at, srcPort);
  setU16(frame, at + 2, dstPort);
  setU16(frame, at + 4, length);
  frame.set(data, at + UDP_HEADER);
  const sum = finish(sum16(frame, at, at + length, pseudoSum(h.src, h.dst, IP_PROTOCOL.udp, length)));
  setU16(frame, at + 6, sum === 0 ? 0xffff : sum);
  return frame;
}
