// The TCP state machine, two connections joined by a simulated link on a manual clock: the
// handshake both ways, byte-exact transfer in both directions, loss (random and targeted) and
// its recovery by timeout and by fast retransmit, zero windows and probes, write backpressure,
// FIN in every order, RST, and giving up. A test fails if a byte is lost, duplicated or moved.

import { describe, expect, it } from "vitest";
import { TCP_FLAG, type TcpSegment, type TcpSegmentOut } from "../../../core/net/tcp.js";
import { TcpConnection, type TcpCloseReason, type TcpConnectionOptions } from "../../../core/net/tcp-conn.js";
import { ManualTimers, seeded } from "./manual-timers.js";

type Who = "a" | "b";

interface Side {
  conn: TcpConnection | undefined;
  chunks: Uint8Array[];
  closed: TcpCloseReason | undefined;
  ended: boolean;
  connected: boolean;
  drains: number;
  sent: TcpSegmentOut[];
  /** Bytes received, kept as a count so the run loop need not add them up. */
  received: number;
}

function toSegment(out: TcpSegmentOut): TcpSegment {
  const options: TcpSegment["options"] = {};
  if (out.mss !== undefined) options.mss = out.mss;
  if (out.windowScale !== undefined) options.windowScale = out.windowScale;
  return { srcPort: 1, dstPort: 2, seq: out.seq, ack: out.ack, flags: out.flags, window: out.window, options, payload: out.payload?.slice() ?? new Uint8Array() };
}

function bytesOf(side: Side): Uint8Array {
  const all = new Uint8Array(side.chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of side.chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

/** Byte-exact comparison (a deep toEqual on megabytes is far too slow). */
function expectBytes(side: Side, expected: Uint8Array): void {
  const got = bytesOf(side);
  expect(got.length).toBe(expected.length);
  expect(Buffer.compare(Buffer.from(got), Buffer.from(expected))).toBe(0);
}

function received(side: Side): number {
  return side.received;
}

function pattern(size: number, seed: number): Uint8Array {
  const r = seeded(seed);
  return Uint8Array.from({ length: size }, () => Math.floor(r() * 256));
}

/** A (active) and B (passive, created by A's first SYN) over a link with latency and loss. */
class Link {
  readonly timers = new ManualTimers();
  latency = 1;
  /** Return true to lose the segment. */
  drop: (seg: TcpSegmentOut, from: Who) => boolean = () => false;
  /** Change a segment in transit (strip an option, say). */
  mutate: (seg: TcpSegment, from: Who) => TcpSegment = (s) => s;
  readonly a: Side = Link.#side();
  readonly b: Side = Link.#side();
  readonly #optionsB: Partial<TcpConnectionOptions>;
  /** What B's consumer has not taken yet (closes B's window). */
  backlogB = 0;
  backlogA = 0;
  bListens = true;

  static #side(): Side {
    return { conn: undefined, chunks: [], closed: undefined, ended: false, connected: false, drains: 0, sent: [], received: 0 };
  }

  constructor(optionsA: Partial<TcpConnectionOptions> = {}, optionsB: Partial<TcpConnectionOptions> = {}) {
    this.#optionsB = optionsB;
    this.a.conn = this.#make("a", { iss: 1000, ...optionsA });
  }

  #make(who: Who, options: Partial<TcpConnectionOptions>): TcpConnection {
    const side = who === "a" ? this.a : this.b;
    return new TcpConnection({
      timers: this.timers,
      backlog: () => (who === "a" ? this.backlogA : this.backlogB),
      ...options,
      output: (seg) => {
        side.sent.push(seg);
        if (this.drop(seg, who)) return;
        const parsed = this.mutate(toSegment(seg), who);
        this.timers.set(() => this.#deliver(who === "a" ? "b" : "a", parsed), this.latency);
      },
      events: {
        connected: () => void (side.connected = true),
        data: (bytes) => {
          side.chunks.push(bytes.slice());
          side.received += bytes.length;
        },
        end: () => void (side.ended = true),
        drain: () => void side.drains++,
        close: (reason) => void (side.closed = reason),
      },
    });
  }

  #deliver(to: Who, seg: TcpSegment): void {
    if (to === "b" && !this.b.conn) {
      if (!this.bListens || (seg.flags & (TCP_FLAG.syn | TCP_FLAG.ack)) !== TCP_FLAG.syn) return;
      this.b.conn = this.#make("b", { iss: 5000000, ...this.#optionsB });
      this.b.conn.listen(seg);
      this.b.conn.accept();
      return;
    }
    (to === "a" ? this.a : this.b).conn?.receive(seg);
  }

  get connA(): TcpConnection {
    return this.a.conn!;
  }
  get connB(): TcpConnection {
    return this.b.conn!;
  }

  open(): void {
    this.connA.connect();
    this.timers.runUntil(() => this.a.connected && this.b.connected);
  }

  /** Writes `data` on `from`, respecting backpressure, until the other side has all of it. */
  transfer(from: Who, data: Uint8Array, chunk = 100_000, limitMs?: number): void {
    const side = from === "a" ? this.a : this.b;
    const other = from === "a" ? this.b : this.a;
    const before = other.received;
    let at = 0;
    const write = (): void => {
      while (at < data.length) {
        const piece = data.subarray(at, at + chunk);
        at += piece.length;
        if (!side.conn!.write(piece)) return;
      }
    };
    write();
    const drains = (): number => side.drains;
    let seenDrains = drains();
    this.timers.runUntil(() => {
      if (drains() !== seenDrains) {
        seenDrains = drains();
        write();
      }
      return other.received - before >= data.length;
    }, limitMs);
  }
}

describe("TcpConnection", () => {
  it("opens, carries 1 MiB each way byte-exact, and closes in order", () => {
    const link = new Link();
    link.open();
    expect(link.connA.state).toBe("established");
    expect(link.connB.state).toBe("established");
    const up = pattern(1 << 20, 1);
    const down = pattern(1 << 20, 2);
    link.transfer("a", up);
    link.transfer("b", down);
    expectBytes(link.b, up);
    expectBytes(link.a, down);

    link.connA.end();
    link.timers.runUntil(() => link.b.ended && link.connA.state === "fin-wait-2");
    expect(link.connB.state).toBe("close-wait");
    link.connB.end();
    link.timers.runUntil(() => link.b.closed !== undefined);
    expect(link.b.closed).toBe("closed");
    expect(link.connA.state).toBe("time-wait");
    link.timers.advance(5000);
    expect(link.a.closed).toBe("closed");
    expect(link.timers.pending).toBe(0);
  });

  it("negotiates window scaling and MSS from the SYNs", () => {
    const link = new Link({ receiveWindow: 1 << 20 }, { receiveWindow: 1 << 20, mss: 1200 });
    link.open();
    const synA = link.a.sent[0]!;
    expect(synA.flags).toBe(TCP_FLAG.syn);
    expect(synA.mss).toBe(1460);
    expect(synA.windowScale).toBe(5);
    expect(link.b.sent[0]!.windowScale).toBe(5);
    expect(link.connA.sendMss).toBe(1200);
    expect(link.connB.sendMss).toBe(1200);
    // A megabyte in flight fits one scaled window: no segment waits for the window.
    link.transfer("a", pattern(800_000, 3));
    expect(Math.max(...link.b.sent.map((s) => s.window))).toBeGreaterThan(20_000);
  });

  it("does without scaling when the peer does not offer it: windows stay within 64 KiB", () => {
    const link = new Link({ receiveWindow: 1 << 20 }, { receiveWindow: 1 << 20 });
    link.mutate = (seg) => ({ ...seg, options: { ...seg.options, windowScale: undefined } });
    link.open();
    expect(link.b.sent[0]!.windowScale).toBeUndefined();
    const data = pattern(300_000, 4);
    link.transfer("a", data);
    expectBytes(link.b, data);
    expect(Math.max(...link.b.sent.map((s) => s.window))).toBe(65535);
  });

  it("recovers from 5% random loss both ways, byte-exact", () => {
    const random = seeded(42);
    const link = new Link();
    link.open();
    link.drop = () => random() < 0.05;
    const up = pattern(2 << 20, 5);
    const down = pattern(1 << 20, 6);
    link.transfer("a", up);
    link.transfer("b", down);
    expectBytes(link.b, up);
    expectBytes(link.a, down);
    const seqs = link.a.sent.filter((s) => s.payload).map((s) => s.seq);
    expect(new Set(seqs).size).toBeLessThan(seqs.length); // some were sent again
    link.connA.end();
    link.connB.end();
    link.timers.runUntil(() => link.a.closed !== undefined && link.b.closed !== undefined);
    expect([link.a.closed, link.b.closed]).toEqual(["closed", "closed"]);
  });

  it("repairs one lost segment by fast retransmit, before any timeout", () => {
    const link = new Link();
    link.latency = 5;
    link.open();
    let lost: number | undefined;
    link.drop = (seg, from) => {
      if (from === "a" && seg.payload && lost === undefined && seg.seq > 1000 + 20_000) {
        lost = seg.seq;
        return true;
      }
      return false;
    };
    const start = link.timers.now();
    const data = pattern(200_000, 7);
    link.transfer("a", data);
    expectBytes(link.b, data);
    // Recovered in a few round trips of 10 ms, well under the 200 ms minimum timeout.
    expect(link.timers.now() - start).toBeLessThan(150);
    expect(link.a.sent.filter((s) => s.seq === lost && s.payload).length).toBe(2);
  });

  it("retransmits after a timeout when every copy of a segment is lost for a while", () => {
    const link = new Link();
    link.open();
    let drops = 0;
    link.drop = (seg, from) => from === "a" && seg.payload !== undefined && seg.seq === 1001 && drops++ < 3;
    const data = pattern(1000, 8);
    link.connA.write(data);
    link.timers.runUntil(() => received(link.b) === 1000);
    expectBytes(link.b, data);
    expect(drops).toBe(4);
    // Exponential backoff: 1 s (initial RTO from the handshake's sample is lower), then doubling.
    expect(link.timers.now()).toBeGreaterThan(200 + 400 + 800 - 10);
  });

  it("stops at a zero window, probes it, and resumes when the consumer reads", () => {
    const link = new Link({}, { receiveWindow: 64 * 1024 });
    link.open();
    link.backlogB = 64 * 1024; // B's consumer takes nothing
    const data = pattern(300_000, 9);
    for (let at = 0; at < data.length; at += 50_000) link.connA.write(data.subarray(at, at + 50_000));
    link.timers.advance(60_000);
    const got = bytesOf(link.b).length;
    expect(got).toBeLessThanOrEqual(64 * 1024);
    // Probes went out below the window and were answered; the connection is alive.
    expect(link.a.sent.some((s) => !s.payload && s.seq === (1001 + got - 1) >>> 0)).toBe(true);
    expect(link.connA.state).toBe("established");
    link.backlogB = 0;
    link.connB.windowOpened();
    link.timers.runUntil(() => received(link.b) === data.length);
    expectBytes(link.b, data);
  });

  it("asks the writer to wait past its send buffer and tells it when to go on", () => {
    const link = new Link({ sendBuffer: 64 * 1024 });
    link.open();
    expect(link.connA.write(new Uint8Array(40_000))).toBe(true);
    expect(link.connA.write(new Uint8Array(40_000))).toBe(false);
    expect(link.a.drains).toBe(0);
    link.timers.runUntil(() => link.a.drains > 0);
    expect(link.connA.buffered).toBeLessThanOrEqual(32 * 1024);
  });

  it("takes only in-order data and answers a gap with a duplicate ACK", () => {
    const link = new Link();
    link.open();
    const b = link.connB;
    const before = link.b.sent.length;
    b.receive({ srcPort: 1, dstPort: 2, seq: 1001 + 500, ack: 5000001, flags: TCP_FLAG.ack, window: 1000, options: {}, payload: new Uint8Array(100) });
    expect(link.b.chunks).toEqual([]);
    const ack = link.b.sent[before]!;
    expect(ack.ack).toBe(1001);
    b.receive({ srcPort: 1, dstPort: 2, seq: 1001, ack: 5000001, flags: TCP_FLAG.ack | TCP_FLAG.psh, window: 1000, options: {}, payload: new Uint8Array([1, 2, 3]) });
    expectBytes(link.b, new Uint8Array([1, 2, 3]));
  });

  it("closes on an exact RST and answers a guessed one with a challenge ACK", () => {
    const link = new Link();
    link.open();
    const b = link.connB;
    const rst = (seq: number): TcpSegment => ({ srcPort: 1, dstPort: 2, seq, ack: 0, flags: TCP_FLAG.rst, window: 0, options: {}, payload: new Uint8Array() });
    const before = link.b.sent.length;
    b.receive(rst(1001 + 100));
    expect(b.state).toBe("established");
    expect(link.b.sent[before]!.flags).toBe(TCP_FLAG.ack);
    b.receive(rst(1001));
    expect(link.b.closed).toBe("reset");
    expect(b.state).toBe("closed");
  });

  it("sends RST on abort; the peer closes with reset", () => {
    const link = new Link();
    link.open();
    link.connA.abort();
    expect(link.a.closed).toBe("aborted");
    link.timers.runUntil(() => link.b.closed !== undefined);
    expect(link.b.closed).toBe("reset");
  });

  it("reports refused when the peer answers the SYN with RST", () => {
    const link = new Link();
    link.bListens = false;
    link.connA.connect();
    const syn = link.a.sent[0]!;
    link.connA.receive({ srcPort: 2, dstPort: 1, seq: 0, ack: syn.seq + 1, flags: TCP_FLAG.rst | TCP_FLAG.ack, window: 0, options: {}, payload: new Uint8Array() });
    expect(link.a.closed).toBe("refused");
  });

  it("gives up a SYN nobody answers after its retries, with backoff", () => {
    const link = new Link({ maxSynRetries: 4 });
    link.bListens = false;
    link.connA.connect();
    link.timers.runUntil(() => link.a.closed !== undefined);
    expect(link.a.closed).toBe("timeout");
    expect(link.a.sent.filter((s) => s.flags === TCP_FLAG.syn).length).toBe(5);
    expect(link.timers.now()).toBe(1000 + 2000 + 4000 + 8000 + 16000);
  });

  it("gives up data the peer never acknowledges, and resets the peer", () => {
    const link = new Link({ maxRetries: 3 });
    link.open();
    link.drop = (_seg, from) => from === "b";
    link.connA.write(new Uint8Array(100));
    link.timers.runUntil(() => link.a.closed !== undefined);
    expect(link.a.closed).toBe("timeout");
    expect(link.a.sent.at(-1)!.flags & TCP_FLAG.rst).toBeTruthy();
  });

  it("closes when both sides send FIN at once", () => {
    const link = new Link();
    link.open();
    link.connA.end();
    link.connB.end();
    link.timers.runUntil(() => link.a.closed !== undefined && link.b.closed !== undefined);
    expect([link.a.closed, link.b.closed]).toEqual(["closed", "closed"]);
    expect(link.a.ended && link.b.ended).toBe(true);
  });

  it("retransmits a lost FIN and still closes in order", () => {
    const link = new Link();
    link.open();
    let lostFin = false;
    link.drop = (seg, from) => {
      if (from === "a" && seg.flags & TCP_FLAG.fin && !lostFin) return (lostFin = true);
      return false;
    };
    link.connA.write(pattern(5000, 10));
    link.connA.end();
    link.timers.runUntil(() => link.b.ended);
    expect(bytesOf(link.b).length).toBe(5000);
    link.connB.end();
    link.timers.runUntil(() => link.a.closed !== undefined && link.b.closed !== undefined);
    expect(link.b.closed).toBe("closed");
  });

  it("sends queued data written before the handshake finished", () => {
    const link = new Link();
    link.connA.connect();
    link.connA.write(new Uint8Array([9, 8, 7]));
    link.connA.end();
    link.timers.runUntil(() => link.b.ended);
    expectBytes(link.b, new Uint8Array([9, 8, 7]));
  });
});
