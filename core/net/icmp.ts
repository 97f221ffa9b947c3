// ICMP for IPv4 (RFC 792): echo replies from the gateway, and destination-unreachable errors
// that refuse a datagram fast. An error quotes the offending IP header and the start of its
// payload, which the guest's stack uses to find the socket it belongs to.

import { checksum } from "./checksum.js";
import { allocIpv4Frame, IP_PROTOCOL, L4_OFFSET, type Ipv4Header, type Ipv4Packet } from "./ipv4.js";
import { getU16, setU16 } from "./wire.js";

export const ICMP_TYPE = { echoReply: 0, unreachable: 3, echoRequest: 8 } as const;

/** Destination-unreachable codes (RFC 792, RFC 1812 §5.2.7.1). */
export const UNREACHABLE = { net: 0, host: 1, protocol: 2, port: 3, prohibited: 13 } as const;

export interface IcmpMessage {
  type: number;
  code: number;
  /** Bytes 4..8: identifier and sequence for echo. */
  id: number;
  sequence: number;
  data: Uint8Array;
}

export function parseIcmp(payload: Uint8Array): IcmpMessage | undefined {
  if (payload.length < 8) return undefined;
  if (checksum(payload) !== 0) return undefined;
  return {
    type: payload[0]!,
    code: payload[1]!,
    id: getU16(payload, 4),
    sequence: getU16(payload, 6),
    data: payload.subarray(8),
  };
}

function icmpFrame(h: Omit<Ipv4Header, "protocol">, type: number, code: number, word: [number, number], data: Uint8Array): Uint8Array {
  const frame = allocIpv4Frame({ ...h, protocol: IP_PROTOCOL.icmp }, 8 + data.length);
  const at = L4_OFFSET;
  frame[at] = type;
  frame[at + 1] = code;
  setU16(frame, at + 4, word[0]);
  setU16(frame, at + 6, word[1]);
  frame.set(data, at + 8);
  setU16(frame, at + 2, checksum(frame, at, at + 8 + data.length));
  return frame;
}

export function buildEchoReply(h: Omit<Ipv4Header, "protocol">, request: IcmpMessage): Uint8Array {
  return icmpFrame(h, ICMP_TYPE.echoReply, 0, [request.id, request.sequence], request.data);
}

/** Quotes at most this much of the offending packet, keeping the error within 576 bytes. */
const MAX_QUOTE = 576 - 20 - 8;

export function buildUnreachable(h: Omit<Ipv4Header, "protocol">, code: number, offending: Ipv4Packet): Uint8Array {
  const quote = offending.packet.subarray(0, Math.min(offending.packet.length, MAX_QUOTE));
  return icmpFrame(h, ICMP_TYPE.unreachable, code, [0, 0], quote);
}
