// Agent frames: whatever pieces the port delivers (one byte at a time, many frames at once),
// the decoder hands back exactly the payloads that were sent, and a stream that is not frames
// (text, a lying length) is reported once, with the bytes that gave it away.

import { describe, expect, it } from "vitest";
import { describeBytes, encodeFrame, FRAME_HEADER_SIZE, FrameDecoder, MAX_FRAME_PAYLOAD } from "../../../core/agent/frame.js";

function payloadOf(i: number): Uint8Array {
  const size = (i * 53) % 700;
  const payload = new Uint8Array(size);
  for (let j = 0; j < size; j++) payload[j] = (i * 31 + j) & 0xff;
  return payload;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe("encodeFrame", () => {
  it("writes the magic UM, the payload length as u32 LE, then the payload", () => {
    expect([...encodeFrame(new Uint8Array([7, 8, 9]))]).toEqual([0x55, 0x4d, 3, 0, 0, 0, 7, 8, 9]);
    expect([...encodeFrame(new Uint8Array(0x10203).fill(1)).subarray(0, FRAME_HEADER_SIZE)]).toEqual([0x55, 0x4d, 3, 2, 1, 0]);
  });

  it("refuses a payload over the limit", () => {
    expect(() => encodeFrame(new Uint8Array(MAX_FRAME_PAYLOAD + 1))).toThrow(/exceeds the limit/);
    expect(encodeFrame(new Uint8Array(MAX_FRAME_PAYLOAD)).length).toBe(MAX_FRAME_PAYLOAD + FRAME_HEADER_SIZE);
  });
});

describe("FrameDecoder", () => {
  const payloads = Array.from({ length: 40 }, (_, i) => payloadOf(i));
  const stream = concat(payloads.map(encodeFrame));

  it("takes many frames in one chunk", () => {
    const decoder = new FrameDecoder();
    const fed = decoder.feed(stream);
    expect(fed.error).toBeUndefined();
    expect(fed.frames).toEqual(payloads);
    expect(decoder.idle).toBe(true);
  });

  it("takes the stream one byte at a time", () => {
    const decoder = new FrameDecoder();
    const frames: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) {
      const fed = decoder.feed(stream.subarray(i, i + 1));
      expect(fed.error).toBeUndefined();
      frames.push(...fed.frames);
    }
    expect(frames).toEqual(payloads);
  });

  it("takes pieces that cut headers and payloads anywhere", () => {
    for (const size of [2, 5, 6, 7, 100, 4096]) {
      const decoder = new FrameDecoder();
      const frames: Uint8Array[] = [];
      for (let at = 0; at < stream.length; at += size) frames.push(...decoder.feed(stream.subarray(at, at + size)).frames);
      expect(frames, `pieces of ${size}`).toEqual(payloads);
    }
  });

  it("hands back empty payloads and copies, not views of the chunk", () => {
    const chunk = concat([encodeFrame(new Uint8Array()), encodeFrame(new Uint8Array([1, 2]))]);
    const fed = new FrameDecoder().feed(chunk);
    expect(fed.frames).toEqual([new Uint8Array(), new Uint8Array([1, 2])]);
    chunk.fill(0);
    expect(fed.frames[1]).toEqual(new Uint8Array([1, 2]));
  });

  it("keeps a partial frame until the rest arrives", () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame(new Uint8Array([1, 2, 3]));
    expect(decoder.feed(frame.subarray(0, 4)).frames).toEqual([]);
    expect(decoder.idle).toBe(false);
    expect(decoder.feed(frame.subarray(4)).frames).toEqual([new Uint8Array([1, 2, 3])]);
  });

  it("reports text where a frame should start, showing what arrived, and stays failed", () => {
    const decoder = new FrameDecoder();
    const fed = decoder.feed(new TextEncoder().encode("Debian GNU/Linux 12 tiny hvc0\n"));
    expect(fed.error).toMatch(/expected a frame \(magic "UM"\) at byte 0, got "Debian GNU\/Linux/);
    expect(decoder.error).toBe(fed.error);
    const later = decoder.feed(encodeFrame(new Uint8Array([1])));
    expect(later.frames).toEqual([]);
    expect(later.error).toBe(fed.error);
  });

  it("returns the frames before the garbage along with the error", () => {
    const fed = new FrameDecoder().feed(concat([encodeFrame(new Uint8Array([5])), new Uint8Array([0x55, 0x00])]));
    expect(fed.frames).toEqual([new Uint8Array([5])]);
    expect(fed.error).toMatch(/at byte 7, got "U\\x00"/);
  });

  it("refuses an oversized length before reading the payload", () => {
    const decoder = new FrameDecoder();
    const header = new Uint8Array([0x55, 0x4d, 0, 0, 0, 0]);
    new DataView(header.buffer).setUint32(2, MAX_FRAME_PAYLOAD + 1, true);
    expect(decoder.feed(header).error).toMatch(/announces 8454145 bytes, more than the limit of 8454144/);
    expect(new FrameDecoder().feed(new Uint8Array([0x55, 0x4d, 0xff, 0xff, 0xff, 0xff])).error).toMatch(/announces 4294967295 bytes/);
  });

  it("takes a payload of exactly the limit", () => {
    const payload = new Uint8Array(MAX_FRAME_PAYLOAD).fill(0xab);
    const fed = new FrameDecoder().feed(encodeFrame(payload));
    expect(fed.frames).toHaveLength(1);
    expect(fed.frames[0]!.length).toBe(MAX_FRAME_PAYLOAD);
  });

  it("honours a smaller limit", () => {
    expect(new FrameDecoder(10).feed(encodeFrame(new Uint8Array(11))).error).toMatch(/limit of 10/);
  });
});

describe("describeBytes", () => {
  it("shows printable bytes as text and the rest as escapes, up to 16", () => {
    expect(describeBytes(new Uint8Array([0x41, 0x0a, 0x5c, 0xff]))).toBe('"A\\x0a\\x5c\\xff"');
    expect(describeBytes(new Uint8Array(20).fill(0x61))).toBe(`"${"a".repeat(16)}"…`);
  });
});
