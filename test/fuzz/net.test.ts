// Fuzzing the network path, seeded so a failure repeats: every decoder fed random bytes and
// mutated real frames; then the gateway (and the host NAT around it) fed tens of thousands of
// random and mutated frames, half of them with checksums repaired so they reach the deeper
// layers, while a fake host backend connects, sends and fails at random. Nothing may throw,
// flows stay within their limits, and afterwards a guest still gets its lease, pings the
// gateway, resolves a name and moves data over TCP. No real socket is opened.

import { describe, expect, it } from "vitest";
import { ipv4, parseMac } from "../../core/net/addr.js";
import { ARP_OP, buildArp, parseArp } from "../../core/net/arp.js";
import type { DnsAnswer, HostDatagram, HostDatagramSink, HostStream, HostStreamSink, NetBackend } from "../../core/net/backend.js";
import { checksum, finish, pseudoSum, sum16 } from "../../core/net/checksum.js";
import { encodeDhcp, parseDhcp } from "../../core/net/dhcp.js";
import { DNS_TYPE, parseDnsQuery } from "../../core/net/dns.js";
import { parseEthernet } from "../../core/net/ethernet.js";
import { NetGateway } from "../../core/net/gateway.js";
import { buildEchoReply, parseIcmp } from "../../core/net/icmp.js";
import { IP_PROTOCOL, parseIpv4 } from "../../core/net/ipv4.js";
import { buildTcp, parseTcp, TCP_FLAG } from "../../core/net/tcp.js";
import { buildUdp, parseUdp } from "../../core/net/udp.js";
import { createNat } from "../../main/net/nat.js";
import { ManualTimers, seeded } from "../core/net/manual-timers.js";
import { GuestPeer } from "../main/net/guest-peer.js";

const GUEST_MAC = parseMac("52:54:00:12:34:56");
const GATEWAY_MAC = parseMac("52:55:0a:00:02:02");
const GUEST = ipv4("10.0.2.15");
const GATEWAY = ipv4("10.0.2.2");
const DNS = ipv4("10.0.2.3");
const FAR = ipv4("203.0.113.9"); // TEST-NET-3, and the backend below is fake anyway

type Random = () => number;

/** Recomputes the IPv4 header checksum and the TCP/UDP/ICMP checksum of a frame, if it has them. */
function repairChecksums(frame: Uint8Array): void {
  if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) return;
  const ihl = (frame[14]! & 0x0f) * 4;
  if (ihl < 20 || 14 + ihl > frame.length) return;
  frame[24] = 0;
  frame[25] = 0;
  const h = checksum(frame, 14, 14 + ihl);
  frame[24] = h >> 8;
  frame[25] = h & 0xff;
  const total = Math.min((frame[16]! << 8) | frame[17]!, frame.length - 14);
  const at = 14 + ihl;
  const end = 14 + total;
  if (end <= at) return;
  const src = ((frame[26]! << 24) | (frame[27]! << 16) | (frame[28]! << 8) | frame[29]!) >>> 0;
  const dst = ((frame[30]! << 24) | (frame[31]! << 16) | (frame[32]! << 8) | frame[33]!) >>> 0;
  const proto = frame[23]!;
  const field = proto === IP_PROTOCOL.tcp ? at + 16 : proto === IP_PROTOCOL.udp ? at + 6 : proto === IP_PROTOCOL.icmp ? at + 2 : -1;
  if (field < 0 || field + 2 > end) return;
  frame[field] = 0;
  frame[field + 1] = 0;
  const sum = proto === IP_PROTOCOL.icmp ? finish(sum16(frame, at, end)) : finish(sum16(frame, at, end, pseudoSum(src, dst, proto, end - at)));
  frame[field] = sum >> 8;
  frame[field + 1] = sum & 0xff;
}

/** Real frames a guest sends: the starting points for mutation. */
function seeds(r: Random): Uint8Array[] {
  const h = (dst: number) => ({ srcMac: GUEST_MAC, dstMac: GATEWAY_MAC, src: GUEST, dst, id: Math.floor(r() * 65536) });
  const dhcp = encodeDhcp({ op: 1, xid: 7, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: GUEST_MAC, options: [[53, new Uint8Array([1])], [55, new Uint8Array([1, 3, 6])]] });
  const dnsQuery = new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, ...new TextEncoder().encode("localhost"), 0, 0, 1, 0, 1]);
  const port = 40000 + Math.floor(r() * 20);
  return [
    buildUdp({ ...h(0xffffffff), src: 0, dstMac: parseMac("ff:ff:ff:ff:ff:ff") }, 68, 67, dhcp),
    buildArp(parseMac("ff:ff:ff:ff:ff:ff"), { op: ARP_OP.request, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: new Uint8Array(6), targetIp: GATEWAY }),
    buildEchoReply(h(GATEWAY), { type: 8, code: 0, id: 1, sequence: 1, data: new Uint8Array(32) }).map((b, i) => (i === 34 ? 8 : b)),
    buildUdp(h(DNS), 5353, 53, dnsQuery),
    buildUdp(h(FAR), 5000 + Math.floor(r() * 5), 123, new Uint8Array(48)),
    buildTcp(h(FAR), port, 80, { seq: Math.floor(r() * 2 ** 32), ack: 0, flags: TCP_FLAG.syn, window: 64240, mss: 1460, windowScale: 7 }),
    buildTcp(h(FAR), port, 80, { seq: Math.floor(r() * 2 ** 32), ack: Math.floor(r() * 2 ** 32), flags: TCP_FLAG.ack | TCP_FLAG.psh, window: 500, payload: new Uint8Array(100) }),
    buildTcp(h(FAR), port, 80, { seq: 1, ack: 1, flags: TCP_FLAG.fin | TCP_FLAG.ack, window: 500 }),
    buildTcp(h(GATEWAY), port, 22, { seq: 5, ack: 0, flags: TCP_FLAG.syn, window: 1000, mss: 0 }),
  ];
}

function mutate(frame: Uint8Array, r: Random): Uint8Array {
  let out = frame.slice();
  const edits = 1 + Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const kind = Math.floor(r() * 6);
    if (kind === 0 && out.length > 0) {
      const at = Math.floor(r() * out.length);
      out[at] = out[at]! ^ (1 << Math.floor(r() * 8));
    }
    else if (kind === 1 && out.length > 0) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
    else if (kind === 2) out = out.slice(0, Math.floor(r() * out.length));
    else if (kind === 3) {
      const grown = new Uint8Array(out.length + Math.floor(r() * 64));
      grown.set(out);
      for (let i = out.length; i < grown.length; i++) grown[i] = Math.floor(r() * 256);
      out = grown;
    } else if (kind === 4 && out.length > 40) {
      // A header field: lengths, flags, ports and counts live in the first 60 bytes.
      out[14 + Math.floor(r() * Math.min(60, out.length - 14))] = Math.floor(r() * 256);
    } else if (kind === 5 && out.length > 16) {
      const at = 14 + Math.floor(r() * (out.length - 16));
      out[at] = 0xff;
      out[at + 1] = 0xff;
    }
  }
  if (r() < 0.5) repairChecksums(out);
  return out;
}

function randomFrame(r: Random): Uint8Array {
  const out = new Uint8Array(Math.floor(r() * 200));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  if (out.length >= 14 && r() < 0.7) {
    out.set(r() < 0.5 ? GATEWAY_MAC : parseMac("ff:ff:ff:ff:ff:ff"));
    out.set(GUEST_MAC, 6);
    out[12] = 0x08;
    out[13] = r() < 0.2 ? 0x06 : 0x00;
    if (out.length > 14) out[14] = 0x45;
    if (r() < 0.5) repairChecksums(out);
  }
  return out;
}

/** A host that connects, talks, refuses and fails at random; it opens no real socket. */
class ChaosBackend implements NetBackend {
  readonly #r: Random;
  readonly streams: { sink: HostStreamSink; alive: boolean }[] = [];
  readonly datagrams: { sink: HostDatagramSink; closed: boolean }[] = [];
  constructor(r: Random) {
    this.#r = r;
  }
  connectTcp(_host: string, _port: number, sink: HostStreamSink): HostStream | undefined {
    if (this.#r() < 0.2) return undefined;
    const entry = { sink, alive: true };
    this.streams.push(entry);
    return { write() {}, backlog: Math.floor(this.#r() * 100_000), end() {}, destroy: () => void (entry.alive = false), pause() {}, resume() {} };
  }
  openUdp(_host: string, _port: number, sink: HostDatagramSink): HostDatagram | undefined {
    if (this.#r() < 0.2) return undefined;
    const entry = { sink, closed: false };
    this.datagrams.push(entry);
    return { send() {}, close: () => void (entry.closed = true) };
  }
  async resolve(name: string, type: number): Promise<DnsAnswer> {
    const r = this.#r();
    if (r < 0.2) throw new Error("resolver failed");
    if (name === "localhost" && type === DNS_TYPE.A) return { rcode: 0, records: [{ type: DNS_TYPE.A, address: ipv4("127.0.0.1"), ttl: 5 }] };
    return { rcode: Math.floor(r * 6), records: r < 0.5 ? [{ type: DNS_TYPE.TXT, text: ["x".repeat(Math.floor(r * 2000))], ttl: 1 }] : [] };
  }
  /** Host-side events at random: connect, data, FIN, reset, datagrams. */
  poke(): void {
    const r = this.#r;
    const live = this.streams.filter((s) => s.alive);
    const s = live[Math.floor(r() * live.length)];
    if (s) {
      const what = r();
      if (what < 0.3) s.sink.connected();
      else if (what < 0.6) s.sink.data(new Uint8Array(Math.floor(r() * 5000)));
      else if (what < 0.7) s.sink.end();
      else if (what < 0.8) s.sink.drain();
      else if (what < 0.9) {
        s.alive = false;
        s.sink.closed((["closed", "reset", "refused", "unreachable", "timeout"] as const)[Math.floor(r() * 5)]!);
      }
    }
    const d = this.datagrams[Math.floor(r() * this.datagrams.length)];
    if (d && !d.closed && r() < 0.3) d.sink.message(new Uint8Array(Math.floor(r() * 1600)));
  }
}

describe("network fuzz", () => {
  it("decoders take random and mutated bytes without throwing", () => {
    const r = seeded(1);
    const corpus = seeds(r);
    for (let i = 0; i < 20_000; i++) {
      const frame = i % 2 ? randomFrame(r) : mutate(corpus[i % corpus.length]!, r);
      const eth = parseEthernet(frame);
      if (!eth) continue;
      parseArp(eth.payload);
      const ip = parseIpv4(eth.payload);
      const any = ip ?? { src: 0, dst: 0, protocol: 0, ttl: 0, id: 0, fragment: false, packet: eth.payload, payload: eth.payload };
      parseIcmp(any.payload);
      parseUdp(any);
      parseTcp(any);
      const udpPayload = any.payload.subarray(8);
      parseDhcp(udpPayload);
      parseDnsQuery(udpPayload);
      parseDnsQuery(frame);
    }
  });

  it("the gateway survives 40,000 hostile frames and chaotic host events, then still serves a guest", async () => {
    const r = seeded(2);
    const timers = new ManualTimers();
    const backend = new ChaosBackend(r);
    const gateway = new NetGateway({ backend, timers, config: { maxTcpFlows: 64, maxUdpFlows: 32 } });
    let out = 0;
    gateway.onFrame(() => out++);
    const corpus = seeds(r);
    for (let i = 0; i < 40_000; i++) {
      gateway.receive(r() < 0.3 ? randomFrame(r) : mutate(corpus[Math.floor(r() * corpus.length)]!, r));
      if (i % 7 === 0) backend.poke();
      if (i % 100 === 0) timers.advance(Math.floor(r() * 3000));
      if (i % 5000 === 0) await new Promise((resolve) => setTimeout(resolve, 0)); // let DNS answers land
      const stats = gateway.stats();
      expect(stats.tcpFlows).toBeLessThanOrEqual(64);
      expect(stats.udpFlows).toBeLessThanOrEqual(32);
    }
    // Deep enough: connections and flows were opened, not only checksums failed.
    expect(out).toBeGreaterThan(1000);
    expect(gateway.stats().dropped).toBeGreaterThan(1000);
    expect(backend.streams.length).toBeGreaterThan(100);
    expect(backend.datagrams.length).toBeGreaterThan(100);

    // Let every connection time out, then a fresh guest on the same gateway.
    timers.advance(30 * 60_000);
    const guest = new GuestPeer((frame) => gateway.receive(frame), parseMac("52:54:00:ab:cd:ef"));
    const sub = gateway.onFrame((frame) => guest.receive(frame));
    const lease = await guest.dhcp();
    expect(lease.ip).toBe(GUEST);
    await guest.arp(GATEWAY);
    expect((await guest.ping(GATEWAY, 9)).ip.src).toBe(GATEWAY);
    let dns = await guest.dns(DNS, "localhost");
    for (let i = 0; i < 10 && dns.answers.length === 0; i++) dns = await guest.dns(DNS, "localhost"); // the chaos resolver fails at times
    expect(dns.answers.length).toBeGreaterThan(0);
    const before = backend.streams.length;
    let conn: Awaited<ReturnType<GuestPeer["connect"]>> | undefined;
    for (let i = 0; i < 10 && !conn; i++) {
      const connecting = guest.connect(FAR, 80);
      const stream = backend.streams[backend.streams.length - 1];
      if (backend.streams.length > before && stream) stream.sink.connected();
      conn = await connecting.catch(() => undefined);
    }
    expect(conn?.state).toBe("established");
    sub.dispose();
    gateway.dispose();
  });

  it("the host NAT reports nothing thrown while fed hostile frames", async () => {
    const r = seeded(3);
    const errors: string[] = [];
    const nat = createNat({ backend: new ChaosBackend(r), onError: (m) => errors.push(m) });
    const corpus = seeds(r);
    for (let i = 0; i < 5000; i++) nat.receive(r() < 0.3 ? randomFrame(r) : mutate(corpus[Math.floor(r() * corpus.length)]!, r));
    await new Promise((resolve) => setTimeout(resolve, 10));
    nat.dispose();
    expect(errors).toEqual([]);
  });
});
