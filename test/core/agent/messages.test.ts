// Agent messages: each type survives encode and decode with every field, the bytes on the wire
// are the layout umagent.c reads, newer peers' extra types and fields are skipped, and every
// short, lying, duplicated, out-of-range or non-UTF-8 field is refused with a reason.

import { describe, expect, it } from "vitest";
import {
  CLIPBOARD_PNG,
  CLIPBOARD_TEXT,
  decodeMessage,
  encodeMessage,
  isPng,
  LIMITS,
  MESSAGE_TYPES,
  type AgentMessage,
} from "../../../core/agent/messages.js";
import { MAX_FRAME_PAYLOAD } from "../../../core/agent/frame.js";
import { noisePng } from "../../support/png.js";

function roundTrip(message: AgentMessage): unknown {
  const decoded = decodeMessage(encodeMessage(message));
  if (!decoded.ok) throw new Error(decoded.error);
  expect(decoded.version).toBe(1);
  return decoded.message;
}

/** A payload built by hand: header then [tag, value bytes] fields. */
function raw(type: number, id: number, fields: [number, number[] | Uint8Array][], version = 1): Uint8Array {
  const parts: number[] = [version, type, id & 0xff, (id >> 8) & 0xff, (id >> 16) & 0xff, id >>> 24];
  for (const [tag, value] of fields) {
    const n = value.length;
    parts.push(tag, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24);
    for (const byte of value) parts.push(byte);
  }
  return new Uint8Array(parts);
}

const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24];
const text = (s: string): number[] => [...new TextEncoder().encode(s)];

function refused(payload: Uint8Array): string {
  const decoded = decodeMessage(payload);
  if (decoded.ok) throw new Error(`accepted: ${JSON.stringify(decoded.message)}`);
  return decoded.error;
}

describe("agent messages round trip", () => {
  const cases: AgentMessage[] = [
    {
      type: "hello",
      minVersion: 1,
      maxVersion: 3,
      software: "umagent 1.0.0",
      os: "Linux",
      osRelease: "6.1.0-37-686",
      osVersion: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.140-1",
      machine: "i686",
      hostname: "tiny",
      capabilities: ["ping", "exec", "clipboard", "display"],
      pid: 4242,
    },
    { type: "hello", minVersion: 1, maxVersion: 1, version: 1, software: "unmachine", capabilities: [] },
    { type: "ping", id: 1 },
    { type: "pong", id: 0xffffffff },
    { type: "exec", id: 7, command: "echo 'hi there'; exit 3\n", timeoutMs: 30_000, maxOutput: 65_536 },
    { type: "execResult", id: 7, status: 137, signal: 9, timedOut: true, truncated: false, output: new Uint8Array([0xff, 0, 0x0a]) },
    { type: "clipboard", text: "héllo, 世界 🙂\n" },
    { type: "clipboard", text: "" },
    { type: "display", mode: "text", width: 80, height: 25 },
    { type: "display", mode: "graphics", width: 1024, height: 768 },
    { type: "error", id: 3, message: "too many commands running" },
    { type: "setTime", seconds: 1_796_000_000, nanoseconds: 999_999_999 },
  ];
  for (const message of cases) {
    it(`${message.type} ${JSON.stringify(message).slice(0, 60)}`, () => {
      expect(roundTrip(message)).toEqual(message);
    });
  }

  it("carries the protocol version given to the encoder", () => {
    const decoded = decodeMessage(encodeMessage({ type: "ping", id: 9 }, 7));
    expect(decoded).toEqual({ ok: true, version: 7, message: { type: "ping", id: 9 } });
  });

  it("takes a clipboard of exactly the limit", () => {
    const message: AgentMessage = { type: "clipboard", text: "x".repeat(LIMITS.clipboardBytes) };
    expect(roundTrip(message)).toEqual(message);
  });
});

describe("agent messages on the wire", () => {
  it("lays out header and fields as umagent.c reads them", () => {
    expect([...encodeMessage({ type: "ping", id: 0x01020304 })]).toEqual([1, 2, 4, 3, 2, 1]);
    expect([...encodeMessage({ type: "clipboard", text: "hi" })]).toEqual([1, 6, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0x68, 0x69]);
    expect([...encodeMessage({ type: "display", mode: "graphics", width: 640, height: 480 })]).toEqual([
      1, 7, 0, 0, 0, 0, 1, 4, 0, 0, 0, 1, 0, 0, 0, 2, 4, 0, 0, 0, 0x80, 2, 0, 0, 3, 4, 0, 0, 0, 0xe0, 1, 0, 0,
    ]);
  });

  it("uses the type codes of umagent.c", () => {
    expect(MESSAGE_TYPES).toEqual({
      hello: 1, ping: 2, pong: 3, exec: 4, execResult: 5, clipboard: 6, display: 7, error: 8, setTime: 9,
      windows: 10, appsRequest: 11, apps: 12, launch: 13, launched: 14, windowAction: 15, setDisplay: 16,
    });
  });

  it("lays out setTime as umagent.c reads it, and refuses nanoseconds of a second or more", () => {
    expect([...encodeMessage({ type: "setTime", seconds: 0x01020304, nanoseconds: 5 })]).toEqual([
      1, 9, 0, 0, 0, 0, 1, 4, 0, 0, 0, 4, 3, 2, 1, 2, 4, 0, 0, 0, 5, 0, 0, 0,
    ]);
    expect(() => encodeMessage({ type: "setTime", seconds: 1, nanoseconds: 1_000_000_000 })).toThrow(RangeError);
    expect(refused(raw(9, 0, [[1, u32(1)], [2, u32(1_000_000_000)]]))).toMatch(/nanoseconds/);
    expect(refused(raw(9, 0, [[2, u32(1)]]))).toMatch(/seconds/);
  });
});

describe("agent messages from newer peers", () => {
  it("reports an unknown type as unknown, without reading its fields", () => {
    expect(decodeMessage(raw(200, 5, [[1, [1, 2, 3]]]))).toEqual({ ok: true, version: 1, message: { type: "unknown", code: 200, id: 5 } });
    expect(decodeMessage(new Uint8Array([1, 99, 0, 0, 0, 0, 0xff]))).toMatchObject({ ok: true, message: { type: "unknown", code: 99 } });
  });

  it("skips unknown fields of a known type", () => {
    const decoded = decodeMessage(raw(6, 0, [[99, [1, 2]], [1, text("hi")], [200, []]]));
    expect(decoded).toEqual({ ok: true, version: 1, message: { type: "clipboard", text: "hi" } });
  });
});

describe("agent messages refused", () => {
  it("a payload shorter than its header", () => {
    expect(refused(new Uint8Array([1, 2, 0]))).toMatch(/shorter than its 6-byte header/);
  });

  it("protocol version 0", () => {
    expect(refused(raw(2, 1, [], 0))).toMatch(/version 0/);
  });

  it("request id 0 for a request or reply", () => {
    expect(refused(raw(2, 0, []))).toMatch(/ping: request id 0 is reserved/);
    expect(refused(raw(8, 0, [[1, text("x")]]))).toMatch(/error: request id 0/);
  });

  it("a field header cut short", () => {
    expect(refused(new Uint8Array([1, 6, 0, 0, 0, 0, 1, 2, 0]))).toMatch(/field header cut short at byte 6/);
  });

  it("a field longer than what is left", () => {
    expect(refused(new Uint8Array([1, 6, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x41]))).toMatch(/claims 4294967295 bytes, only 1 left/);
  });

  it("a missing field", () => {
    expect(refused(raw(6, 0, []))).toMatch(/clipboard: field text is missing/);
    expect(refused(raw(4, 1, [[1, text("ls")], [2, u32(1000)]]))).toMatch(/exec: field maxOutput is missing/);
  });

  it("a field given twice", () => {
    expect(refused(raw(6, 0, [[1, text("a")], [1, text("b")]]))).toMatch(/field text appears 2 times/);
  });

  it("an integer that is not 4 bytes", () => {
    expect(refused(raw(7, 0, [[1, [0, 0]], [2, u32(80)], [3, u32(25)]]))).toMatch(/field mode must be 4 bytes, got 2/);
  });

  it("integers out of range", () => {
    expect(refused(raw(7, 0, [[1, u32(2)], [2, u32(80)], [3, u32(25)]]))).toMatch(/mode is 2, expected 0\.\.1/);
    expect(refused(raw(7, 0, [[1, u32(0)], [2, u32(0)], [3, u32(25)]]))).toMatch(/width is 0/);
    expect(refused(raw(7, 0, [[1, u32(0)], [2, u32(70000)], [3, u32(25)]]))).toMatch(/width is 70000/);
    const result = (status: number, flag: number): Uint8Array =>
      raw(5, 1, [[1, u32(status)], [2, u32(0)], [3, u32(flag)], [4, u32(0)], [5, []]]);
    expect(refused(result(256, 0))).toMatch(/status is 256/);
    expect(refused(result(0, 2))).toMatch(/timedOut is 2, expected 0\.\.1/);
    expect(refused(raw(4, 1, [[1, text("ls")], [2, u32(0)], [3, u32(10)]]))).toMatch(/timeoutMs is 0/);
    expect(refused(raw(4, 1, [[1, text("ls")], [2, u32(10)], [3, u32(LIMITS.execOutputBytes + 1)]]))).toMatch(/maxOutput/);
  });

  it("a hello whose version range is upside down", () => {
    expect(refused(raw(1, 0, [[1, u32(3)], [2, u32(2)], [4, text("x")]]))).toMatch(/maxVersion is 2, expected 3\.\.255/);
  });

  it("text that is not UTF-8", () => {
    expect(refused(raw(6, 0, [[1, [0x68, 0xff, 0x69]]]))).toMatch(/clipboard: field text is not valid UTF-8/);
    expect(refused(raw(6, 0, [[1, [0xed, 0xa0, 0x80]]]))).toMatch(/not valid UTF-8/); // a lone surrogate
  });

  it("text over its limit", () => {
    const big = new Uint8Array(LIMITS.clipboardBytes + 1).fill(0x61);
    expect(refused(raw(6, 0, [[1, big]]))).toMatch(/1048577 bytes, more than the limit of 1048576/);
    expect(refused(raw(1, 0, [[1, u32(1)], [2, u32(1)], [4, new Uint8Array(LIMITS.infoBytes + 1).fill(0x61)]]))).toMatch(/software/);
  });

  it("a command with a NUL", () => {
    expect(refused(raw(4, 1, [[1, [0x6c, 0, 0x73]], [2, u32(10)], [3, u32(10)]]))).toMatch(/NUL/);
  });

  it("bad capability names and too many of them", () => {
    const hello = (caps: string[]): Uint8Array =>
      raw(1, 0, [[1, u32(1)], [2, u32(1)], [4, text("x")], ...caps.map((c): [number, number[]] => [10, text(c)])]);
    expect(refused(hello(["Exec"]))).toMatch(/capability "Exec"/);
    expect(refused(hello(Array.from({ length: LIMITS.capabilities + 1 }, (_, i) => `c${i}`)))).toMatch(/65 capability entries/);
  });
});

describe("encodeMessage refuses what the far side would refuse", () => {
  it("oversized text, bad integers, NUL in commands, bad capability names", () => {
    expect(() => encodeMessage({ type: "clipboard", text: "é".repeat(LIMITS.clipboardBytes / 2 + 1) })).toThrow(/field text is 1048578 bytes/);
    expect(() => encodeMessage({ type: "ping", id: 0 })).toThrow(/id must be an integer in 1\.\.4294967295/);
    expect(() => encodeMessage({ type: "exec", id: 1, command: "a\0b", timeoutMs: 1, maxOutput: 1 })).toThrow(/NUL/);
    expect(() => encodeMessage({ type: "exec", id: 1, command: "ls", timeoutMs: 0.5, maxOutput: 1 })).toThrow(/timeoutMs/);
    expect(() => encodeMessage({ type: "display", mode: "text", width: 0, height: 25 })).toThrow(/width/);
    expect(() => encodeMessage({ type: "hello", minVersion: 1, maxVersion: 1, software: "x", capabilities: ["a b"] })).toThrow(/capability/);
    expect(() => encodeMessage({ type: "ping", id: 1 }, 256)).toThrow(/version/);
  });
});

describe("clipboard images (the clipboard.png capability)", () => {
  const png = noisePng(4, 3);

  it("carries a PNG both ways, as a MIME type and bytes beside no text field", () => {
    expect(roundTrip({ type: "clipboard", mime: CLIPBOARD_PNG, data: png })).toEqual({ type: "clipboard", mime: "image/png", data: png });
    const payload = encodeMessage({ type: "clipboard", mime: CLIPBOARD_PNG, data: png });
    expect([...payload.subarray(0, 6 + 5 + 9)]).toEqual([1, 6, 0, 0, 0, 0, 2, 9, 0, 0, 0, ...text("image/png")]);
    expect(refused(raw(6, 0, [[2, text("image/png")]]))).toMatch(/clipboard: field data is missing/);
  });

  it("reads text that names its MIME type as text, and text without one as before", () => {
    expect(decodeMessage(raw(6, 0, [[2, text(CLIPBOARD_TEXT)], [1, text("hi")]]))).toEqual({ ok: true, version: 1, message: { type: "clipboard", text: "hi" } });
    expect(roundTrip({ type: "clipboard", text: "hi" })).toEqual({ type: "clipboard", text: "hi" });
  });

  it("refuses an unknown MIME type, data that is not a PNG, and an image over 8 MiB", () => {
    expect(refused(raw(6, 0, [[2, text("image/gif")], [3, png]]))).toMatch(/clipboard: MIME type "image\/gif" is neither text\/plain;charset=utf-8 nor image\/png/);
    expect(refused(raw(6, 0, [[2, text("image/png")], [3, text("GIF89a, not a PNG")]]))).toMatch(/does not start with the PNG signature/);
    expect(refused(raw(6, 0, [[2, text("image/png")], [3, png.subarray(0, 7)]]))).toMatch(/PNG signature/);
    const big = new Uint8Array(LIMITS.clipboardImageBytes + 1);
    big.set(png.subarray(0, 8));
    expect(refused(raw(6, 0, [[2, text("image/png")], [3, big]]))).toMatch(/field data is 8388609 bytes, more than the limit of 8388608/);
    expect(() => encodeMessage({ type: "clipboard", mime: CLIPBOARD_PNG, data: big })).toThrow(/8388609 bytes, more than the limit of 8388608/);
    expect(() => encodeMessage({ type: "clipboard", mime: CLIPBOARD_PNG, data: text("not a PNG") as unknown as Uint8Array })).toThrow(/not a PNG/);
  });

  it("takes an image of exactly 8 MiB in one frame", () => {
    const big = new Uint8Array(LIMITS.clipboardImageBytes);
    big.set(png.subarray(0, 8));
    const payload = encodeMessage({ type: "clipboard", mime: CLIPBOARD_PNG, data: big });
    expect(payload.length).toBeLessThanOrEqual(MAX_FRAME_PAYLOAD);
    expect(isPng(big)).toBe(true);
    expect(roundTrip({ type: "clipboard", mime: CLIPBOARD_PNG, data: big })).toMatchObject({ mime: "image/png" });
  });
});
