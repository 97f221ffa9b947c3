// The agent protocol under random and mutated input (seeded, so a failure can be replayed):
// the decoders never throw, what they accept re-encodes to the same message, the host session
// never throws and either keeps working or disconnects with a reason, and a new session on a
// fresh stream works afterwards.

import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "../../core/agent/frame.js";
import { decodeMessage, encodeMessage, type AgentMessage } from "../../core/agent/messages.js";
import { AgentSession, type AgentTransport } from "../../core/agent/session.js";
import { toDisposable } from "../../core/disposable.js";

/** mulberry32: a small seeded generator. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const int = (rand: Rand, n: number): number => Math.floor(rand() * n);
const bytes = (rand: Rand, n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(rand, 256));

const SAMPLES: AgentMessage[] = [
  { type: "hello", minVersion: 1, maxVersion: 1, software: "umagent 1.0.0", os: "Linux", hostname: "tiny", capabilities: ["ping", "exec"], pid: 9 },
  { type: "pong", id: 1 },
  { type: "ping", id: 2 },
  { type: "execResult", id: 3, status: 1, signal: 0, timedOut: false, truncated: false, output: new Uint8Array([104, 105, 10]) },
  { type: "clipboard", text: "héllo" },
  { type: "display", mode: "text", width: 80, height: 25 },
  { type: "error", id: 4, message: "no" },
  { type: "exec", id: 5, command: "ls", timeoutMs: 10, maxOutput: 10 },
  {
    type: "windows",
    windows: [
      { id: 7, title: "xcalc", x: 10, y: -5, width: 226, height: 320, minimized: false, focused: true, pid: 12, className: "XCalc", frame: { x: 5, y: -28, width: 236, height: 353 } },
      { id: 9, title: "", x: 0, y: 0, width: 1, height: 1, minimized: true, focused: false, frame: { x: 0, y: 0, width: 1, height: 1 } },
    ],
  },
  { type: "apps", id: 6, apps: [{ id: "xcalc", name: "Xcalc", exec: "xcalc", icon: new Uint8Array([0x89, 0x50]) }] },
  { type: "launch", id: 7, app: "xcalc" },
  { type: "launched", id: 7, window: 7, pid: 12 },
  { type: "windowAction", id: 7, window: 7, action: { kind: "move", x: -3, y: 9 } },
  { type: "setDisplay", width: 800, height: 600 },
];

/** A valid message payload with a few bytes changed, cut short or extended. */
function mutate(rand: Rand, payload: Uint8Array): Uint8Array {
  let out = payload.slice();
  const edits = 1 + int(rand, 3);
  for (let e = 0; e < edits; e++) {
    const kind = int(rand, 4);
    if (kind === 0 && out.length > 0) out[int(rand, out.length)] = int(rand, 256);
    else if (kind === 1 && out.length > 0) out = out.slice(0, int(rand, out.length));
    else if (kind === 2) out = Uint8Array.from([...out, ...bytes(rand, 1 + int(rand, 8))]);
    else if (out.length > 6) {
      const at = 6 + int(rand, out.length - 6);
      out[at] = out[at]! ^ (1 << int(rand, 8));
    }
  }
  return out;
}

function pick<T>(rand: Rand, list: readonly T[]): T {
  return list[int(rand, list.length)]!;
}

describe("agent decoders under random input", () => {
  it("decodeMessage never throws, and what it accepts re-encodes to the same message", () => {
    const rand = random(0xa9e47);
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const payload = i % 2 === 0 ? bytes(rand, int(rand, 80)) : mutate(rand, encodeMessage(pick(rand, SAMPLES)));
      if (i % 4 === 0 && payload.length > 1) payload[0] = 1;
      const decoded = decodeMessage(payload);
      if (!decoded.ok || decoded.message.type === "unknown") continue;
      accepted++;
      const again = decodeMessage(encodeMessage(decoded.message, decoded.version));
      expect(again, `payload ${i}: ${[...payload].join(",")}`).toEqual(decoded);
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it("FrameDecoder gives the same frames whatever the chunking, and never throws on garbage", () => {
    const rand = random(0xf4a3e);
    for (let round = 0; round < 200; round++) {
      const payloads = Array.from({ length: 1 + int(rand, 10) }, () => bytes(rand, int(rand, 300)));
      const stream = Uint8Array.from(payloads.flatMap((p) => [...encodeFrame(p)]));
      const decoder = new FrameDecoder();
      const frames: Uint8Array[] = [];
      for (let at = 0; at < stream.length; ) {
        const size = 1 + int(rand, 64);
        frames.push(...decoder.feed(stream.subarray(at, at + size)).frames);
        at += size;
      }
      expect(frames).toEqual(payloads);
      const garbage = new FrameDecoder();
      for (let k = 0; k < 20; k++) garbage.feed(bytes(rand, int(rand, 50)));
      expect(garbage.error === undefined || typeof garbage.error === "string").toBe(true);
    }
  });
});

/** A guest that answers pings, over a synchronous in-memory stream. */
function fakeGuest(): { transport: AgentTransport; emit(bytes: Uint8Array): void; listeners: () => number } {
  const listeners = new Set<(bytes: Uint8Array) => void>();
  const decoder = new FrameDecoder();
  const emit = (b: Uint8Array): void => {
    for (const listener of [...listeners]) listener(b);
  };
  return {
    transport: {
      send(chunk) {
        if (chunk.length > 4096) throw new Error(`host send of ${chunk.length} bytes`);
        for (const payload of decoder.feed(chunk).frames) {
          const decoded = decodeMessage(payload);
          if (decoded.ok && decoded.message.type === "ping") emit(encodeFrame(encodeMessage({ type: "pong", id: decoded.message.id })));
        }
      },
      onData(listener) {
        listeners.add(listener);
        return toDisposable(() => listeners.delete(listener));
      },
    },
    emit,
    listeners: () => listeners.size,
  };
}

describe("AgentSession under random and mutated frames", () => {
  it("never throws, disconnects cleanly on garbage, and a new session on a fresh stream works", async () => {
    const rand = random(0x5e55);
    let disconnected = 0;
    let survived = 0;
    for (let round = 0; round < 300; round++) {
      const guest = fakeGuest();
      const session = new AgentSession(guest.transport);
      const reasons: string[] = [];
      session.onDisconnect((reason) => reasons.push(reason));
      session.onClipboard(() => {});
      guest.emit(encodeFrame(encodeMessage(SAMPLES[0]!)));
      expect(session.state).toBe("ready");
      const pending = session.ping(50).then(
        () => "answered",
        (error: Error) => error.message,
      );

      // A stream of valid, unknown, mutated and random frames, cut into random pieces.
      const parts: number[] = [];
      for (let k = 0; k < 1 + int(rand, 8); k++) {
        const kind = int(rand, 5);
        if (kind === 0) parts.push(...encodeFrame(encodeMessage(pick(rand, SAMPLES))));
        else if (kind === 1) parts.push(...encodeFrame(Uint8Array.from([1, 100 + int(rand, 100), 0, 0, 0, 0, ...bytes(rand, int(rand, 20))])));
        else if (kind === 2) parts.push(...encodeFrame(mutate(rand, encodeMessage(pick(rand, SAMPLES)))));
        else if (kind === 3) parts.push(...bytes(rand, 1 + int(rand, 40)));
        else parts.push(0x55, 0x4d, ...bytes(rand, 4));
      }
      const stream = Uint8Array.from(parts);
      for (let at = 0; at < stream.length; ) {
        const size = 1 + int(rand, 32);
        expect(() => guest.emit(stream.subarray(at, at + size))).not.toThrow();
        at += size;
      }

      const outcome = await pending;
      expect(["ready", "disconnected"]).toContain(session.state);
      if (session.state === "disconnected") {
        disconnected++;
        expect(reasons).toHaveLength(1);
        expect(reasons[0]!.length).toBeGreaterThan(10);
        expect(guest.listeners()).toBe(0);
        expect(outcome === "answered" || /agent disconnected|did not answer|restarted/.test(outcome)).toBe(true);
        // Nothing after the disconnect reaches the session or throws.
        expect(() => guest.emit(bytes(rand, 100))).not.toThrow();
      } else {
        survived++;
        expect(reasons).toEqual([]);
        await expect(session.ping(200)).resolves.toBeGreaterThanOrEqual(0);
      }
      session.dispose();

      // The host can start over with a fresh stream.
      const fresh = fakeGuest();
      const next = new AgentSession(fresh.transport);
      fresh.emit(encodeFrame(encodeMessage(SAMPLES[0]!)));
      await expect(next.ping(200)).resolves.toBeGreaterThanOrEqual(0);
      next.dispose();
    }
    expect(disconnected).toBeGreaterThan(50);
    expect(survived).toBeGreaterThan(10);
  });
});
