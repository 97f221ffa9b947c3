// Throughput of the gateway's TCP: 32 MiB from a host server on 127.0.0.1 to the guest-side
// peer, and 32 MiB back, over an in-memory net pipe. Printed in MiB/s, not asserted as a time
// (the machine is shared); the bytes are checked.

import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ipv4 } from "../../../core/net/addr.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import { createNat } from "../../../main/net/nat.js";
import { GuestPeer } from "./guest-peer.js";

const SIZE = 32 * 1024 * 1024;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A byte stream whose value at offset i is a function of i: checkable without keeping it. */
function byteAt(i: number): number {
  return (i * 31 + (i >>> 11)) & 0xff;
}
function chunkAt(offset: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = byteAt(offset + i);
  return b;
}

async function online() {
  const nat = createNat({ allowHost: true });
  const [hostEnd, guestEnd] = createPipePair();
  nat.attach(hostEnd);
  const guest = new GuestPeer((frame) => guestEnd.send(frame));
  guestEnd.onFrame((frame) => guest.receive(frame));
  cleanups.push(() => {
    nat.dispose();
    hostEnd.dispose();
  });
  await guest.dhcp();
  await guest.arp(guest.gatewayIp);
  return { nat, guest };
}

async function listen(onSocket: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, onSocket);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

describe("TCP throughput through the gateway", () => {
  it("downloads 32 MiB host -> guest", { timeout: 120_000 }, async () => {
    const port = await listen((socket) => {
      let sent = 0;
      const pump = (): void => {
        while (sent < SIZE) {
          const n = Math.min(64 * 1024, SIZE - sent);
          const ok = socket.write(chunkAt(sent, n));
          sent += n;
          if (!ok) return void socket.once("drain", pump);
        }
        socket.end();
      };
      pump();
    });
    const { guest } = await online();
    const conn = await guest.connect(ipv4("10.0.2.2"), port);
    conn.keepData = false;
    let bad = -1;
    let offset = 0;
    conn.onData = (bytes) => {
      for (let i = 0; i < bytes.length; i += 97) if (bad < 0 && bytes[i] !== byteAt(offset + i)) bad = offset + i;
      offset += bytes.length;
    };
    const start = performance.now();
    await conn.ended();
    const seconds = (performance.now() - start) / 1000;
    console.log(`gateway TCP download, 32 MiB: ${(SIZE / 1048576 / seconds).toFixed(1)} MiB/s (${seconds.toFixed(2)} s)`);
    expect(conn.receivedBytes).toBe(SIZE);
    expect(bad).toBe(-1);
    conn.end();
  });

  it("uploads 32 MiB guest -> host", { timeout: 120_000 }, async () => {
    let got = 0;
    let bad = -1;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const port = await listen((socket) => {
      socket.on("data", (b: Buffer) => {
        for (let i = 0; i < b.length; i += 97) if (bad < 0 && b[i] !== byteAt(got + i)) bad = got + i;
        got += b.length;
      });
      socket.on("end", () => {
        socket.end();
        done();
      });
    });
    const { guest } = await online();
    const conn = await guest.connect(ipv4("10.0.2.2"), port);
    const start = performance.now();
    for (let at = 0; at < SIZE; at += 1024 * 1024) conn.write(chunkAt(at, 1024 * 1024));
    conn.end();
    await finished;
    const seconds = (performance.now() - start) / 1000;
    console.log(`gateway TCP upload, 32 MiB: ${(SIZE / 1048576 / seconds).toFixed(1)} MiB/s (${seconds.toFixed(2)} s)`);
    expect(got).toBe(SIZE);
    expect(bad).toBe(-1);
  });
});
