// The agent's virtio-console relay as the guest sees it: a message larger than the guest's 16
// receive buffers arrives whole, in pieces of at most 4096 bytes sent only while the guest has
// a buffer posted (v86 drops input that finds none), however slowly the guest takes them; and
// nothing is sent while v86 is still setting up (a resumed guest's agent would miss the hello).
import { describe, expect, it } from "vitest";
import { agentRelay, virtioConsoleRoom, type ListenerHost } from "../../../core/guest/relays.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";

describe("agentRelay", () => {
  it("sends a 300 KiB message only into posted buffers, so none of it is dropped", async () => {
    const delivered: Uint8Array[] = [];
    let buffers = 16;
    const emulator: ListenerHost = { add_listener: () => {}, remove_listener: () => {} };
    // v86's device: input finding no buffer is dropped.
    const bus = {
      send: (_event: string, value: unknown) => {
        if (buffers === 0) return;
        buffers--;
        delivered.push(value as Uint8Array);
      },
    };
    const [host, guest] = createPipePair();
    const relay = agentRelay(emulator, bus, guest, () => buffers > 0);
    const message = Uint8Array.from({ length: 300 * 1024 }, (_, i) => (i * 31) & 0xff);
    host.send(message);
    // The guest takes a few buffers at a time, now and then.
    for (let round = 0; round < 200 && delivered.reduce((n, d) => n + d.length, 0) < message.length; round++) {
      await new Promise((r) => setTimeout(r, 3));
      buffers += 5;
    }
    const joined = new Uint8Array(delivered.reduce((n, d) => n + d.length, 0));
    let at = 0;
    for (const piece of delivered) {
      expect(piece.length).toBeLessThanOrEqual(4096);
      joined.set(piece, at);
      at += piece.length;
    }
    expect(joined).toEqual(message);
    relay.dispose();
  });
});

describe("virtioConsoleRoom", () => {
  it("has no room while v86 sets up, then as much as the guest has buffers posted", () => {
    const emulator: { emulator_bus: object; v86?: unknown } = { emulator_bus: {} };
    const room = virtioConsoleRoom(emulator);
    expect(room()).toBe(false); // its code not loaded yet
    emulator.v86 = { cpu: { devices: {} } };
    expect(room()).toBe(false); // loaded, its devices not made yet
    let posted = false;
    emulator.v86 = { cpu: { devices: { virtio_console: { virtio: { queues: [{ has_request: () => posted }] } } } } };
    expect(room()).toBe(false);
    posted = true;
    expect(room()).toBe(true);
    // A stand-in without v86's bus (no device to wait for) sends at once.
    expect(virtioConsoleRoom({})()).toBe(true);
  });
});
