// The host NAT driven by a guest that sends what a Linux guest sends, over an in-memory net
// pipe: DHCP, ARP and ping for the gateway, DNS through node:dns, TCP to a real HTTP server on
// 127.0.0.1 (refused by default, reached through the gateway's address with allowHost), UDP
// echo, a port forward from 127.0.0.1:HOSTPORT into the guest, and backpressure both ways.
// Every address used here is on 127.0.0.0/8, is this machine's own, or is refused before any
// socket opens.

import { readFileSync } from "node:fs";
import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { formatIpv4, ipv4, readIpv4 } from "../../../core/net/addr.js";
import { DHCP_OPTION } from "../../../core/net/dhcp.js";
import { DNS_RCODE, DNS_TYPE } from "../../../core/net/dns.js";
import { ICMP_TYPE, UNREACHABLE } from "../../../core/net/icmp.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import { createNat, type Nat, type NatOptions } from "../../../main/net/nat.js";
import { GuestPeer, type GuestTcp } from "./guest-peer.js";

const GATEWAY = ipv4("10.0.2.2");
const DNS = ipv4("10.0.2.3");

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: NatOptions = {}): Promise<{ nat: Nat; guest: GuestPeer }> {
  const nat = createNat(options);
  const [hostEnd, guestEnd] = createPipePair();
  nat.attach(hostEnd);
  const guest = new GuestPeer((frame) => guestEnd.send(frame));
  guestEnd.onFrame((frame) => guest.receive(frame));
  cleanups.push(() => {
    nat.dispose();
    hostEnd.dispose();
  });
  return { nat, guest };
}

/** A guest with its lease and the gateway's MAC, as after `udhcpc` and the first ARP. */
async function online(options: NatOptions = {}): Promise<{ nat: Nat; guest: GuestPeer }> {
  const s = await setup(options);
  await s.guest.dhcp();
  await s.guest.arp(s.guest.gatewayIp);
  return s;
}

function pattern(size: number, seed = 7): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function httpServer(body: Uint8Array): Promise<{ port: number; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.closeAllConnections?.();
  return { port: (server.address() as net.AddressInfo).port, requests: () => requests };
}

/** GET / over the guest's TCP; resolves with the body once the server closes. */
async function httpGet(conn: GuestTcp): Promise<{ status: number; body: Uint8Array }> {
  conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 10.0.2.2\r\nConnection: close\r\n\r\n"));
  await conn.ended();
  const all = conn.received;
  let split = -1;
  for (let i = 0; i + 3 < all.length; i++) {
    if (all[i] === 13 && all[i + 1] === 10 && all[i + 2] === 13 && all[i + 3] === 10) {
      split = i;
      break;
    }
  }
  const head = new TextDecoder().decode(all.subarray(0, split));
  return { status: Number(head.split(" ")[1]), body: all.subarray(split + 4) };
}

function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() - start > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

describe("DHCP, ARP, ping", () => {
  it("leases 10.0.2.15 with the gateway as router and 10.0.2.3 as DNS", async () => {
    const { guest } = await setup();
    const lease = await guest.dhcp();
    expect(formatIpv4(lease.ip)).toBe("10.0.2.15");
    expect(formatIpv4(lease.router)).toBe("10.0.2.2");
    expect(lease.dns.map(formatIpv4)).toEqual(["10.0.2.3"]);
    expect(formatIpv4(lease.mask)).toBe("255.255.255.0");
    expect(formatIpv4(lease.serverId)).toBe("10.0.2.2");
    expect(lease.leaseSeconds).toBe(86400);
    expect(formatIpv4(lease.offer.yiaddr)).toBe("10.0.2.15");
    // udhcpc asked for the MTU (26) and broadcast address (28).
    expect([...lease.ack.options.get(DHCP_OPTION.mtu)!]).toEqual([0x05, 0xdc]);
    expect(formatIpv4(readIpv4(lease.ack.options.get(DHCP_OPTION.broadcast)!, 0))).toBe("10.0.2.255");
  });

  it("answers ARP for the gateway and the DNS address, and ping to both", async () => {
    const { guest } = await setup();
    await guest.dhcp();
    const mac = await guest.arp(GATEWAY);
    expect([...mac]).toEqual([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
    expect([...(await guest.arp(DNS))]).toEqual([...mac]);
    const data = new Uint8Array(56).map((_, i) => i * 3);
    const reply = await guest.ping(GATEWAY, 1, data);
    expect(reply.icmp.type).toBe(ICMP_TYPE.echoReply);
    expect(reply.ip.src).toBe(GATEWAY);
    expect([...reply.icmp.data]).toEqual([...data]);
    expect((await guest.ping(DNS, 2)).ip.src).toBe(DNS);
  });
});

describe("DNS through the host's resolver", () => {
  it("answers localhost and the names in /etc/hosts", async () => {
    const { guest } = await online();
    const local = await guest.dns(DNS, "localhost");
    expect(local.rcode).toBe(DNS_RCODE.noError);
    expect(local.answers.map((a) => formatIpv4(readIpv4(a.data, 0)))).toContain("127.0.0.1");

    const hosts = readFileSync("/etc/hosts", "utf8")
      .split("\n")
      .map((line) => line.replace(/#.*/, "").trim().split(/\s+/))
      .filter((f) => f.length >= 2 && /^\d+\.\d+\.\d+\.\d+$/.test(f[0]!) && f[1] !== "localhost");
    for (const [address, name] of hosts.slice(0, 2)) {
      const reply = await guest.dns(DNS, name!);
      expect(reply.rcode, name).toBe(DNS_RCODE.noError);
      expect(reply.answers.map((a) => formatIpv4(readIpv4(a.data, 0)))).toContain(address);
    }
  });

  it("says a known name has no IPv6 address (the guest's network is IPv4)", async () => {
    const { guest } = await online();
    const reply = await guest.dns(DNS, "localhost", DNS_TYPE.AAAA);
    expect(reply.rcode).toBe(DNS_RCODE.noError);
    expect(reply.answers).toEqual([]);
  });
});

describe("TCP out through host sockets", () => {
  it("refuses the host by default: RST at once, no request reaches it", async () => {
    const server = await httpServer(pattern(1000));
    const { guest, nat } = await online();
    const started = Date.now();
    await expect(guest.connect(GATEWAY, server.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await expect(guest.connect(ipv4("192.168.1.1"), 80)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await expect(guest.connect(ipv4("10.1.2.3"), 22)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(Date.now() - started).toBeLessThan(500);
    expect(server.requests()).toBe(0);
    expect(nat.stats().refused).toBe(3);
    expect(nat.stats().tcpFlows).toBe(0);
  });

  it("with allowHost, downloads 4 MiB from 127.0.0.1 through the gateway's address, byte-exact", async () => {
    const body = pattern(4 * 1024 * 1024);
    const server = await httpServer(body);
    const { guest, nat } = await online({ allowHost: true });
    const conn = await guest.connect(GATEWAY, server.port);
    const reply = await httpGet(conn);
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBe(body.length);
    expect(Buffer.compare(Buffer.from(reply.body), Buffer.from(body))).toBe(0);
    conn.end();
    await conn.closed();
    await until(() => nat.stats().tcpFlows === 0, "the flow to be released", 5000);
  });

  it("answers RST when nothing listens on the host port", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const { guest } = await online({ allowHost: true });
    await expect(guest.connect(GATEWAY, port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("carries half-close both ways: the guest's FIN reaches the host, the host's FIN the guest", async () => {
    let serverSaw = "";
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on("data", (b) => (serverSaw += b.toString()));
      socket.on("end", () => socket.end(`got ${serverSaw.length} bytes`));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { guest } = await online({ allowHost: true });
    const conn = await guest.connect(GATEWAY, (server.address() as net.AddressInfo).port);
    conn.write(new TextEncoder().encode("hello, host"));
    conn.end();
    await conn.ended();
    expect(new TextDecoder().decode(conn.received)).toBe("got 11 bytes");
    await conn.closed();
  });

  it("closes the guest's window when the host does not read, and reopens it when it does", async () => {
    let hostSocket: net.Socket | undefined;
    let got = 0;
    const server = net.createServer((socket) => {
      hostSocket = socket;
      socket.pause();
      socket.on("data", (b) => (got += b.length));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { guest } = await online({ allowHost: true });
    const conn = await guest.connect(GATEWAY, (server.address() as net.AddressInfo).port);
    const upload = pattern(16 * 1024 * 1024, 3);
    conn.write(upload);
    // The kernel buffers some; past that the gateway's window to the guest must close.
    await until(() => conn.zeroWindowsSeen > 0, "a zero window towards the guest");
    expect(conn.unsentOrUnacked).toBeGreaterThan(0);
    hostSocket!.resume();
    await until(() => got === upload.length, "the whole upload at the host", 20_000);
    conn.end();
  });

  it("stops reading the host when the guest's window is closed, and loses nothing", async () => {
    const body = pattern(8 * 1024 * 1024, 5);
    const server = await httpServer(body);
    const { guest, nat } = await online({ allowHost: true });
    const conn = await guest.connect(GATEWAY, server.port);
    conn.rcvCapacity = 256 * 1024;
    conn.pause();
    const get = httpGet(conn);
    await until(() => conn.receivedBytes >= 256 * 1024 - 2000, "the guest's buffer to fill");
    await new Promise((r) => setTimeout(r, 300));
    // The gateway holds at most its send buffer plus what is in flight.
    const flow = nat.stats();
    expect(flow.tcpFlows).toBe(1);
    expect(conn.receivedBytes).toBeLessThanOrEqual(256 * 1024);
    const resumeReading = setInterval(() => conn.resume(), 2);
    const reply = await get;
    clearInterval(resumeReading);
    expect(Buffer.compare(Buffer.from(reply.body), Buffer.from(body))).toBe(0);
  });
});

describe("UDP out through host sockets", () => {
  async function echoServer(): Promise<number> {
    const socket = dgram.createSocket("udp4");
    socket.on("message", (msg, from) => socket.send(msg, from.port, from.address));
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    cleanups.push(() => void socket.close());
    return socket.address().port;
  }

  it("with allowHost, echoes through a 127.0.0.1 server at the gateway's address", async () => {
    const port = await echoServer();
    const { guest, nat } = await online({ allowHost: true });
    for (const size of [1, 512, 1472]) {
      const data = pattern(size, size);
      const reply = guest.nextUdp(33333);
      guest.sendUdp(GATEWAY, port, 33333, data);
      const got = await reply;
      expect(got.ip.src).toBe(GATEWAY);
      expect(got.srcPort).toBe(port);
      expect([...got.payload]).toEqual([...data]);
    }
    expect(nat.stats().udpFlows).toBe(1);
  });

  it("refuses the host by default with ICMP administratively prohibited", async () => {
    const port = await echoServer();
    const { guest } = await online();
    const icmp = guest.nextIcmp((m) => m.type === ICMP_TYPE.unreachable);
    guest.sendUdp(GATEWAY, port, 33334, new Uint8Array([1, 2, 3]));
    const { icmp: message } = await icmp;
    expect(message.code).toBe(UNREACHABLE.prohibited);
    // It quotes the refused datagram's header, so the guest's stack finds the socket.
    expect(readIpv4(message.data, 16)).toBe(GATEWAY);
  });
});

/** This machine's first non-loopback IPv4 address, or undefined when it has none. */
function ownAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const info of list ?? []) if (info.family === "IPv4" && !info.internal) return info.address;
  }
  return undefined;
}

describe("the host's own addresses", () => {
  const own = ownAddress();
  const why = "this machine has no non-loopback IPv4 address to reach itself by";

  async function tcpServerOnAll(): Promise<{ port: number; accepted: () => number }> {
    let accepted = 0;
    const server = net.createServer((socket) => {
      accepted++;
      socket.on("error", () => {});
      socket.end("hello from the host");
    });
    await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
  }

  it.skipIf(!own)(`refuses TCP to a service on 0.0.0.0 reached at this machine's address unless allowHost (${own ?? why})`, async () => {
    const server = await tcpServerOnAll();
    const { guest, nat } = await online();
    await expect(guest.connect(ipv4(own!), server.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(nat.stats().refused).toBe(1);
    expect(server.accepted()).toBe(0);

    const allowed = await online({ allowHost: true });
    const conn = await allowed.guest.connect(ipv4(own!), server.port);
    await conn.ended();
    expect(new TextDecoder().decode(conn.received)).toBe("hello from the host");
    expect(server.accepted()).toBe(1);
  });

  it.skipIf(!own)(`refuses UDP to this machine's address unless allowHost (${own ?? why})`, async () => {
    const socket = dgram.createSocket("udp4");
    let heard = 0;
    socket.on("message", (msg, from) => {
      heard++;
      socket.send(msg, from.port, from.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, "0.0.0.0", resolve));
    cleanups.push(() => void socket.close());
    const port = socket.address().port;

    const { guest } = await online();
    const icmp = guest.nextIcmp((m) => m.type === ICMP_TYPE.unreachable);
    guest.sendUdp(ipv4(own!), port, 33335, new Uint8Array([1, 2, 3]));
    expect((await icmp).icmp.code).toBe(UNREACHABLE.prohibited);
    expect(heard).toBe(0);

    const allowed = await online({ allowHost: true });
    const reply = allowed.guest.nextUdp(33336);
    allowed.guest.sendUdp(ipv4(own!), port, 33336, new Uint8Array([4, 5, 6]));
    expect([...(await reply).payload]).toEqual([4, 5, 6]);
  });
  it("judges a DNS answer where it leads: a name for this machine is refused at connect unless allowHost", async () => {
    const server = await tcpServerOnAll();
    const { guest } = await online();
    const reply = await guest.dns(DNS, "localhost");
    const address = readIpv4(reply.answers[0]!.data, 0);
    await expect(guest.connect(address, server.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(server.accepted()).toBe(0);

    const allowed = await online({ allowHost: true });
    const conn = await allowed.guest.connect(address, server.port);
    await conn.ended();
    expect(new TextDecoder().decode(conn.received)).toBe("hello from the host");
  });
});

describe("port forwards into the guest", () => {
  it("connects 127.0.0.1:HOSTPORT to the guest's port; the guest echoes 1 MiB back", async () => {
    const { guest, nat } = await online({ forwards: [{ hostPort: 0, guestPort: 8080 }] });
    const [bound] = await nat.ready;
    let accepted: GuestTcp | undefined;
    guest.listen(8080, (conn) => {
      accepted = conn;
      conn.onData = (bytes) => conn.write(bytes.slice());
    });
    const data = pattern(1024 * 1024, 11);
    const socket = net.connect(bound!.hostPort, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (b) => chunks.push(b));
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.write(data);
    await until(() => chunks.reduce((n, c) => n + c.length, 0) >= data.length, "the echo");
    expect(Buffer.compare(Buffer.concat(chunks), Buffer.from(data))).toBe(0);
    expect(formatIpv4(accepted!.remoteIp)).toBe("10.0.2.2");
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.end();
    await accepted!.ended();
    accepted!.end();
    await closed;
  });

  it("drops the host connection when the guest refuses the port", async () => {
    const { nat } = await online({ forwards: [{ hostPort: 0, guestPort: 9999 }] });
    const [bound] = await nat.ready;
    const socket = net.connect(bound!.hostPort, "127.0.0.1");
    socket.on("error", () => {});
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    expect(nat.stats().tcpFlows).toBe(0);
  });

  it("says which host port is taken and what to do", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as net.AddressInfo).port;
    const errors: string[] = [];
    const { nat } = await setup({ name: "tiny", forwards: [{ hostPort: port, guestPort: 80 }], onError: (m) => errors.push(m) });
    await expect(nat.ready).rejects.toThrow(`guest "tiny": host port ${port} (forwarded to guest port 80) is in use by another program`);
  });
});
