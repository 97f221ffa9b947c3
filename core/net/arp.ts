// ARP for IPv4 over Ethernet (RFC 826): the gateway answers who-has for its own addresses so
// the guest can reach it; nothing else is learned from ARP (the guest's MAC comes from the
// Ethernet source of its frames).

import { readIpv4, writeIpv4, type Ipv4, type Mac } from "./addr.js";
import { allocFrame, ETHERNET_HEADER, ETHERTYPE } from "./ethernet.js";
import { getU16, setU16 } from "./wire.js";

export const ARP_OP = { request: 1, reply: 2 } as const;

export interface ArpPacket {
  op: number;
  senderMac: Mac;
  senderIp: Ipv4;
  targetMac: Mac;
  targetIp: Ipv4;
}

const ARP_LENGTH = 28;

export function parseArp(payload: Uint8Array): ArpPacket | undefined {
  if (payload.length < ARP_LENGTH) return undefined;
  // Hardware type 1 (Ethernet), protocol IPv4, address lengths 6 and 4.
  if (getU16(payload, 0) !== 1 || getU16(payload, 2) !== ETHERTYPE.ipv4 || payload[4] !== 6 || payload[5] !== 4) return undefined;
  const op = getU16(payload, 6);
  if (op !== ARP_OP.request && op !== ARP_OP.reply) return undefined;
  return {
    op,
    senderMac: payload.subarray(8, 14),
    senderIp: readIpv4(payload, 14),
    targetMac: payload.subarray(18, 24),
    targetIp: readIpv4(payload, 24),
  };
}

/** A whole Ethernet frame carrying one ARP packet, sent to `ethDst`. */
export function buildArp(ethDst: Mac, packet: ArpPacket): Uint8Array {
  const frame = allocFrame(ethDst, packet.senderMac, ETHERTYPE.arp, ARP_LENGTH);
  const at = ETHERNET_HEADER;
  setU16(frame, at, 1);
  setU16(frame, at + 2, ETHERTYPE.ipv4);
  frame[at + 4] = 6;
  frame[at + 5] = 4;
  setU16(frame, at + 6, packet.op);
  frame.set(packet.senderMac.subarray(0, 6), at + 8);
  writeIpv4(frame, at + 14, packet.senderIp);
  frame.set(packet.targetMac.subarray(0, 6), at + 18);
  writeIpv4(frame, at + 24, packet.targetIp);
  return frame;
}
