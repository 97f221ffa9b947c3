import { describe, expect, it } from "vitest";
import { ownBuffer, spansOwnBuffer } from "../../core/bytes.js";

describe("ownBuffer", () => {
  it("hands over the buffer of a view that spans all of it, without a copy", () => {
    const whole = Uint8Array.of(1, 2, 3);
    expect(spansOwnBuffer(whole)).toBe(true);
    expect(ownBuffer(whole)).toBe(whole.buffer);
  });

  it("copies exactly the bytes of a view of part of a buffer, leaving the rest alone", () => {
    const whole = Uint8Array.of(1, 2, 3, 4);
    const part = whole.subarray(1, 3);
    expect(spansOwnBuffer(part)).toBe(false);
    const own = ownBuffer(part);
    expect(own).not.toBe(whole.buffer);
    expect([...new Uint8Array(own)]).toEqual([2, 3]);
    new Uint8Array(own)[0] = 9;
    expect(whole[1]).toBe(2);
  });

  it("copies a Node Buffer from the shared pool, not the pool", () => {
    const pooled = Buffer.from("abc");
    expect(pooled.buffer.byteLength).toBeGreaterThan(3);
    const own = ownBuffer(pooled);
    expect(own.byteLength).toBe(3);
    expect(Buffer.from(own).toString()).toBe("abc");
  });

  it("copies the bytes of a SharedArrayBuffer, whose contents may change under the taker", () => {
    const shared = new Uint8Array(new SharedArrayBuffer(2));
    shared.set([5, 6]);
    expect(spansOwnBuffer(shared)).toBe(false);
    const own = ownBuffer(shared);
    expect(own).toBeInstanceOf(ArrayBuffer);
    shared[0] = 7;
    expect([...new Uint8Array(own)]).toEqual([5, 6]);
  });
});
