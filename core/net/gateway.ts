// The guest's network, seen from the wire: one virtual gateway that takes the guest's Ethernet
// frames and answers them, like QEMU's user networking. It answers ARP and ping for its
// addresses, leases the one guest address over DHCP, answers DNS through the backend, and
// terminates every TCP connection and UDP flow to carry it over a host socket (NetBackend).
// Connections to the gateway's address go to the host's loopback; what the policy refuses is
// answered at once with RST (TCP) or ICMP unreachable (UDP). A malformed frame is dropped and
// counted, never thrown.

import { BROADCAST_MAC, formatIpv4, inSubnet, ipv4, isGroupMac, parseMac, prefixMask, sameMac, type Ipv4, type Mac } from "./addr.js";
import { ARP_OP, buildArp, parseArp } from "./arp.js";
import type { HostCloseReason, HostDatagram, HostStream, HostStreamSink, NetBackend } from "./backend.js";
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, dhcpReply, parseDhcp, type DhcpServerConfig } from "./dhcp.js";
import { buildDnsResponse, DNS_CLASS_IN, DNS_PORT, DNS_RCODE, isPlainName, parseDnsQuery, type DnsQuery } from "./dns.js";
import { ETHERTYPE, parseEthernet } from "./ethernet.js";
import { buildEchoReply, buildUnreachable, ICMP_TYPE, parseIcmp, UNREACHABLE } from "./icmp.js";
import { IP_PROTOCOL, parseIpv4, type Ipv4Header, type Ipv4Packet } from "./ipv4.js";
import { buildTcp, parseTcp, seqAdd, TCP_FLAG, type TcpSegment, type TcpSegmentOut } from "./tcp.js";
import { TcpConnection, type TcpConnectionOptions } from "./tcp-conn.js";
import type { TimerHandle, Timers } from "./timers.js";
import { buildUdp, parseUdp } from "./udp.js";
import { Emitter, type Disposable } from "../disposable.js";

export interface GatewayConfig {
  /** The guest's network; QEMU's layout by default. */
  network: Ipv4;
  prefix: number;
  gatewayIp: Ipv4;
  dnsIp: Ipv4;
  guestIp: Ipv4;
  gatewayMac: Mac;
  /** Where connections to the gateway's address go on the host. */
  hostLoopback: string;
  leaseSeconds: number;
  mtu: number;
  /** Seconds a DNS answer may be cached by the guest. */
  dnsTtl: number;
  udpIdleMs: number;
  maxTcpFlows: number;
  maxUdpFlows: number;
  maxDnsPending: number;
  /** Per-connection TCP tuning (windows, timers); see TcpConnectionOptions. */
  tcp: Omit<TcpConnectionOptions, "timers" | "output" | "events" | "backlog" | "iss">;
}

export const DEFAULT_GATEWAY: GatewayConfig = {
  network: ipv4("10.0.2.0"),
  prefix: 24,
  gatewayIp: ipv4("10.0.2.2"),
  dnsIp: ipv4("10.0.2.3"),
  guestIp: ipv4("10.0.2.15"),
  gatewayMac: parseMac("52:55:0a:00:02:02"),
  hostLoopback: "127.0.0.1",
  leaseSeconds: 86400,
  mtu: 1500,
  dnsTtl: 60,
  udpIdleMs: 60_000,
  maxTcpFlows: 1024,
  maxUdpFlows: 256,
  maxDnsPending: 64,
  tcp: {},
};

export interface GatewayStats {
  tcpFlows: number;
  udpFlows: number;
  dnsPending: number;
  /** Frames dropped as malformed or not for us. */
  dropped: number;
  /** Connections and datagrams refused by the policy. */
  refused: number;
}

interface TcpFlow {
  key: string;
  conn: TcpConnection;
  host: HostStream | undefined;
  guestPort: number;
  remoteIp: Ipv4;
  remotePort: number;
  /** Outbound and not yet connected on the host: the guest's SYN, to answer if it fails. */
  pendingSyn: { seg: TcpSegment; ip: Ipv4Packet } | undefined;
}

interface UdpFlow {
  key: string;
  host: HostDatagram;
  guestPort: number;
  remoteIp: Ipv4;
  remotePort: number;
  lastUsed: number;
}

const EPHEMERAL_FIRST = 49152;

export interface GatewayOptions {
  backend: NetBackend;
  timers: Timers;
  config?: Partial<GatewayConfig>;
}

export class NetGateway implements Disposable {
  readonly config: GatewayConfig;
  readonly #backend: NetBackend;
  readonly #timers: Timers;
  readonly #frames = new Emitter<Uint8Array>();
  readonly #tcp = new Map<string, TcpFlow>();
  readonly #udp = new Map<string, UdpFlow>();
  #udpSweep: TimerHandle | undefined;
  #guestMac: Mac | undefined;
  #guestIp: Ipv4;
  #ipId = 1;
  #nextPort = EPHEMERAL_FIRST;
  #dnsPending = 0;
  #dropped = 0;
  #refused = 0;
  #disposed = false;
  #busy = false;
  #waiting: (() => void)[] = [];

  constructor(options: GatewayOptions) {
    this.config = { ...DEFAULT_GATEWAY, ...options.config };
    this.#backend = options.backend;
    // Timer callbacks enter like everything else (see #enter).
    this.#timers = {
      now: () => options.timers.now(),
      set: (callback, ms) => options.timers.set(() => this.#enter(callback), ms),
    };
    this.#guestIp = this.config.guestIp;
  }

  /**
   * Runs one piece of work: a frame, a host event or a timer. Work that arrives while another
   * runs (a listener answering synchronously, say) waits its turn, so no connection is ever
   * re-entered in the middle of an update.
   */
  #enter(work: () => void): void {
    if (this.#disposed) return;
    if (this.#busy) {
      this.#waiting.push(work);
      return;
    }
    this.#busy = true;
    try {
      work();
      while (this.#waiting.length > 0 && !this.#disposed) this.#waiting.shift()!();
    } finally {
      this.#busy = false;
      this.#waiting = [];
    }
  }

  /** One Ethernet frame from the guest. Never throws on what the frame contains. */
  receive(frame: Uint8Array): void {
    this.#enter(() => this.#receiveFrame(frame));
  }

  /** Frames for the guest, one Ethernet frame each. */
  onFrame(listener: (frame: Uint8Array) => void): Disposable {
    return this.#frames.event(listener);
  }

  /** The guest as last seen on the wire: its MAC (once it has sent anything) and address. */
  get guest(): { mac: Mac | undefined; ip: Ipv4 } {
    return { mac: this.#guestMac, ip: this.#guestIp };
  }

  stats(): GatewayStats {
    return { tcpFlows: this.#tcp.size, udpFlows: this.#udp.size, dnsPending: this.#dnsPending, dropped: this.#dropped, refused: this.#refused };
  }

  /**
   * An inbound connection (a host port forward): opens TCP from the gateway's address to the
   * guest's `guestPort` and joins it to `host`. Returns the sink the host stream feeds, or
   * undefined when the guest is not on the network yet or there are too many connections.
   */
  forward(guestPort: number, host: HostStream): HostStreamSink | undefined {
    if (this.#disposed || !this.#guestMac || this.#tcp.size >= this.config.maxTcpFlows) return undefined;
    const remoteIp = this.config.gatewayIp;
    let remotePort = 0;
    for (let i = 0; i < 65536 - EPHEMERAL_FIRST; i++) {
      const port = this.#nextPort;
      this.#nextPort = port === 65535 ? EPHEMERAL_FIRST : port + 1;
      if (!this.#tcp.has(flowKey(this.#guestIp, guestPort, remoteIp, port))) {
        remotePort = port;
        break;
      }
    }
    if (remotePort === 0) return undefined;
    const flow = this.#newTcpFlow(guestPort, remoteIp, remotePort);
    flow.host = host;
    const sink = this.#joinHost(flow);
    this.#enter(() => flow.conn.connect());
    return sink;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const flow of [...this.#tcp.values()]) {
      flow.conn.abort();
      flow.host?.destroy();
    }
    this.#tcp.clear();
    for (const flow of this.#udp.values()) flow.host.close();
    this.#udp.clear();
    this.#udpSweep?.cancel();
    this.#frames.dispose();
  }

  // ---- dispatch ---------------------------------------------------------------------------

  #drop(): void {
    this.#dropped++;
  }

  #send(frame: Uint8Array): void {
    if (!this.#disposed) this.#frames.fire(frame);
  }

  #receiveFrame(frame: Uint8Array): void {
    const eth = parseEthernet(frame);
    if (!eth || isGroupMac(eth.src)) return this.#drop();
    const toUs = sameMac(eth.dst, this.config.gatewayMac);
    if (!toUs && !sameMac(eth.dst, BROADCAST_MAC)) return this.#drop();
    if (eth.type === ETHERTYPE.arp) return this.#receiveArp(eth.src, eth.payload);
    if (eth.type !== ETHERTYPE.ipv4) return this.#drop();
    const ip = parseIpv4(eth.payload);
    if (!ip || ip.fragment) return this.#drop();
    this.#learn(eth.src, ip.src);
    switch (ip.protocol) {
      case IP_PROTOCOL.udp:
        return this.#receiveUdp(ip);
      case IP_PROTOCOL.tcp:
        return toUs ? this.#receiveTcp(ip) : this.#drop();
      case IP_PROTOCOL.icmp:
        return toUs ? this.#receiveIcmp(ip) : this.#drop();
      default:
        return this.#drop();
    }
  }

  #learn(mac: Mac, ip: Ipv4): void {
    if (!this.#guestMac || !sameMac(this.#guestMac, mac)) this.#guestMac = mac.slice(0, 6);
    if (ip !== 0 && this.#isGuestAddress(ip)) this.#guestIp = ip;
  }

  /** An address the guest may use as its own: in the subnet, not ours, not the broadcast. */
  #isGuestAddress(ip: Ipv4): boolean {
    const c = this.config;
    const broadcast = (c.network | ~prefixMask(c.prefix)) >>> 0;
    return inSubnet(ip, c.network, c.prefix) && ip !== c.gatewayIp && ip !== c.dnsIp && ip !== c.network && ip !== broadcast;
  }

  /** Ethernet and IP header fields for a packet from `src` to the guest. */
  #toGuest(src: Ipv4, dst: Ipv4 = this.#guestIp, dstMac: Mac | undefined = this.#guestMac): Omit<Ipv4Header, "protocol"> {
    this.#ipId = (this.#ipId + 1) & 0xffff;
    return { srcMac: this.config.gatewayMac, dstMac: dstMac ?? BROADCAST_MAC, src, dst, id: this.#ipId };
  }

  // ---- ARP, ICMP --------------------------------------------------------------------------

  #receiveArp(ethSrc: Mac, payload: Uint8Array): void {
    const arp = parseArp(payload);
    if (!arp || !sameMac(arp.senderMac, ethSrc)) return this.#drop();
    if (arp.senderIp !== 0) this.#learn(ethSrc, arp.senderIp);
    if (arp.op !== ARP_OP.request) return;
    if (arp.targetIp !== this.config.gatewayIp && arp.targetIp !== this.config.dnsIp) return;
    // A probe (sender 0.0.0.0) is answered to the broadcast, as RFC 5227 §2.1.1 expects.
    const to = arp.senderIp === 0 ? BROADCAST_MAC : arp.senderMac;
    this.#send(
      buildArp(to, { op: ARP_OP.reply, senderMac: this.config.gatewayMac, senderIp: arp.targetIp, targetMac: arp.senderMac, targetIp: arp.senderIp }),
    );
  }

  #receiveIcmp(ip: Ipv4Packet): void {
    const icmp = parseIcmp(ip.payload);
    if (!icmp) return this.#drop();
    if (icmp.type !== ICMP_TYPE.echoRequest || icmp.code !== 0) return;
    // Only the gateway's own addresses answer: Node has no ICMP sockets to ping further.
    if (ip.dst !== this.config.gatewayIp && ip.dst !== this.config.dnsIp) return;
    this.#send(buildEchoReply(this.#toGuest(ip.dst, ip.src), icmp));
  }

  #unreachable(ip: Ipv4Packet, code: number): void {
    this.#send(buildUnreachable(this.#toGuest(this.config.gatewayIp, ip.src), code, ip));
  }

  // ---- UDP: DHCP, DNS, flows ------------------------------------------------------------

  #receiveUdp(ip: Ipv4Packet): void {
    const udp = parseUdp(ip);
    if (!udp) return this.#drop();
    const c = this.config;
    if (udp.dstPort === DHCP_SERVER_PORT && udp.srcPort === DHCP_CLIENT_PORT) return this.#receiveDhcp(udp.payload);
    if (ip.dst === c.dnsIp) {
      if (udp.dstPort === DNS_PORT) return this.#receiveDns(ip.src, udp.srcPort, udp.payload);
      return this.#unreachable(ip, UNREACHABLE.port);
    }
    // Broadcast and multicast (mDNS, NetBIOS, SSDP) stay on the guest's side.
    const broadcast = (c.network | ~prefixMask(c.prefix)) >>> 0;
    if (ip.dst === 0xffffffff || ip.dst === broadcast || ip.dst >>> 28 === 0xe || ip.dst === 0) return;
    if (ip.src === 0) return this.#drop();
    const key = flowKey(ip.src, udp.srcPort, ip.dst, udp.dstPort);
    let flow = this.#udp.get(key);
    if (!flow) {
      if (this.#udp.size >= c.maxUdpFlows) this.#evictOldestUdp();
      const remoteIp = ip.dst;
      const remotePort = udp.dstPort;
      const guestPort = udp.srcPort;
      const host = this.#backend.openUdp(this.#hostAddress(remoteIp), remotePort, {
        message: (bytes) =>
          this.#enter(() => {
            const live = this.#udp.get(key);
            if (!live) return;
            live.lastUsed = this.#timers.now();
            this.#sendUdpToGuest(remoteIp, remotePort, guestPort, bytes);
          }),
      });
      if (!host) {
        this.#refused++;
        return this.#unreachable(ip, UNREACHABLE.prohibited);
      }
      flow = { key, host, guestPort, remoteIp, remotePort, lastUsed: 0 };
      this.#udp.set(key, flow);
      this.#armUdpSweep();
    }
    flow.lastUsed = this.#timers.now();
    flow.host.send(udp.payload.slice());
  }

  #sendUdpToGuest(srcIp: Ipv4, srcPort: number, dstPort: number, bytes: Uint8Array): void {
    // Larger than one frame: this network does not fragment, so the datagram is lost.
    if (bytes.length > this.config.mtu - 28) return;
    this.#send(buildUdp(this.#toGuest(srcIp), srcPort, dstPort, bytes));
  }

  #hostAddress(ip: Ipv4): string {
    return ip === this.config.gatewayIp ? this.config.hostLoopback : formatIpv4(ip);
  }

  #evictOldestUdp(): void {
    let oldest: UdpFlow | undefined;
    for (const flow of this.#udp.values()) if (!oldest || flow.lastUsed < oldest.lastUsed) oldest = flow;
    if (oldest) this.#closeUdp(oldest);
  }

  #closeUdp(flow: UdpFlow): void {
    this.#udp.delete(flow.key);
    flow.host.close();
  }

  #armUdpSweep(): void {
    if (this.#udpSweep || this.#disposed) return;
    const every = Math.max(1000, Math.floor(this.config.udpIdleMs / 4));
    this.#udpSweep = this.#timers.set(() => {
      this.#udpSweep = undefined;
      const now = this.#timers.now();
      for (const flow of [...this.#udp.values()]) if (now - flow.lastUsed >= this.config.udpIdleMs) this.#closeUdp(flow);
      if (this.#udp.size > 0) this.#armUdpSweep();
    }, every);
  }

  #receiveDhcp(payload: Uint8Array): void {
    const request = parseDhcp(payload);
    if (!request) return this.#drop();
    const c = this.config;
    const server: DhcpServerConfig = {
      serverIp: c.gatewayIp,
      guestIp: c.guestIp,
      netmask: prefixMask(c.prefix),
      router: c.gatewayIp,
      dns: [c.dnsIp],
      leaseSeconds: c.leaseSeconds,
      mtu: c.mtu,
    };
    const reply = dhcpReply(request, server);
    if (!reply) return;
    const h = reply.broadcast ? this.#toGuest(c.gatewayIp, 0xffffffff, BROADCAST_MAC) : this.#toGuest(c.gatewayIp, reply.to, request.chaddr.slice(0, 6));
    this.#send(buildUdp(h, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, reply.payload));
  }

  #receiveDns(guestIp: Ipv4, guestPort: number, payload: Uint8Array): void {
    const query = parseDnsQuery(payload);
    if (!query) return this.#drop();
    const answer = (response: Uint8Array): void => {
      this.#enter(() => this.#send(buildUdp(this.#toGuest(this.config.dnsIp, guestIp), DNS_PORT, guestPort, response)));
    };
    const q = query.question;
    if (query.opcode !== 0) return answer(buildDnsResponse(query, DNS_RCODE.notImp));
    if (!q) return answer(buildDnsResponse(query, DNS_RCODE.formErr));
    if (q.klass !== DNS_CLASS_IN) return answer(buildDnsResponse(query, DNS_RCODE.notImp));
    if (!isPlainName(q.name)) return answer(buildDnsResponse(query, DNS_RCODE.nxDomain));
    if (this.#dnsPending >= this.config.maxDnsPending) return answer(buildDnsResponse(query, DNS_RCODE.servFail));
    this.#dnsPending++;
    this.#backend.resolve(q.name, q.type).then(
      (result) => this.#dnsDone(query, answer, result.rcode, result.records.map((r) => ({ ...r, ttl: Math.min(r.ttl, this.config.dnsTtl) }))),
      () => this.#dnsDone(query, answer, DNS_RCODE.servFail, []),
    );
  }

  #dnsDone(query: DnsQuery, answer: (response: Uint8Array) => void, rcode: number, records: Parameters<typeof buildDnsResponse>[2]): void {
    this.#dnsPending--;
    answer(buildDnsResponse(query, rcode, records));
  }

  // ---- TCP ------------------------------------------------------------------------------

  #receiveTcp(ip: Ipv4Packet): void {
    const seg = parseTcp(ip);
    if (!seg) return this.#drop();
    const key = flowKey(ip.src, seg.srcPort, ip.dst, seg.dstPort);
    const flow = this.#tcp.get(key);
    const syn = (seg.flags & (TCP_FLAG.syn | TCP_FLAG.ack | TCP_FLAG.rst)) === TCP_FLAG.syn;
    if (flow) {
      // A new SYN on a finished flow starts a new connection (the guest reused its port).
      if (syn && (flow.conn.state === "time-wait" || flow.conn.state === "closed")) {
        this.#closeTcp(flow);
      } else {
        flow.conn.receive(seg);
        return;
      }
    }
    if (!syn) {
      if (!(seg.flags & TCP_FLAG.rst)) this.#resetFor(ip, seg);
      return;
    }
    this.#openOutbound(ip, seg, key);
  }

  /** RFC 9293 §3.10.7.1: the reset for a segment that belongs to no connection. */
  #resetFor(ip: Ipv4Packet, seg: TcpSegment): void {
    const length = seg.payload.length + (seg.flags & TCP_FLAG.syn ? 1 : 0) + (seg.flags & TCP_FLAG.fin ? 1 : 0);
    const out: TcpSegmentOut =
      seg.flags & TCP_FLAG.ack
        ? { seq: seg.ack, ack: 0, flags: TCP_FLAG.rst, window: 0 }
        : { seq: 0, ack: seqAdd(seg.seq, length), flags: TCP_FLAG.rst | TCP_FLAG.ack, window: 0 };
    this.#send(buildTcp(this.#toGuest(ip.dst, ip.src), seg.dstPort, seg.srcPort, out));
  }

  #openOutbound(ip: Ipv4Packet, seg: TcpSegment, key: string): void {
    const c = this.config;
    const refuse = (): void => {
      this.#refused++;
      this.#resetFor(ip, seg);
    };
    if (this.#tcp.size >= c.maxTcpFlows || ip.dst === c.dnsIp) return refuse();
    if (ip.dst === 0xffffffff || ip.dst >>> 28 >= 0xe || ip.dst === 0) return this.#drop();
    const flow = this.#newTcpFlow(seg.srcPort, ip.dst, seg.dstPort, ip.src);
    flow.conn.listen(seg);
    flow.pendingSyn = { seg, ip: { ...ip, packet: ip.packet.slice() } };
    const sink = this.#joinHost(flow);
    const host = this.#backend.connectTcp(this.#hostAddress(ip.dst), seg.dstPort, sink);
    if (!host) {
      this.#tcp.delete(key);
      flow.conn.events = {};
      flow.conn.abort();
      return refuse();
    }
    flow.host = host;
  }

  #newTcpFlow(guestPort: number, remoteIp: Ipv4, remotePort: number, guestIp: Ipv4 = this.#guestIp): TcpFlow {
    const key = flowKey(guestIp, guestPort, remoteIp, remotePort);
    const flow: TcpFlow = {
      key,
      host: undefined,
      guestPort,
      remoteIp,
      remotePort,
      pendingSyn: undefined,
      conn: new TcpConnection({
        ...this.config.tcp,
        timers: this.#timers,
        output: (segment) => this.#send(buildTcp(this.#toGuest(remoteIp, guestIp), remotePort, guestPort, segment)),
        backlog: () => flow.host?.backlog ?? 0,
      }),
    };
    this.#tcp.set(key, flow);
    return flow;
  }

  /** Joins a connection to its host stream, both ways, with backpressure both ways. */
  #joinHost(flow: TcpFlow): HostStreamSink {
    const conn = flow.conn;
    conn.events = {
      data: (bytes) => flow.host?.write(bytes),
      end: () => flow.host?.end(),
      drain: () => flow.host?.resume(),
      close: (reason) => {
        if (this.#tcp.get(flow.key) === flow) this.#tcp.delete(flow.key);
        // An orderly close lets the host stream flush; anything else drops it.
        if (reason === "closed") flow.host?.end();
        else flow.host?.destroy();
      },
    };
    const enter = this.#enter.bind(this);
    return {
      connected: () =>
        enter(() => {
          if (!flow.pendingSyn) return;
          flow.pendingSyn = undefined;
          conn.accept();
        }),
      data: (bytes) =>
        enter(() => {
          if (!conn.write(bytes)) flow.host?.pause();
        }),
      end: () => enter(() => conn.end()),
      drain: () => enter(() => conn.windowOpened()),
      closed: (reason: HostCloseReason) => enter(() => this.#hostClosed(flow, reason)),
    };
  }

  #hostClosed(flow: TcpFlow, reason: HostCloseReason): void {
    const pending = flow.pendingSyn;
    if (pending) {
      // The host could not connect: tell the guest the way its own stack would hear it.
      flow.pendingSyn = undefined;
      this.#closeTcp(flow);
      if (reason === "refused" || reason === "reset" || reason === "closed") this.#resetFor(pending.ip, pending.seg);
      else this.#unreachable(pending.ip, UNREACHABLE.host);
      return;
    }
    if (reason === "closed") flow.conn.end();
    else flow.conn.abort();
  }

  #closeTcp(flow: TcpFlow): void {
    if (this.#tcp.get(flow.key) === flow) this.#tcp.delete(flow.key);
    flow.conn.events = {};
    flow.conn.abort();
    flow.host?.destroy();
  }
}

function flowKey(guestIp: Ipv4, guestPort: number, remoteIp: Ipv4, remotePort: number): string {
  return `${guestIp}:${guestPort}>${remoteIp}:${remotePort}`;
}
