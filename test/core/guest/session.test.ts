// GuestSession against a fake emulator: serial output reaches the console pipe in batches,
// typed bytes reach serial port 0, the phase follows the prompt, the text screen follows the
// screen events, and dispose leaves no listener behind.

import { describe, expect, it } from "vitest";
import type { Event as V86Event } from "v86";
import { GuestSession, type EmulatorLike, type GuestPhase } from "../../../core/guest/session.js";
import { createPipePair, type FramePipe } from "../../../core/pipe/frame-pipe.js";

type Listener = (value: unknown) => void;

class FakeEmulator implements EmulatorLike {
  readonly listeners = new Map<string, Set<Listener>>();
  readonly sent: { port: number; data: Uint8Array }[] = [];

  add_listener<E extends keyof V86Event>(event: E, listener: (value: V86Event[E]) => void): void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener);
  }

  remove_listener<E extends keyof V86Event>(event: E, listener: (value: V86Event[E]) => void): void {
    this.listeners.get(event)?.delete(listener as Listener);
  }

  serial_send_bytes(port: number, data: Uint8Array): void {
    this.sent.push({ port, data: data.slice() });
  }

  emit<E extends keyof V86Event>(event: E, value: V86Event[E]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) listener(value);
  }

  /** Bytes leaving the guest on serial port 0, one event per byte as v86 does it. */
  serialOut(text: string | Uint8Array): void {
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    for (const byte of bytes) this.emit("serial0-output-byte", byte);
  }

  get listenerCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function collect(pipe: FramePipe): Uint8Array[] {
  const frames: Uint8Array[] = [];
  pipe.onFrame((frame) => frames.push(frame));
  return frames;
}

function concat(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const frame of frames) {
    out.set(frame, at);
    at += frame.length;
  }
  return out;
}

const PROMPT = "tiny:[^\\n]*# ";

describe("GuestSession console", () => {
  it("sends the serial bytes of one emulator slice as one frame on the console pipe", async () => {
    const emulator = new FakeEmulator();
    const [near, far] = createPipePair();
    const session = new GuestSession(emulator, { console: near });
    const frames = collect(far);
    emulator.serialOut("Hello, serial\r\n");
    await settle();
    expect(frames).toHaveLength(1);
    expect(new TextDecoder().decode(frames[0])).toBe("Hello, serial\r\n");

    emulator.serialOut(Uint8Array.of(0, 0x1b, 0x80, 0xff));
    await settle();
    expect(frames).toHaveLength(2);
    expect(frames[1]).toEqual(Uint8Array.of(0, 0x1b, 0x80, 0xff));
    session.dispose();
  });

  it("loses and reorders nothing when one slice outputs more than a frame holds", async () => {
    const emulator = new FakeEmulator();
    const [near, far] = createPipePair();
    const session = new GuestSession(emulator, { console: near });
    const frames = collect(far);
    const bytes = new Uint8Array(40_000).map((_, i) => (i * 31) & 0xff);
    emulator.serialOut(bytes);
    await settle();
    expect(frames.length).toBeGreaterThanOrEqual(1);
    expect(concat(frames)).toEqual(bytes);
    session.dispose();
  });

  it("types a frame from the far end into serial port 0", async () => {
    const emulator = new FakeEmulator();
    const [near, far] = createPipePair();
    const session = new GuestSession(emulator, { console: near });
    far.send(new TextEncoder().encode("ls -l\r"));
    far.send(Uint8Array.of(3));
    await settle();
    expect(emulator.sent).toEqual([
      { port: 0, data: new TextEncoder().encode("ls -l\r") },
      { port: 0, data: Uint8Array.of(3) },
    ]);
    session.dispose();
  });

  it("reports serial output to onSerial without a console pipe", async () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator);
    const batches: Uint8Array[] = [];
    session.onSerial((bytes) => batches.push(bytes));
    emulator.serialOut("abc");
    await settle();
    expect(batches).toEqual([new TextEncoder().encode("abc")]);
    session.sendSerial(Uint8Array.of(0x0d));
    expect(emulator.sent).toEqual([{ port: 0, data: Uint8Array.of(0x0d) }]);
    session.dispose();
  });
});

describe("GuestSession phase", () => {
  it("is booting until the serial output ends with the prompt, then running", async () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator, { prompt: PROMPT });
    const phases: GuestPhase[] = [];
    session.onPhase((phase) => phases.push(phase));
    expect(session.phase).toBe("booting");

    emulator.emit("emulator-started", undefined);
    emulator.serialOut("[    0.000000] Linux version 6.1\r\nLoading, please wait...\r\n");
    await settle();
    expect(session.phase).toBe("booting");

    emulator.serialOut("\r\ntiny:/# \x1b[6n");
    await settle();
    expect(session.phase).toBe("running");
    expect(phases).toEqual(["running"]);

    emulator.serialOut("ls\r\ntiny:/# ");
    await settle();
    expect(phases).toEqual(["running"]);
    session.dispose();
  });

  it("sees a prompt split across two slices, and UTF-8 split across them", async () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator, { prompt: "tiny:[^\\n]*é# " });
    const prompt = new TextEncoder().encode("\r\ntiny:/é# ");
    const split = prompt.indexOf(0xc3) + 1; // inside the two bytes of "é"
    emulator.serialOut(prompt.subarray(0, split));
    await settle();
    expect(session.phase).toBe("booting");
    emulator.serialOut(prompt.subarray(split));
    await settle();
    expect(session.phase).toBe("running");
    session.dispose();
  });

  it("is running once the emulator starts when there is no prompt to wait for", () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator);
    expect(session.phase).toBe("booting");
    emulator.emit("emulator-started", undefined);
    expect(session.phase).toBe("running");
    session.dispose();
  });
});

describe("GuestSession screen", () => {
  it("shows screen-put-char events in its text screen", () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator);
    [..."C:\\>"].forEach((ch, col) => emulator.emit("screen-put-char", [2, col, ch.charCodeAt(0)]));
    emulator.emit("screen-put-char", [0, 0, 0xc9]);
    expect(session.screen.text()).toBe("╔\n\nC:\\>");
    session.dispose();
  });

  it("follows screen-set-size in text mode", () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator);
    emulator.emit("screen-set-size", [40, 25, 0]);
    emulator.emit("screen-put-char", [0, 39, 0x5a]);
    expect(session.screen.text()).toBe(" ".repeat(39) + "Z");
    session.dispose();
  });
});

describe("GuestSession dispose", () => {
  it("removes every listener it added and closes the console pipe", async () => {
    const emulator = new FakeEmulator();
    const [near, far] = createPipePair();
    let farClosed = false;
    far.onClose(() => (farClosed = true));
    expect(emulator.listenerCount).toBe(0);
    const session = new GuestSession(emulator, { console: near, prompt: PROMPT });
    expect(emulator.listenerCount).toBeGreaterThan(0);
    session.dispose();
    expect(emulator.listenerCount).toBe(0);
    expect(near.closed).toBe(true);
    await settle();
    expect(farClosed).toBe(true);
    expect(far.closed).toBe(true);
  });

  it("removes the emulator-started listener too when there is no prompt", () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator);
    expect(emulator.listeners.get("emulator-started")?.size).toBe(1);
    session.dispose();
    expect(emulator.listenerCount).toBe(0);
  });

  it("still delivers the output of the last slice before the pipe closes", async () => {
    const emulator = new FakeEmulator();
    const [near, far] = createPipePair();
    const session = new GuestSession(emulator, { console: near });
    const frames = collect(far);
    emulator.serialOut("bye\r\n");
    session.dispose();
    await settle();
    expect(frames.map((f) => new TextDecoder().decode(f))).toEqual(["bye\r\n"]);
  });

  it("types nothing into the guest after dispose", () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator);
    session.dispose();
    session.sendSerial(Uint8Array.of(1));
    expect(emulator.sent).toEqual([]);
  });
});

describe("GuestSession stop", () => {
  const halt = (emulator: FakeEmulator): void => {
    for (const listener of [...(emulator.listeners.get("cpu-event-halt") ?? [])]) listener(undefined);
  };

  it("reports once a kernel panic on the serial console", async () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator, { prompt: PROMPT });
    const stops: unknown[] = [];
    const seen: string[] = [];
    session.onSerial((bytes) => seen.push(new TextDecoder().decode(bytes)));
    session.onStop((stop) => stops.push({ ...stop, afterOutput: seen.join("").includes("No working init") }));
    emulator.serialOut("[    2.5] Kernel panic - not syncing: No working init found.\r\n");
    await settle();
    emulator.serialOut("[    2.6] ---[ end Kernel panic - not syncing: No working init found. ]---\r\n");
    halt(emulator);
    await settle();
    expect(stops).toEqual([{ state: "failed", reason: "the guest's kernel panicked: No working init found.", afterOutput: true }]);
    expect(session.phase).toBe("booting");
    session.dispose();
  });

  it("reports a panic on the text screen when asked to look, and a halted processor", async () => {
    const emulator = new FakeEmulator();
    const session = new GuestSession(emulator);
    const stops: unknown[] = [];
    session.onStop((stop) => stops.push(stop));
    session.checkScreen();
    expect(stops).toEqual([]);
    [..."Kernel panic - not syncing: Fatal exception"].forEach((ch, col) => emulator.emit("screen-put-char", [3, col, ch.charCodeAt(0)]));
    session.checkScreen();
    await settle();
    expect(stops).toEqual([{ state: "failed", reason: "the guest's kernel panicked: Fatal exception" }]);
    session.dispose();

    const halted = new FakeEmulator();
    const other = new GuestSession(halted);
    halt(halted);
    expect(other.stopped?.state).toBe("failed");
    other.dispose();
    expect(halted.listenerCount).toBe(0);
  });
});
