// FramePipes: one send is one frame on the far side, in order, never merged or split, and
// closing one end is seen by the other. Checked in memory, over a real MessageChannel, and over
// a port that carries messages as Electron's MessagePortMain does (V8's serializer, no transfer).

import { describe, expect, it } from "vitest";
import { Deserializer, Serializer } from "node:v8";
import {
  EARLY_LIMIT,
  PORT_END,
  exactBytes,
  createPipePair,
  isPipeService,
  pendingPipe,
  portMessageToFrame,
  portPipe,
  type CarrierPipe,
  type FramePipe,
} from "../../../core/pipe/frame-pipe.js";

/** Lets queued microtasks and one turn of the event loop run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
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

function collect(pipe: FramePipe): Uint8Array[] {
  const frames: Uint8Array[] = [];
  pipe.onFrame((frame) => frames.push(frame));
  return frames;
}

/** Frame i: a varying size (zero included) and content that says which frame it is. */
function frameOf(i: number): Uint8Array {
  const size = (i * 37) % 301;
  const frame = new Uint8Array(size);
  for (let j = 0; j < size; j++) frame[j] = (i + j * 7) & 0xff;
  return frame;
}

describe("createPipePair", () => {
  it("delivers each send as exactly one frame, in order, both ways", async () => {
    const [a, b] = createPipePair();
    const atB = collect(b);
    const atA = collect(a);
    for (let i = 0; i < 1000; i++) a.send(frameOf(i));
    for (let i = 0; i < 10; i++) b.send(frameOf(i + 5000));
    await settle();
    expect(atB).toHaveLength(1000);
    atB.forEach((frame, i) => expect(frame, `frame ${i}`).toEqual(frameOf(i)));
    expect(atA).toHaveLength(10);
    atA.forEach((frame, i) => expect(frame).toEqual(frameOf(i + 5000)));
  });

  it("keeps frames sent before the far side subscribes and hands them over on subscribe", async () => {
    const [a, b] = createPipePair();
    a.send(Uint8Array.of(1));
    a.send(Uint8Array.of(2, 2));
    await settle();
    const frames: Uint8Array[] = [];
    b.onFrame((frame) => frames.push(frame));
    expect(frames).toEqual([Uint8Array.of(1), Uint8Array.of(2, 2)]);
    a.send(Uint8Array.of(3));
    await settle();
    expect(frames).toEqual([Uint8Array.of(1), Uint8Array.of(2, 2), Uint8Array.of(3)]);
  });

  it("delivers what was sent, not what the sender's buffer holds later", async () => {
    const [a, b] = createPipePair();
    const frames = collect(b);
    const buffer = Uint8Array.of(1, 2, 3, 4);
    a.send(buffer);
    buffer.fill(9);
    a.send(buffer.subarray(1, 3));
    await settle();
    expect(frames).toEqual([Uint8Array.of(1, 2, 3, 4), Uint8Array.of(9, 9)]);
  });

  it("tells the other side when one side is disposed, after the frames sent before it", async () => {
    const [a, b] = createPipePair();
    const events: string[] = [];
    b.onFrame((frame) => events.push(`frame ${frame.length}`));
    b.onClose(() => events.push("close"));
    a.send(new Uint8Array(3));
    a.dispose();
    expect(a.closed).toBe(true);
    await settle();
    expect(b.closed).toBe(true);
    expect(events).toEqual(["frame 3", "close"]);
  });

  it("ignores sends after close, on either side", async () => {
    const [a, b] = createPipePair();
    const atA = collect(a);
    const atB = collect(b);
    a.dispose();
    a.send(Uint8Array.of(1));
    await settle();
    b.send(Uint8Array.of(2));
    await settle();
    expect(atA).toEqual([]);
    expect(atB).toEqual([]);
  });

  it("runs an onClose listener added after the close", async () => {
    const [a, b] = createPipePair();
    b.dispose();
    await settle();
    let closed = false;
    a.onClose(() => (closed = true));
    await settle();
    expect(closed).toBe(true);
  });

  it("stops delivering to a listener once its subscription is disposed", async () => {
    const [a, b] = createPipePair();
    const frames: Uint8Array[] = [];
    const sub = b.onFrame((frame) => frames.push(frame));
    a.send(Uint8Array.of(1));
    await settle();
    sub.dispose();
    a.send(Uint8Array.of(2));
    await settle();
    expect(frames).toEqual([Uint8Array.of(1)]);
  });
});

describe("portMessageToFrame", () => {
  it("reads only the explicit goodbye as the end of the pipe, never a message it cannot decode", () => {
    expect(portMessageToFrame(PORT_END)).toBe("end");
    expect(portMessageToFrame(structuredClone(PORT_END))).toBe("end");
    expect(portMessageToFrame(null)).toBeUndefined();
  });

  it("passes a Uint8Array through and wraps an ArrayBuffer", () => {
    const bytes = Uint8Array.of(1, 2, 3);
    expect(portMessageToFrame(bytes)).toBe(bytes);
    const frame = portMessageToFrame(Uint8Array.of(4, 5).buffer);
    expect(frame).toBeInstanceOf(Uint8Array);
    expect(frame).toEqual(Uint8Array.of(4, 5));
  });

  it("ignores anything else", () => {
    for (const data of [undefined, null, "text", "end", 42, {}, [1, 2], new Uint16Array(2), { data: Uint8Array.of(1) }, { unmachinePipe: "End" }]) {
      expect(portMessageToFrame(data)).toBeUndefined();
    }
  });
});

describe("portPipe", () => {
  function fakePort() {
    const posted: unknown[] = [];
    let closes = 0;
    const port = {
      postMessage: (message: unknown, ...rest: unknown[]) => {
        // Nothing may be transferred: Electron's MessagePortMain takes only ports there.
        expect(rest).toEqual([]);
        posted.push(message);
      },
      close: () => void closes++,
    };
    return { port, posted, closes: () => closes };
  }

  it("posts each frame, says goodbye explicitly and closes the port on dispose", () => {
    const { port, posted, closes } = fakePort();
    const pipe = portPipe(port);
    pipe.send(Uint8Array.of(1, 2));
    pipe.dispose();
    expect(posted).toEqual([Uint8Array.of(1, 2), PORT_END]);
    expect(closes()).toBe(1);
  });

  it("posts nothing after it is closed, by dispose or by the far side's end", () => {
    const first = fakePort();
    const disposed = portPipe(first.port);
    disposed.dispose();
    disposed.send(Uint8Array.of(1));
    disposed.dispose();
    expect(first.posted).toEqual([PORT_END]);
    expect(first.closes()).toBe(1);

    const second = fakePort();
    const ended = portPipe(second.port);
    ended.end();
    ended.send(Uint8Array.of(1));
    expect(second.posted).toEqual([]);
    expect(ended.closed).toBe(true);
  });
});

describe("portPipe over a MessageChannel", () => {
  /** Wires a port to its pipe as the runtimes do: onmessage -> deliver / end. */
  function wired(port: MessagePort): CarrierPipe {
    const pipe = portPipe(port);
    port.onmessage = (event: MessageEvent) => {
      const frame = portMessageToFrame(event.data);
      if (frame === "end") pipe.end();
      else if (frame) pipe.deliver(frame);
    };
    return pipe;
  }

  it("carries frames both ways, one send per frame, in order", async () => {
    const channel = new MessageChannel();
    const a = wired(channel.port1);
    const b = wired(channel.port2);
    const atA = collect(a);
    const atB = collect(b);
    try {
      for (let i = 0; i < 200; i++) a.send(frameOf(i));
      b.send(Uint8Array.of(7, 7, 7));
      await until(() => atB.length === 200 && atA.length === 1, "frames");
      atB.forEach((frame, i) => expect(frame, `frame ${i}`).toEqual(frameOf(i)));
      expect(atA).toEqual([Uint8Array.of(7, 7, 7)]);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("leaves the sender's buffer usable and sends only a view's bytes", async () => {
    const channel = new MessageChannel();
    const a = wired(channel.port1);
    const b = wired(channel.port2);
    const atB = collect(b);
    try {
      const buffer = Uint8Array.of(0, 1, 2, 3, 4, 5);
      a.send(buffer.subarray(2, 4));
      expect(buffer.byteLength).toBe(6);
      expect(buffer).toEqual(Uint8Array.of(0, 1, 2, 3, 4, 5));
      await until(() => atB.length === 1, "frame");
      expect(atB[0]).toEqual(Uint8Array.of(2, 3));
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("tells the far side when one side is disposed", async () => {
    const channel = new MessageChannel();
    const a = wired(channel.port1);
    const b = wired(channel.port2);
    let closed = false;
    b.onClose(() => (closed = true));
    a.dispose();
    expect(a.closed).toBe(true);
    await until(() => closed, "close");
    expect(b.closed).toBe(true);
    b.dispose();
  });
});

/**
 * Two ports joined the way Electron joins the page's MessagePort and the main process's
 * MessagePortMain: each message is written by V8's ValueSerializer and read back by its
 * deserializer (the base classes, as Electron and Blink use them: a typed array is written with
 * its whole backing buffer). A transfer list holding anything but ports cannot be read back
 * on the main side, which then receives `null`, as MessagePortMain does.
 */
function electronPorts(): { a: CarrierPipe; b: CarrierPipe; wire: number[] } {
  const wire: number[] = [];
  const ends: CarrierPipe[] = [];
  const carry = (to: () => CarrierPipe) => (message: unknown, transfer?: unknown[]) => {
    let data: unknown = null;
    if (!transfer?.length) {
      const serializer = new Serializer();
      serializer.writeHeader();
      serializer.writeValue(message);
      const bytes = serializer.releaseBuffer();
      wire.push(bytes.length);
      const deserializer = new Deserializer(bytes);
      deserializer.readHeader();
      data = deserializer.readValue();
    }
    queueMicrotask(() => {
      const frame = portMessageToFrame(data);
      if (frame === "end") to().end();
      else if (frame) to().deliver(frame);
    });
  };
  ends.push(portPipe({ postMessage: carry(() => ends[1]!), close: () => {} }));
  ends.push(portPipe({ postMessage: carry(() => ends[0]!), close: () => {} }));
  return { a: ends[0]!, b: ends[1]!, wire };
}

describe("portPipe over Electron's carrier (V8 serializer, no transfer)", () => {
  it("keeps carrying frames after the first, both ways, in order", async () => {
    const { a, b } = electronPorts();
    const atA = collect(a);
    const atB = collect(b);
    for (let i = 0; i < 100; i++) a.send(frameOf(i));
    for (let i = 0; i < 5; i++) b.send(frameOf(i + 900));
    await until(() => atB.length === 100 && atA.length === 5, "frames");
    atB.forEach((frame, i) => expect(frame, `frame ${i}`).toEqual(frameOf(i)));
    atA.forEach((frame, i) => expect(frame).toEqual(frameOf(i + 900)));
    expect(a.closed || b.closed).toBe(false);
  });

  it("ends the far side only on an explicit goodbye", async () => {
    const { a, b } = electronPorts();
    let closed = false;
    b.onClose(() => (closed = true));
    a.dispose();
    await until(() => closed, "close");
    expect(b.closed).toBe(true);
  });

  it("sends only a frame's own bytes, not the pool a Node Buffer shares", async () => {
    const { a, b, wire } = electronPorts();
    const atB = collect(b);
    const pooled = Buffer.from([1, 2, 3]);
    expect(pooled.buffer.byteLength).toBeGreaterThan(1000);
    a.send(pooled);
    const part = Uint8Array.of(9, 8, 7, 6, 5);
    a.send(part.subarray(1, 3));
    await until(() => atB.length === 2, "frames");
    expect(atB).toEqual([Uint8Array.of(1, 2, 3), Uint8Array.of(8, 7)]);
    expect(atB[0]!.buffer.byteLength).toBe(3);
    expect(Math.max(...wire)).toBeLessThan(64);
  });

  it("copies a view of part of a buffer and keeps a whole one as it is", () => {
    const whole = Uint8Array.of(1, 2, 3);
    expect(exactBytes(whole)).toBe(whole);
    const part = exactBytes(whole.subarray(1));
    expect(part).toEqual(Uint8Array.of(2, 3));
    expect(part.buffer.byteLength).toBe(2);
  });
});

describe("isPipeService", () => {
  it("knows the console service and nothing else", () => {
    expect(isPipeService("console")).toBe(true);
    for (const value of ["Console", "9p", "", null, 1, "__proto__"]) expect(isPipeService(value)).toBe(false);
  });
});

describe("a pipe nobody listens to yet", () => {
  it("keeps early frames up to EARLY_LIMIT, then cuts the far side off", async () => {
    const [a, b] = createPipePair();
    let closed = false;
    b.onClose(() => (closed = true));
    const chunk = new Uint8Array(1024 * 1024);
    for (let i = 0; i <= EARLY_LIMIT / chunk.length; i++) a.send(chunk);
    await new Promise((r) => setTimeout(r, 0));
    expect(closed).toBe(true);
    expect(b.closed).toBe(true);
  });
});

describe("pendingPipe", () => {
  it("keeps what is sent before it is connected, in order, then carries both ways and the far side's close", async () => {
    const [near, far] = createPipePair();
    const pending = pendingPipe();
    const got: string[] = [];
    pending.pipe.onFrame((frame) => got.push(new TextDecoder().decode(frame)));
    const sent = new Uint8Array([1, 2]);
    pending.pipe.send(sent);
    sent[0] = 9; // the caller's buffer is its own again once sent
    pending.pipe.send(new Uint8Array([3]));
    const atFar: number[][] = [];
    far.onFrame((frame) => atFar.push([...frame]));
    await settle();
    expect(atFar).toEqual([]);
    pending.connect(near);
    pending.pipe.send(new Uint8Array([4]));
    far.send(new TextEncoder().encode("reply"));
    await settle();
    expect(atFar).toEqual([[1, 2], [3], [4]]);
    expect(got).toEqual(["reply"]);
    let closed = false;
    pending.pipe.onClose(() => (closed = true));
    far.dispose();
    await settle();
    expect(closed).toBe(true);
    expect(pending.pipe.closed).toBe(true);
    expect(() => pending.connect(near)).toThrow(/connected already/);
  });

  it("disposes the pipe it is given after it was disposed itself, and closes the far side when disposed", async () => {
    const [near, far] = createPipePair();
    const dropped = pendingPipe();
    dropped.pipe.send(new Uint8Array([1]));
    dropped.pipe.dispose();
    let farClosed = false;
    far.onClose(() => (farClosed = true));
    const atFar: number[][] = [];
    far.onFrame((frame) => atFar.push([...frame]));
    dropped.connect(near);
    await settle();
    expect(near.closed).toBe(true);
    expect(farClosed).toBe(true);
    expect(atFar).toEqual([]);

    const [near2, far2] = createPipePair();
    const used = pendingPipe();
    used.connect(near2);
    let far2Closed = false;
    far2.onClose(() => (far2Closed = true));
    used.pipe.dispose();
    await settle();
    expect(far2Closed).toBe(true);
  });
});
