// A resumed guest meets a new NAT (the old one ended with the run it was saved in): it keeps its
// address, since the lease is the same one every time, and a TCP flow it still believes open is
// answered with RST, so the guest's program sees "connection reset" at once, not a hang.

import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ipv4 } from "../../../core/net/addr.js";
import { TCP_FLAG, type TcpSegment } from "../../../core/net/tcp.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import { createNat, type Nat } from "../../../main/net/nat.js";
import { GuestPeer } from "./guest-peer.js";

const GATEWAY = ipv4("10.0.2.2");
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function natWithGuest(): { nat: Nat; guest: GuestPeer } {
  const nat = createNat({ allowHost: true });
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

async function until<T>(find: () => T | undefined, ms = 2000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("NAT for a resumed guest", () => {
  it("gives the same lease and resets a TCP flow of the run the guest was saved in", async () => {
    const server = net.createServer((socket) => socket.on("error", () => undefined));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as net.AddressInfo).port;

    const before = natWithGuest();
    const lease = await before.guest.dhcp();
    const gatewayMac = await before.guest.arp(before.guest.gatewayIp);
    const conn = await before.guest.connect(GATEWAY, port);
    before.nat.dispose();

    // The resumed guest: same MAC and address, its flow still open in its memory.
    const after = natWithGuest();
    after.guest.ip = lease.ip;
    after.guest.gatewayIp = before.guest.gatewayIp;
    after.guest.gatewayMac = gatewayMac;
    after.guest.logTcp = true;
    after.guest.rawTcp(GATEWAY, conn.localPort, port, 1000, 0x12345678, TCP_FLAG.ack | TCP_FLAG.psh, 65535, new TextEncoder().encode("more"));
    const reset = await until<TcpSegment>(() => after.guest.tcpLog.find((s) => s.flags & TCP_FLAG.rst));
    expect(reset).toMatchObject({ srcPort: port, dstPort: conn.localPort, seq: 0x12345678 });
    expect(after.nat.stats().tcpFlows).toBe(0);

    // Its next renewal is acknowledged with the address it has.
    const renewed = await after.guest.dhcp();
    expect(renewed.ip).toBe(lease.ip);
    expect(renewed.router).toBe(lease.router);
  });
});
