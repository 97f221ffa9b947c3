// The gateway over a fake backend and a manual clock: what the guest hears when the host
// refuses, cannot reach or times out; the handshake held until the host connects; data the
// host sends first; UDP flows that idle out or are evicted; DNS failures; frames that are not
// for it; a listener that answers synchronously; reuse of a port in TIME-WAIT; dispose.

import { describe, expect, it } from "vitest";
import { formatIpv4, ipv4, parseMac } from "../../../core/net/addr.js";
import type { DnsAnswer, HostCloseReason, HostDatagram, HostDatagramSink, HostStream, HostStreamSink, NetBackend } from "../../../core/net/backend.js";
import { ARP_OP, buildArp } from "../../../core/net/arp.js";
import { DNS_RCODE, DNS_TYPE } from "../../../core/net/dns.js";
import { ETHERTYPE } from "../../../core/net/ethernet.js";
import { NetGateway } from "../../../core/net/gateway.js";
import { ICMP_TYPE, UNREACHABLE } from "../../../core/net/icmp.js";
import { allocIpv4Frame, IP_PROTOCOL } from "../../../core/net/ipv4.js";
import { TCP_FLAG } from "../../../core/net/tcp.js";
import { buildUdp } from "../../../core/net/udp.js";
import { GuestPeer } from "../../main/net/guest-peer.js";
import { ManualTimers } from "./manual-timers.js";

const GATEWAY = ipv4("10.0.2.2");
const DNS = ipv4("10.0.2.3");
const OUTSIDE = ipv4("203.0.113.7"); // TEST-NET-3: never reached, the backend is fake

class FakeStream implements HostStream {
  written: Uint8Array[] = [];
  backlog = 0;
  ended = false;
  destroyed = false;
  paused = false;
  write(bytes: Uint8Array): void {
    this.written.push(bytes.slice());
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  get text(): string {
    return this.written.map((b) => new TextDecoder().decode(b)).join("");
  }
}

class FakeBackend implements NetBackend {
  tcp: { host: string; port: number; sink: HostStreamSink; stream: FakeStream }[] = [];
  udp: { host: string; port: number; sink: HostDatagramSink; sent: Uint8Array[]; closed: boolean }[] = [];
  refused = new Set<string>();
  names: string[] = [];
  answer: (name: string, type: number) => Promise<DnsAnswer> = async () => ({ rcode: DNS_RCODE.nxDomain, records: [] });

  connectTcp(host: string, port: number, sink: HostStreamSink): HostStream | undefined {
    if (this.refused.has(host)) return undefined;
    const stream = new FakeStream();
    this.tcp.push({ host, port, sink, stream });
    return stream;
  }
  openUdp(host: string, port: number, sink: HostDatagramSink): HostDatagram | undefined {
    if (this.refused.has(host)) return undefined;
    const flow = { host, port, sink, sent: [] as Uint8Array[], closed: false };
    this.udp.push(flow);
    return { send: (b) => void flow.sent.push(b), close: () => void (flow.closed = true) };
  }
  resolve(name: string, type: number): Promise<DnsAnswer> {
    this.names.push(name);
    return this.answer(name, type);
  }
}

/** A gateway and a guest joined synchronously: each answer arrives inside the call. */
async function setup(config: ConstructorParameters<typeof NetGateway>[0]["config"] = {}) {
  const timers = new ManualTimers();
  const backend = new FakeBackend();
  const gateway = new NetGateway({ backend, timers, config });
  const frames: Uint8Array[] = [];
  const guest = new GuestPeer((frame) => gateway.receive(frame));
  gateway.onFrame((frame) => {
    frames.push(frame);
    guest.receive(frame);
  });
  await guest.dhcp();
  await guest.arp(GATEWAY);
  return { timers, backend, gateway, guest, frames };
}

const flush = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe("NetGateway: TCP", () => {
  it("holds the SYN-ACK until the host connects, and ignores the guest's repeated SYN meanwhile", async () => {
    const { backend, guest, gateway } = await setup();
    guest.logTcp = true;
    const connecting = guest.connect(OUTSIDE, 443);
    expect(backend.tcp).toHaveLength(1);
    expect(backend.tcp[0]).toMatchObject({ host: "203.0.113.7", port: 443 });
    expect(guest.tcpLog).toHaveLength(0);
    // Linux repeats its SYN after a second; still one host connection.
    guest.rawTcp(OUTSIDE, 40000, 443, 0x01000000, 0, TCP_FLAG.syn, 64240, undefined, guest.synOptions(1));
    expect(backend.tcp).toHaveLength(1);
    backend.tcp[0]!.sink.connected();
    const conn = await connecting;
    expect(guest.tcpLog[0]!.flags).toBe(TCP_FLAG.syn | TCP_FLAG.ack);
    expect(guest.tcpLog[0]!.options.mss).toBe(1460);
    expect(guest.tcpLog[0]!.options.windowScale).toBeDefined();
    conn.write(new TextEncoder().encode("ping"));
    expect(backend.tcp[0]!.stream.text).toBe("ping");
    expect(gateway.stats().tcpFlows).toBe(1);
  });

  for (const [reason, expected] of [
    ["refused", "RST"],
    ["unreachable", "ICMP host unreachable"],
    ["timeout", "ICMP host unreachable"],
  ] as [HostCloseReason, string][]) {
    it(`tells the guest ${expected} when the host connection is ${reason}`, async () => {
      const { backend, guest, gateway } = await setup();
      const connecting = guest.connect(OUTSIDE, 80);
      backend.tcp[0]!.sink.closed(reason);
      const error = await connecting.then(
        () => ({ code: "connected" }),
        (e: { code: unknown }) => e,
      );
      expect(error.code).toBe(reason === "refused" ? "ECONNREFUSED" : UNREACHABLE.host);
      expect(gateway.stats().tcpFlows).toBe(0);
    });
  }

  it("refuses what the backend refuses, and TCP to the DNS address, with RST", async () => {
    const { backend, guest, gateway } = await setup();
    backend.refused.add("127.0.0.1");
    await expect(guest.connect(GATEWAY, 22)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await expect(guest.connect(DNS, 53)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(gateway.stats().refused).toBe(2);
    expect(backend.tcp).toHaveLength(0);
  });

  it("answers a segment of no connection with RST at its ACK number", async () => {
    const { guest } = await setup();
    guest.logTcp = true;
    guest.rawTcp(OUTSIDE, 41000, 80, 777, 0xabcdef, TCP_FLAG.ack, 100);
    const rst = guest.tcpLog.at(-1)!;
    expect(rst.flags).toBe(TCP_FLAG.rst);
    expect(rst.seq).toBe(0xabcdef);
  });

  it("passes on bytes the host sends before the guest's handshake ACK (server speaks first)", async () => {
    const { backend, guest } = await setup();
    const connecting = guest.connect(OUTSIDE, 25);
    backend.tcp[0]!.sink.connected();
    backend.tcp[0]!.sink.data(new TextEncoder().encode("220 ready\r\n"));
    const conn = await connecting;
    await flush();
    expect(new TextDecoder().decode(conn.received)).toBe("220 ready\r\n");
  });

  it("pauses the host stream while the guest cannot take more, and resumes it", async () => {
    const { backend, guest, timers } = await setup({ tcp: { sendBuffer: 64 * 1024 } });
    const connecting = guest.connect(OUTSIDE, 80);
    backend.tcp[0]!.sink.connected();
    const conn = await connecting;
    conn.rcvCapacity = 32 * 1024;
    conn.pause();
    const host = backend.tcp[0]!;
    for (let i = 0; i < 4; i++) host.sink.data(new Uint8Array(32 * 1024));
    expect(host.stream.paused).toBe(true);
    expect(conn.receivedBytes).toBeLessThanOrEqual(32 * 1024);
    conn.resume();
    timers.advance(100);
    conn.resume();
    timers.advance(100);
    conn.resume();
    timers.advance(100);
    expect(host.stream.paused).toBe(false);
    expect(conn.receivedBytes).toBe(128 * 1024);
  });

  it("carries the host's FIN and the guest's, and a host reset as RST", async () => {
    const { backend, guest, gateway, timers } = await setup();
    let connecting = guest.connect(OUTSIDE, 80);
    backend.tcp[0]!.sink.connected();
    let conn = await connecting;
    backend.tcp[0]!.sink.end();
    await conn.ended();
    conn.end();
    expect(backend.tcp[0]!.stream.ended).toBe(true);
    await conn.closed();
    // The gateway closed first, so it waits in TIME-WAIT before letting the flow go.
    expect(gateway.stats().tcpFlows).toBe(1);
    timers.advance(3000);
    expect(gateway.stats().tcpFlows).toBe(0);

    connecting = guest.connect(OUTSIDE, 81);
    backend.tcp[1]!.sink.connected();
    conn = await connecting;
    backend.tcp[1]!.sink.closed("reset");
    await conn.closed();
    expect(conn.resetReason).toBe("reset");
    timers.advance(10_000);
    expect(gateway.stats().tcpFlows).toBe(0);
  });

  it("lets a new SYN replace a connection in TIME-WAIT on the same ports", async () => {
    const { backend, guest, gateway } = await setup();
    const connecting = guest.connect(OUTSIDE, 80);
    backend.tcp[0]!.sink.connected();
    const conn = await connecting;
    backend.tcp[0]!.sink.end(); // the gateway closes first: it ends in TIME-WAIT
    await conn.ended();
    conn.end();
    await conn.closed();
    expect(gateway.stats().tcpFlows).toBe(1);
    guest.rawTcp(OUTSIDE, conn.localPort, 80, 0x7000000, 0, TCP_FLAG.syn, 64240, undefined, guest.synOptions(2));
    expect(backend.tcp).toHaveLength(2);
  });
});

describe("NetGateway: UDP and DNS", () => {
  it("keeps one flow per guest port and peer, and closes it when idle", async () => {
    const { backend, guest, gateway, timers } = await setup({ udpIdleMs: 10_000 });
    guest.sendUdp(OUTSIDE, 123, 5000, new Uint8Array([1]));
    guest.sendUdp(OUTSIDE, 123, 5000, new Uint8Array([2]));
    guest.sendUdp(OUTSIDE, 124, 5000, new Uint8Array([3]));
    expect(backend.udp).toHaveLength(2);
    expect(backend.udp[0]!.sent.map((b) => b[0])).toEqual([1, 2]);
    const reply = guest.nextUdp(5000);
    backend.udp[0]!.sink.message(new Uint8Array([9, 9]));
    const got = await reply;
    expect(formatIpv4(got.ip.src)).toBe("203.0.113.7");
    expect(got.srcPort).toBe(123);
    timers.advance(9_000);
    expect(gateway.stats().udpFlows).toBe(2);
    timers.advance(10_000);
    expect(gateway.stats().udpFlows).toBe(0);
    expect(backend.udp.every((f) => f.closed)).toBe(true);
  });

  it("evicts the oldest flow past the limit", async () => {
    const { backend, guest, gateway, timers } = await setup({ maxUdpFlows: 3 });
    for (let port = 1; port <= 4; port++) {
      guest.sendUdp(OUTSIDE, 1000 + port, 5000, new Uint8Array([port]));
      timers.advance(10);
    }
    expect(gateway.stats().udpFlows).toBe(3);
    expect(backend.udp[0]!.closed).toBe(true);
  });

  it("refuses with ICMP: prohibited for the policy, port unreachable at the DNS address", async () => {
    const { backend, guest } = await setup();
    backend.refused.add("192.168.1.1");
    let icmp = guest.nextIcmp((m) => m.type === ICMP_TYPE.unreachable);
    guest.sendUdp(ipv4("192.168.1.1"), 9, 5000, new Uint8Array(4));
    expect((await icmp).icmp.code).toBe(UNREACHABLE.prohibited);
    icmp = guest.nextIcmp((m) => m.type === ICMP_TYPE.unreachable);
    guest.sendUdp(DNS, 5353, 5000, new Uint8Array(4));
    expect((await icmp).icmp.code).toBe(UNREACHABLE.port);
  });

  it("keeps broadcast and multicast on the guest's side", async () => {
    const { backend, guest, gateway } = await setup();
    guest.sendUdp(ipv4("10.0.2.255"), 137, 137, new Uint8Array(4));
    guest.sendUdp(ipv4("224.0.0.251"), 5353, 5353, new Uint8Array(4));
    expect(backend.udp).toHaveLength(0);
    expect(gateway.stats().udpFlows).toBe(0);
  });

  it("answers DNS from the backend, SERVFAIL when it fails, NXDOMAIN for odd names without asking", async () => {
    const { backend, guest } = await setup();
    backend.answer = async (name) => {
      if (name === "broken.test") throw new Error("resolver down");
      return { rcode: DNS_RCODE.noError, records: [{ type: DNS_TYPE.A, address: ipv4("198.51.100.1"), ttl: 3600 }] };
    };
    const ok = await guest.dns(DNS, "example.test");
    expect(ok.rcode).toBe(DNS_RCODE.noError);
    expect(ok.answers[0]!.ttl).toBe(60); // capped
    expect((await guest.dns(DNS, "broken.test")).rcode).toBe(DNS_RCODE.servFail);
    expect((await guest.dns(DNS, "bad_name!.test")).rcode).toBe(DNS_RCODE.nxDomain);
    expect(backend.names).toEqual(["example.test", "broken.test"]);
  });
});

describe("NetGateway: frames", () => {
  it("drops frames for other MACs, IPv6, fragments and garbage, and says nothing", async () => {
    const { gateway, frames, guest } = await setup();
    const before = frames.length;
    const dropped = gateway.stats().dropped;
    const other = buildUdp({ srcMac: guest.mac, dstMac: parseMac("52:54:00:99:99:99"), src: guest.ip, dst: OUTSIDE, id: 1 }, 1, 2, new Uint8Array(1));
    gateway.receive(other);
    const v6 = new Uint8Array(60);
    v6.set(parseMac("52:55:0a:00:02:02"));
    v6.set(guest.mac, 6);
    v6[12] = ETHERTYPE.ipv6 >> 8;
    v6[13] = ETHERTYPE.ipv6 & 0xff;
    gateway.receive(v6);
    const fragment = allocIpv4Frame({ srcMac: guest.mac, dstMac: parseMac("52:55:0a:00:02:02"), src: guest.ip, dst: OUTSIDE, protocol: IP_PROTOCOL.udp, id: 3 }, 8);
    fragment[14 + 6] = 0x20;
    gateway.receive(fragment);
    gateway.receive(new Uint8Array(5));
    expect(frames.length).toBe(before);
    expect(gateway.stats().dropped).toBeGreaterThanOrEqual(dropped + 4);
  });

  it("does not open forwards before the guest is on the wire", () => {
    const gateway = new NetGateway({ backend: new FakeBackend(), timers: new ManualTimers() });
    expect(gateway.forward(80, new FakeStream())).toBeUndefined();
  });

  it("opens a forward from the gateway's address, and the guest's refusal destroys the host stream", async () => {
    const { gateway, guest } = await setup();
    guest.logTcp = true;
    const host = new FakeStream();
    const sink = gateway.forward(8080, host)!;
    expect(sink).toBeDefined();
    const syn = guest.tcpLog.at(-1)!;
    expect(syn.flags).toBe(TCP_FLAG.syn);
    expect(syn.dstPort).toBe(8080);
    expect(syn.srcPort).toBeGreaterThanOrEqual(49152);
    expect(host.destroyed).toBe(true); // the guest peer answers RST: nothing listens on 8080
    expect(gateway.stats().tcpFlows).toBe(0);
  });

  it("after dispose, destroys host streams, closes flows and sends nothing", async () => {
    const { backend, gateway, guest, frames } = await setup();
    const connecting = guest.connect(OUTSIDE, 80);
    backend.tcp[0]!.sink.connected();
    await connecting;
    guest.sendUdp(OUTSIDE, 53, 5000, new Uint8Array(1));
    gateway.dispose();
    expect(backend.tcp[0]!.stream.destroyed).toBe(true);
    expect(backend.udp[0]!.closed).toBe(true);
    const before = frames.length;
    guest.send(buildArp(parseMac("ff:ff:ff:ff:ff:ff"), { op: ARP_OP.request, senderMac: guest.mac, senderIp: guest.ip, targetMac: new Uint8Array(6), targetIp: GATEWAY }));
    expect(frames.length).toBe(before);
  });
});
