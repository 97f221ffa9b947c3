// DHCP (RFC 2131, options RFC 2132): BOOTP message decode and encode, and the one-lease server
// the gateway runs: every guest gets the same address, the gateway as router and DNS server.
// Replies go where RFC 2131 §4.1 says: to ciaddr if the client has one, broadcast if it asked
// (or on NAK), else to the offered address at the client's MAC.

import { readIpv4, type Ipv4 } from "./addr.js";
import { ByteReader, ByteWriter, Malformed } from "./wire.js";

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

export const DHCP_TYPE = { discover: 1, offer: 2, request: 3, decline: 4, ack: 5, nak: 6, release: 7, inform: 8 } as const;

export const DHCP_OPTION = {
  pad: 0,
  subnetMask: 1,
  router: 3,
  dns: 6,
  hostName: 12,
  domainName: 15,
  mtu: 26,
  broadcast: 28,
  requestedIp: 50,
  leaseTime: 51,
  messageType: 53,
  serverId: 54,
  parameterList: 55,
  message: 56,
  renewal: 58,
  rebinding: 59,
  end: 255,
} as const;

const MAGIC = 0x63825363;
const FIXED = 236;
/** RFC 1542 §2.1: a BOOTP message is at least 300 bytes; some clients insist. */
const MIN_MESSAGE = 300;
const BROADCAST_FLAG = 0x8000;

export interface DhcpMessage {
  op: number;
  xid: number;
  flags: number;
  ciaddr: Ipv4;
  yiaddr: Ipv4;
  giaddr: Ipv4;
  chaddr: Uint8Array;
  type: number | undefined;
  options: Map<number, Uint8Array>;
}

export function parseDhcp(payload: Uint8Array): DhcpMessage | undefined {
  try {
    const r = new ByteReader(payload);
    const op = r.u8();
    const htype = r.u8();
    const hlen = r.u8();
    if (htype !== 1 || hlen !== 6) return undefined;
    r.skip(1);
    const xid = r.u32();
    r.skip(2);
    const flags = r.u16();
    const ciaddr = r.u32();
    const yiaddr = r.u32();
    r.skip(4);
    const giaddr = r.u32();
    const chaddr = r.bytes(16).subarray(0, 6);
    r.seek(FIXED);
    if (r.u32() !== MAGIC) return undefined;
    const options = new Map<number, Uint8Array>();
    while (r.remaining > 0) {
      const code = r.u8();
      if (code === DHCP_OPTION.pad) continue;
      if (code === DHCP_OPTION.end) break;
      const value = r.bytes(r.u8());
      // RFC 3396: a repeated option is one option split in parts; join them.
      const before = options.get(code);
      if (before) {
        const joined = new Uint8Array(before.length + value.length);
        joined.set(before);
        joined.set(value, before.length);
        options.set(code, joined);
      } else {
        options.set(code, value);
      }
    }
    const typeOption = options.get(DHCP_OPTION.messageType);
    const type = typeOption?.length === 1 ? typeOption[0] : undefined;
    return { op, xid, flags, ciaddr, yiaddr, giaddr, chaddr, type, options };
  } catch (error) {
    if (error instanceof Malformed) return undefined;
    throw error;
  }
}

export interface DhcpReplyFields {
  op: number;
  xid: number;
  flags: number;
  ciaddr: Ipv4;
  yiaddr: Ipv4;
  siaddr: Ipv4;
  giaddr: Ipv4;
  chaddr: Uint8Array;
  /** In order; the message type first by convention. */
  options: [number, Uint8Array][];
}

export function encodeDhcp(m: DhcpReplyFields): Uint8Array {
  const w = new ByteWriter(MIN_MESSAGE + 64);
  w.u8(m.op).u8(1).u8(6).u8(0).u32(m.xid).u16(0).u16(m.flags);
  w.u32(m.ciaddr).u32(m.yiaddr).u32(m.siaddr).u32(m.giaddr);
  const chaddr = new Uint8Array(16);
  chaddr.set(m.chaddr.subarray(0, 6));
  w.bytes(chaddr).bytes(new Uint8Array(64 + 128)).u32(MAGIC);
  for (const [code, value] of m.options) {
    // Longer than 255: split into consecutive parts (RFC 3396).
    let at = 0;
    do {
      const part = value.subarray(at, at + 255);
      w.u8(code).u8(part.length).bytes(part);
      at += 255;
    } while (at < value.length);
  }
  w.u8(DHCP_OPTION.end);
  while (w.length < MIN_MESSAGE) w.u8(0);
  return w.finish();
}

export interface DhcpServerConfig {
  serverIp: Ipv4;
  guestIp: Ipv4;
  netmask: Ipv4;
  router: Ipv4;
  dns: Ipv4[];
  leaseSeconds: number;
  mtu: number;
  domainName?: string;
}

export interface DhcpReply {
  payload: Uint8Array;
  type: number;
  /** Send to the broadcast MAC and 255.255.255.255. */
  broadcast: boolean;
  /** Otherwise the unicast destination address (at the client's MAC). */
  to: Ipv4;
}

function u32Bytes(...values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  values.forEach((v, i) => {
    b[i * 4] = v >>> 24;
    b[i * 4 + 1] = (v >>> 16) & 0xff;
    b[i * 4 + 2] = (v >>> 8) & 0xff;
    b[i * 4 + 3] = v & 0xff;
  });
  return b;
}

/** The server's answer to one client message, or undefined when it needs none. */
export function dhcpReply(request: DhcpMessage, config: DhcpServerConfig): DhcpReply | undefined {
  if (request.op !== 1 || request.type === undefined) return undefined;
  const serverId = request.options.get(DHCP_OPTION.serverId);
  // A REQUEST naming another server's offer is not ours to answer.
  if (serverId && (serverId.length !== 4 || readIpv4(serverId, 0) !== config.serverIp)) return undefined;
  const requestedOption = request.options.get(DHCP_OPTION.requestedIp);
  const requested = requestedOption?.length === 4 ? readIpv4(requestedOption, 0) : request.ciaddr;

  let type: number;
  switch (request.type) {
    case DHCP_TYPE.discover:
      type = DHCP_TYPE.offer;
      break;
    case DHCP_TYPE.request:
      type = requested === config.guestIp ? DHCP_TYPE.ack : DHCP_TYPE.nak;
      break;
    case DHCP_TYPE.inform:
      type = DHCP_TYPE.ack;
      break;
    default:
      return undefined;
  }
  const inform = request.type === DHCP_TYPE.inform;
  const options: [number, Uint8Array][] = [
    [DHCP_OPTION.messageType, new Uint8Array([type])],
    [DHCP_OPTION.serverId, u32Bytes(config.serverIp)],
  ];
  if (type !== DHCP_TYPE.nak) {
    if (!inform) {
      options.push([DHCP_OPTION.leaseTime, u32Bytes(config.leaseSeconds)]);
      options.push([DHCP_OPTION.renewal, u32Bytes(Math.floor(config.leaseSeconds / 2))]);
      options.push([DHCP_OPTION.rebinding, u32Bytes(Math.floor((config.leaseSeconds * 7) / 8))]);
    }
    options.push([DHCP_OPTION.subnetMask, u32Bytes(config.netmask)]);
    options.push([DHCP_OPTION.router, u32Bytes(config.router)]);
    if (config.dns.length > 0) options.push([DHCP_OPTION.dns, u32Bytes(...config.dns)]);
    options.push([DHCP_OPTION.broadcast, u32Bytes((config.guestIp | ~config.netmask) >>> 0)]);
    const asked = request.options.get(DHCP_OPTION.parameterList);
    if (asked?.includes(DHCP_OPTION.mtu)) options.push([DHCP_OPTION.mtu, new Uint8Array([config.mtu >> 8, config.mtu & 0xff])]);
    if (config.domainName && asked?.includes(DHCP_OPTION.domainName)) {
      options.push([DHCP_OPTION.domainName, new TextEncoder().encode(config.domainName)]);
    }
  } else {
    options.push([DHCP_OPTION.message, new TextEncoder().encode("requested address is not this network's lease")]);
  }
  const payload = encodeDhcp({
    op: 2,
    xid: request.xid,
    flags: request.flags,
    ciaddr: type === DHCP_TYPE.ack ? request.ciaddr : 0,
    yiaddr: type === DHCP_TYPE.nak || inform ? 0 : config.guestIp,
    siaddr: 0,
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    options,
  });
  const broadcast = type === DHCP_TYPE.nak || (request.ciaddr === 0 && (request.flags & BROADCAST_FLAG) !== 0);
  const to = request.ciaddr !== 0 ? request.ciaddr : config.guestIp;
  return { payload, type, broadcast, to };
}
