// A guest on the other end of the net pipe, for tests: it sends what a Linux guest sends
// (udhcpc's DISCOVER/REQUEST, ARP for the gateway, ping, DNS queries, SYNs with Linux's
// option layout: MSS, SACK-permitted, timestamps, window scale 7) and runs a small TCP of its
// own: in-order receive, an ACK for every segment, a receive buffer that can be paused to
// close its window, and sending within the gateway's advertised window.

import { formatIpv4, readIpv4, type Ipv4, type Mac } from "../../../core/net/addr.js";
import { ARP_OP, buildArp, parseArp } from "../../../core/net/arp.js";
import { finish, pseudoSum, sum16 } from "../../../core/net/checksum.js";
import { DHCP_OPTION, DHCP_TYPE, encodeDhcp, parseDhcp, type DhcpMessage } from "../../../core/net/dhcp.js";
import { ETHERTYPE, parseEthernet } from "../../../core/net/ethernet.js";
import { ICMP_TYPE, parseIcmp, type IcmpMessage } from "../../../core/net/icmp.js";
import { allocIpv4Frame, IP_PROTOCOL, L4_OFFSET, parseIpv4, type Ipv4Packet } from "../../../core/net/ipv4.js";
import { parseTcp, seqAdd, seqDiff, seqGt, TCP_FLAG, type TcpSegment } from "../../../core/net/tcp.js";
import { buildUdp, parseUdp } from "../../../core/net/udp.js";
import { checksum } from "../../../core/net/checksum.js";
import { ByteReader, setU16, setU32 } from "../../../core/net/wire.js";

export const GUEST_MAC: Mac = new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const BROADCAST: Mac = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export interface Lease {
  ip: Ipv4;
  router: Ipv4;
  dns: Ipv4[];
  mask: Ipv4;
  leaseSeconds: number;
  serverId: Ipv4;
  offer: DhcpMessage;
  ack: DhcpMessage;
}

export interface DnsReply {
  id: number;
  rcode: number;
  truncated: boolean;
  answers: { type: number; ttl: number; data: Uint8Array }[];
}

type Waiter<T> = { match: (value: T) => boolean; resolve: (value: T) => void };

function waitFor<T>(list: Waiter<T>[], match: (value: T) => boolean, what: string, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      list.splice(list.indexOf(waiter), 1);
      reject(new Error(`guest: timed out waiting for ${what}`));
    }, ms);
    const waiter: Waiter<T> = {
      match,
      resolve: (value) => {
        clearTimeout(timer);
        resolve(value);
      },
    };
    list.push(waiter);
  });
}

function offer<T>(list: Waiter<T>[], value: T): boolean {
  const i = list.findIndex((w) => w.match(value));
  if (i < 0) return false;
  const [waiter] = list.splice(i, 1);
  waiter!.resolve(value);
  return true;
}

/** Linux's SYN options: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7. */
function linuxSynOptions(tsval: number): Uint8Array {
  const o = new Uint8Array(20);
  o.set([2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
  setU32(o, 8, tsval);
  setU32(o, 12, 0);
  o.set([1, 3, 3, 7], 16);
  return o;
}

export class GuestPeer {
  readonly mac: Mac;
  ip: Ipv4 = 0;
  gatewayIp: Ipv4 = 0;
  gatewayMac: Mac | undefined;
  readonly #send: (frame: Uint8Array) => void;
  readonly #dhcp: Waiter<DhcpMessage>[] = [];
  readonly #arp: Waiter<{ ip: Ipv4; mac: Mac }>[] = [];
  readonly #icmp: Waiter<{ ip: Ipv4Packet; icmp: IcmpMessage }>[] = [];
  readonly #udp: Waiter<{ ip: Ipv4Packet; srcPort: number; dstPort: number; payload: Uint8Array }>[] = [];
  readonly #tcp = new Map<string, GuestTcp>();
  readonly #listeners = new Map<number, (conn: GuestTcp) => void>();
  #nextPort = 40000;
  /** Every TCP segment the gateway sent, for tests that look at headers. */
  readonly tcpLog: TcpSegment[] = [];
  logTcp = false;

  constructor(send: (frame: Uint8Array) => void, mac: Mac = GUEST_MAC) {
    this.#send = send;
    this.mac = mac;
  }

  send(frame: Uint8Array): void {
    this.#send(frame);
  }

  // ---- receive --------------------------------------------------------------------------

  receive(frame: Uint8Array): void {
    const eth = parseEthernet(frame);
    if (!eth) throw new Error("guest: the gateway sent a frame shorter than an Ethernet header");
    if (eth.type === ETHERTYPE.arp) {
      const arp = parseArp(eth.payload);
      if (arp?.op === ARP_OP.reply) offer(this.#arp, { ip: arp.senderIp, mac: arp.senderMac.slice() });
      return;
    }
    if (eth.type !== ETHERTYPE.ipv4) return;
    const ip = parseIpv4(eth.payload);
    if (!ip) throw new Error("guest: the gateway sent a bad IPv4 packet");
    if (ip.protocol === IP_PROTOCOL.udp) {
      const udp = parseUdp(ip);
      if (!udp) throw new Error("guest: the gateway sent a bad UDP datagram");
      if (udp.dstPort === 68) {
        const m = parseDhcp(udp.payload);
        if (m) offer(this.#dhcp, m);
        return;
      }
      offer(this.#udp, { ip, ...udp, payload: udp.payload.slice() });
    } else if (ip.protocol === IP_PROTOCOL.icmp) {
      const icmp = parseIcmp(ip.payload);
      if (!icmp) throw new Error("guest: the gateway sent a bad ICMP message");
      if (icmp.type === ICMP_TYPE.unreachable) {
        // The quoted packet names the connection it refuses.
        const quoted = icmp.data;
        const ihl = (quoted[0]! & 0x0f) * 4;
        if (quoted[9] === IP_PROTOCOL.tcp && quoted.length >= ihl + 4) {
          const srcPort = (quoted[ihl]! << 8) | quoted[ihl + 1]!;
          const dstPort = (quoted[ihl + 2]! << 8) | quoted[ihl + 3]!;
          this.#tcp.get(`${srcPort}>${readIpv4(quoted, 16)}:${dstPort}`)?.unreachable(icmp.code);
        }
      }
      offer(this.#icmp, { ip, icmp });
    } else if (ip.protocol === IP_PROTOCOL.tcp) {
      const seg = parseTcp(ip);
      if (!seg) throw new Error("guest: the gateway sent a bad TCP segment");
      if (this.logTcp) this.tcpLog.push(seg);
      const key = `${seg.dstPort}>${ip.src}:${seg.srcPort}`;
      let conn = this.#tcp.get(key);
      if (!conn && (seg.flags & (TCP_FLAG.syn | TCP_FLAG.ack)) === TCP_FLAG.syn) {
        const accept = this.#listeners.get(seg.dstPort);
        if (!accept) {
          this.#rawTcp(ip.src, seg.dstPort, seg.srcPort, 0, seqAdd(seg.seq, 1), TCP_FLAG.rst | TCP_FLAG.ack, 0);
          return;
        }
        conn = new GuestTcp(this, seg.dstPort, ip.src, seg.srcPort);
        this.#tcp.set(key, conn);
        conn.acceptSyn(seg);
        accept(conn);
        return;
      }
      conn?.receive(seg);
    }
  }

  // ---- DHCP, ARP, ICMP, UDP, DNS ----------------------------------------------------------

  #dhcpFrame(type: number, xid: number, extra: [number, Uint8Array][]): Uint8Array {
    const payload = encodeDhcp({
      op: 1,
      xid,
      flags: 0,
      ciaddr: 0,
      yiaddr: 0,
      siaddr: 0,
      giaddr: 0,
      chaddr: this.mac,
      options: [
        [DHCP_OPTION.messageType, new Uint8Array([type])],
        [61, new Uint8Array([1, ...this.mac])],
        [57, new Uint8Array([0x02, 0x40])],
        ...extra,
        [DHCP_OPTION.parameterList, new Uint8Array([1, 3, 6, 12, 15, 28, 42, 26])],
      ],
    });
    return buildUdp({ srcMac: this.mac, dstMac: BROADCAST, src: 0, dst: 0xffffffff, id: 1 }, 68, 67, payload);
  }

  /** DISCOVER, OFFER, REQUEST, ACK, the way udhcpc does it. */
  async dhcp(): Promise<Lease> {
    const xid = 0x3903f326;
    const offerWait = waitFor(this.#dhcp, (m) => m.xid === xid, "DHCPOFFER");
    this.send(this.#dhcpFrame(DHCP_TYPE.discover, xid, []));
    const offered = await offerWait;
    if (offered.type !== DHCP_TYPE.offer) throw new Error(`guest: expected OFFER, got type ${offered.type}`);
    const serverId = offered.options.get(DHCP_OPTION.serverId)!;
    const ackWait = waitFor(this.#dhcp, (m) => m.xid === xid, "DHCPACK");
    const requested = new Uint8Array(4);
    setU32(requested, 0, offered.yiaddr);
    this.send(this.#dhcpFrame(DHCP_TYPE.request, xid, [[DHCP_OPTION.requestedIp, requested], [DHCP_OPTION.serverId, serverId]]));
    const ack = await ackWait;
    if (ack.type !== DHCP_TYPE.ack) throw new Error(`guest: expected ACK, got type ${ack.type}`);
    const u32s = (code: number): Ipv4[] => {
      const v = ack.options.get(code) ?? new Uint8Array();
      return Array.from({ length: v.length / 4 }, (_, i) => readIpv4(v, i * 4));
    };
    this.ip = ack.yiaddr;
    this.gatewayIp = u32s(DHCP_OPTION.router)[0]!;
    return {
      ip: ack.yiaddr,
      router: this.gatewayIp,
      dns: u32s(DHCP_OPTION.dns),
      mask: u32s(DHCP_OPTION.subnetMask)[0]!,
      leaseSeconds: u32s(DHCP_OPTION.leaseTime)[0]!,
      serverId: readIpv4(serverId, 0),
      offer: offered,
      ack,
    };
  }

  async arp(target: Ipv4): Promise<Mac> {
    const wait = waitFor(this.#arp, (r) => r.ip === target, `ARP reply for ${formatIpv4(target)}`);
    this.send(buildArp(BROADCAST, { op: ARP_OP.request, senderMac: this.mac, senderIp: this.ip, targetMac: new Uint8Array(6), targetIp: target }));
    const reply = await wait;
    if (target === this.gatewayIp) this.gatewayMac = reply.mac;
    return reply.mac;
  }

  #ipHeader(dst: Ipv4): { srcMac: Mac; dstMac: Mac; src: Ipv4; dst: Ipv4; id: number } {
    if (!this.gatewayMac) throw new Error("guest: ARP for the gateway first");
    return { srcMac: this.mac, dstMac: this.gatewayMac, src: this.ip, dst, id: Math.floor(Math.random() * 65536) };
  }

  async ping(dst: Ipv4, sequence = 1, data = new Uint8Array(56).map((_, i) => i)): Promise<{ ip: Ipv4Packet; icmp: IcmpMessage }> {
    const id = 0x1234;
    const wait = waitFor(this.#icmp, (r) => r.icmp.type === ICMP_TYPE.echoReply && r.icmp.id === id && r.icmp.sequence === sequence, `echo reply ${sequence}`);
    const frame = allocIpv4Frame({ ...this.#ipHeader(dst), protocol: IP_PROTOCOL.icmp }, 8 + data.length);
    const at = L4_OFFSET;
    frame[at] = ICMP_TYPE.echoRequest;
    setU16(frame, at + 4, id);
    setU16(frame, at + 6, sequence);
    frame.set(data, at + 8);
    setU16(frame, at + 2, checksum(frame, at, at + 8 + data.length));
    this.send(frame);
    return wait;
  }

  /** Waits for the next ICMP message that matches (destination unreachable, say). */
  nextIcmp(match: (icmp: IcmpMessage) => boolean, ms?: number): Promise<{ ip: Ipv4Packet; icmp: IcmpMessage }> {
    return waitFor(this.#icmp, (r) => match(r.icmp), "an ICMP message", ms);
  }

  sendUdp(dst: Ipv4, dstPort: number, srcPort: number, data: Uint8Array): void {
    this.send(buildUdp(this.#ipHeader(dst), srcPort, dstPort, data));
  }

  nextUdp(localPort: number, ms?: number): Promise<{ ip: Ipv4Packet; srcPort: number; payload: Uint8Array }> {
    return waitFor(this.#udp, (d) => d.dstPort === localPort, `a datagram to port ${localPort}`, ms);
  }

  async dns(server: Ipv4, name: string, type = 1, localPort = 5353 + Math.floor(Math.random() * 1000)): Promise<DnsReply> {
    const id = Math.floor(Math.random() * 65536);
    const labels = name.split(".").filter(Boolean);
    const q = new Uint8Array(12 + labels.reduce((n, l) => n + l.length + 1, 0) + 1 + 4);
    setU16(q, 0, id);
    setU16(q, 2, 0x0100);
    setU16(q, 4, 1);
    let at = 12;
    for (const l of labels) {
      q[at++] = l.length;
      for (const c of l) q[at++] = c.charCodeAt(0);
    }
    q[at++] = 0;
    setU16(q, at, type);
    setU16(q, at + 2, 1);
    const wait = this.nextUdp(localPort);
    this.sendUdp(server, 53, localPort, q);
    const { payload } = await wait;
    return parseDnsReply(payload);
  }

  // ---- TCP ------------------------------------------------------------------------------

  /** Opens a connection; resolves once established, rejects on RST or ICMP unreachable. */
  connect(dst: Ipv4, dstPort: number): Promise<GuestTcp> {
    const port = this.#nextPort++;
    const conn = new GuestTcp(this, port, dst, dstPort);
    this.#tcp.set(`${port}>${dst}:${dstPort}`, conn);
    return conn.connect();
  }

  listen(port: number, accept: (conn: GuestTcp) => void): void {
    this.#listeners.set(port, accept);
  }

  /** Any TCP segment, with Linux-style options when `options` is given. */
  rawTcp(dst: Ipv4, srcPort: number, dstPort: number, seq: number, ack: number, flags: number, window: number, payload?: Uint8Array, options?: Uint8Array): void {
    this.#rawTcp(dst, srcPort, dstPort, seq, ack, flags, window, payload, options);
  }

  #rawTcp(dst: Ipv4, srcPort: number, dstPort: number, seq: number, ack: number, flags: number, window: number, payload?: Uint8Array, options?: Uint8Array): void {
    const optionLength = options?.length ?? 0;
    const headerLength = 20 + optionLength;
    const length = headerLength + (payload?.length ?? 0);
    const frame = allocIpv4Frame({ ...this.#ipHeader(dst), protocol: IP_PROTOCOL.tcp }, length);
    const at = L4_OFFSET;
    setU16(frame, at, srcPort);
    setU16(frame, at + 2, dstPort);
    setU32(frame, at + 4, seq >>> 0);
    setU32(frame, at + 8, ack >>> 0);
    frame[at + 12] = (headerLength / 4) << 4;
    frame[at + 13] = flags;
    setU16(frame, at + 14, window);
    if (options) frame.set(options, at + 20);
    if (payload) frame.set(payload, at + headerLength);
    setU16(frame, at + 16, finish(sum16(frame, at, at + length, pseudoSum(this.ip, dst, IP_PROTOCOL.tcp, length))));
    this.send(frame);
  }

  forget(conn: GuestTcp): void {
    this.#tcp.delete(`${conn.localPort}>${conn.remoteIp}:${conn.remotePort}`);
  }

  get synOptions(): (tsval: number) => Uint8Array {
    return linuxSynOptions;
  }
}

export function parseDnsReply(payload: Uint8Array): DnsReply {
  const r = new ByteReader(payload);
  const id = r.u16();
  const flags = r.u16();
  const qd = r.u16();
  const an = r.u16();
  r.skip(4);
  const skipName = (): void => {
    for (;;) {
      const n = r.u8();
      if (n === 0) return;
      if ((n & 0xc0) === 0xc0) {
        r.skip(1);
        return;
      }
      r.skip(n);
    }
  };
  for (let i = 0; i < qd; i++) {
    skipName();
    r.skip(4);
  }
  const answers: DnsReply["answers"] = [];
  for (let i = 0; i < an; i++) {
    skipName();
    const type = r.u16();
    r.skip(2);
    const ttl = r.u32();
    answers.push({ type, ttl, data: r.bytes(r.u16()).slice() });
  }
  return { id, rcode: flags & 0x0f, truncated: (flags & 0x0200) !== 0, answers };
}

/** The guest's end of one TCP connection. */
export class GuestTcp {
  readonly localPort: number;
  readonly remoteIp: Ipv4;
  readonly remotePort: number;
  readonly #peer: GuestPeer;
  state: "closed" | "syn-sent" | "established" | "fin-sent" | "done" = "closed";
  #iss = 0x01000000 + Math.floor(Math.random() * 0x1000000);
  #sndUna = 0;
  #sndNxt = 0;
  #sndWnd = 0;
  #sndShift = 0;
  #mss = 536;
  #rcvNxt = 0;
  readonly rcvShift = 7;
  /** The receive buffer: unread bytes close the window. */
  rcvCapacity = 1 << 20;
  #unread = 0;
  #paused = false;
  #out: Uint8Array[] = [];
  #outOffset = 0;
  #outBytes = 0;
  #finWanted = false;
  #finSeq: number | undefined;
  peerFin = false;
  resetReason: string | undefined;
  readonly chunks: Uint8Array[] = [];
  receivedBytes = 0;
  keepData = true;
  onData: ((bytes: Uint8Array) => void) | undefined;
  /** Segments the gateway sent that carried the peer's window field of zero. */
  zeroWindowsSeen = 0;
  #connectWait: { resolve: (c: GuestTcp) => void; reject: (e: Error) => void } | undefined;
  #closeWaits: (() => void)[] = [];
  #endWaits: (() => void)[] = [];

  constructor(peer: GuestPeer, localPort: number, remoteIp: Ipv4, remotePort: number) {
    this.#peer = peer;
    this.localPort = localPort;
    this.remoteIp = remoteIp;
    this.remotePort = remotePort;
  }

  get received(): Uint8Array {
    const all = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    return all;
  }

  #window(): number {
    return Math.max(0, this.rcvCapacity - this.#unread) >> this.rcvShift;
  }

  #segment(flags: number, payload?: Uint8Array, seq = this.#sndNxt): void {
    this.#peer.rawTcp(this.remoteIp, this.localPort, this.remotePort, seq, this.#rcvNxt, flags, this.#window(), payload);
  }

  connect(): Promise<GuestTcp> {
    this.state = "syn-sent";
    this.#sndUna = this.#iss;
    this.#sndNxt = seqAdd(this.#iss, 1);
    const promise = new Promise<GuestTcp>((resolve, reject) => (this.#connectWait = { resolve, reject }));
    this.#peer.rawTcp(this.remoteIp, this.localPort, this.remotePort, this.#iss, 0, TCP_FLAG.syn, 64240, undefined, linuxSynOptions(12345));
    return promise;
  }

  unreachable(code: number): void {
    if (this.state !== "syn-sent") return;
    this.#connectWait?.reject(Object.assign(new Error(`unreachable (ICMP code ${code})`), { code }));
    this.#connectWait = undefined;
    this.#finishClose();
  }

  acceptSyn(syn: TcpSegment): void {
    this.#rcvNxt = seqAdd(syn.seq, 1);
    this.#mss = syn.options.mss ?? 536;
    this.#sndShift = syn.options.windowScale ?? 0;
    this.#sndWnd = syn.window;
    this.#sndUna = this.#iss;
    this.#sndNxt = seqAdd(this.#iss, 1);
    this.state = "established";
    // SYN-ACK with Linux's options less SACK and timestamps, which the gateway did not offer.
    const options = new Uint8Array([2, 4, 0x05, 0xb4, 1, 3, 3, this.rcvShift]);
    this.#peer.rawTcp(this.remoteIp, this.localPort, this.remotePort, this.#iss, this.#rcvNxt, TCP_FLAG.syn | TCP_FLAG.ack, 64240, undefined, options);
  }

  receive(seg: TcpSegment): void {
    if (seg.window === 0 && !(seg.flags & TCP_FLAG.syn)) this.zeroWindowsSeen++;
    if (seg.flags & TCP_FLAG.rst) {
      this.resetReason = "reset";
      this.#connectWait?.reject(Object.assign(new Error("connection refused (RST)"), { code: "ECONNREFUSED" }));
      this.#connectWait = undefined;
      this.#finishClose();
      return;
    }
    if (this.state === "syn-sent") {
      if ((seg.flags & (TCP_FLAG.syn | TCP_FLAG.ack)) !== (TCP_FLAG.syn | TCP_FLAG.ack)) return;
      this.#rcvNxt = seqAdd(seg.seq, 1);
      this.#sndUna = seg.ack;
      this.#mss = seg.options.mss ?? 536;
      this.#sndShift = seg.options.windowScale ?? 0;
      this.#sndWnd = seg.window;
      this.state = "established";
      this.#segment(TCP_FLAG.ack);
      this.#connectWait?.resolve(this);
      this.#connectWait = undefined;
      return;
    }
    if (seg.flags & TCP_FLAG.syn) {
      // Our SYN-ACK was lost or this is a repeat: answer again.
      this.#segment(TCP_FLAG.ack);
      return;
    }
    if (seg.flags & TCP_FLAG.ack) {
      if (seqGt(seg.ack, this.#sndUna) && !seqGt(seg.ack, this.#sndNxt)) {
        const acked = seqDiff(seg.ack, this.#sndUna);
        this.#sndUna = seg.ack;
        this.#consumeOut(Math.min(acked, this.#outBytes));
      }
      this.#sndWnd = seg.window << this.#sndShift;
    }
    let ackNeeded = false;
    if (seg.payload.length > 0 || seg.flags & TCP_FLAG.fin) {
      if (seg.seq !== this.#rcvNxt) {
        ackNeeded = true;
      } else {
        if (seg.payload.length > 0) {
          const room = this.rcvCapacity - this.#unread;
          const bytes = seg.payload.subarray(0, Math.max(0, room));
          this.#rcvNxt = seqAdd(this.#rcvNxt, bytes.length);
          this.receivedBytes += bytes.length;
          if (this.#paused) this.#unread += bytes.length;
          if (this.keepData) this.chunks.push(bytes.slice());
          this.onData?.(bytes);
        }
        if (seg.flags & TCP_FLAG.fin && seqAdd(seg.seq, seg.payload.length) === this.#rcvNxt) {
          this.#rcvNxt = seqAdd(this.#rcvNxt, 1);
          this.peerFin = true;
          for (const w of this.#endWaits.splice(0)) w();
        }
        ackNeeded = true;
      }
    } else if (seqGt(this.#rcvNxt, seg.seq)) {
      // A window probe (below the window): answer with the current window.
      ackNeeded = true;
    }
    if (ackNeeded) this.#segment(TCP_FLAG.ack);
    this.#flush();
    if (this.peerFin && this.#finSeq !== undefined && seqGt(this.#sndUna, this.#finSeq)) this.#finishClose();
  }

  #consumeOut(n: number): void {
    this.#outBytes -= n;
    let left = n;
    while (left > 0) {
      const head = this.#out[0]!;
      const avail = head.length - this.#outOffset;
      if (avail <= left) {
        left -= avail;
        this.#out.shift();
        this.#outOffset = 0;
      } else {
        this.#outOffset += left;
        left = 0;
      }
    }
  }

  #flush(): void {
    if (this.state !== "established" && this.state !== "fin-sent") return;
    for (;;) {
      const flight = seqDiff(this.#sndNxt, this.#sndUna);
      const sentData = Math.min(flight, this.#outBytes);
      const unsent = this.#outBytes - sentData;
      if (unsent > 0) {
        const n = Math.min(unsent, this.#mss, this.#sndWnd - flight);
        if (n <= 0) return;
        // Advance first: over a synchronous link the answer arrives inside the send.
        const seq = this.#sndNxt;
        this.#sndNxt = seqAdd(seq, n);
        this.#segment(TCP_FLAG.ack | TCP_FLAG.psh, this.#slice(sentData, n), seq);
      } else if (this.#finWanted && this.#finSeq === undefined) {
        const seq = this.#sndNxt;
        this.#finSeq = seq;
        this.#sndNxt = seqAdd(seq, 1);
        this.state = "fin-sent";
        this.#segment(TCP_FLAG.fin | TCP_FLAG.ack, undefined, seq);
        return;
      } else {
        return;
      }
    }
  }

  #slice(offset: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let skip = offset + this.#outOffset;
    let i = 0;
    while (skip >= this.#out[i]!.length) skip -= this.#out[i++]!.length;
    let filled = 0;
    while (filled < n) {
      const part = this.#out[i++]!.subarray(skip, skip + n - filled);
      out.set(part, filled);
      filled += part.length;
      skip = 0;
    }
    return out;
  }

  write(bytes: Uint8Array): void {
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    this.#flush();
  }

  end(): void {
    this.#finWanted = true;
    this.#flush();
  }

  reset(): void {
    this.#segment(TCP_FLAG.rst | TCP_FLAG.ack);
    this.#finishClose();
  }

  /** Stops the guest application reading: the window closes as bytes arrive. */
  pause(): void {
    this.#paused = true;
  }

  /** The application reads everything: the window reopens and the guest says so. */
  resume(): void {
    this.#paused = false;
    this.#unread = 0;
    this.#segment(TCP_FLAG.ack);
  }

  get unsentOrUnacked(): number {
    return this.#outBytes;
  }

  #finishClose(): void {
    this.state = "done";
    this.#peer.forget(this);
    for (const w of this.#closeWaits.splice(0)) w();
    for (const w of this.#endWaits.splice(0)) w();
  }

  /** Resolves when both FINs are acknowledged or a reset arrived. */
  closed(): Promise<void> {
    if (this.state === "done") return Promise.resolve();
    return new Promise((resolve) => this.#closeWaits.push(resolve));
  }

  /** Resolves when the gateway's FIN (or a reset) arrived. */
  ended(): Promise<void> {
    if (this.peerFin || this.state === "done") return Promise.resolve();
    return new Promise((resolve) => this.#endWaits.push(resolve));
  }
}
