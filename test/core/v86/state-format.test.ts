// v86's state format as the resume reads it: a state rearranged with its RAM's bitmap first is
// the same state, buffer for buffer; the streaming restore puts each saved page at its place in
// RAM from either arrangement, clears only what it is told, hands the rest to v86's set_state,
// leaves a format it does not know to v86, and refuses a state whose parts do not agree with
// one line; alike for a compressed state and a raw one (decoded ahead). The real emulator and
// zstd are in test/vm/restore.test.ts; here the "decoder" passes bytes through.

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { putBitmapFirst, readState, StateFormatError, STATE_MAGIC, STATE_VERSION, ZSTD_MAGIC, type StateCpu } from "../../../core/v86/state-format.js";

const PAGE = 4096;
const align4 = (n: number): number => (n + 3) & ~3;

/** A state in v86's format 6, its buffers laid out in order as v86 writes them. */
function encode(state: unknown[], buffers: Uint8Array[], header: { magic?: number; version?: number } = {}): Uint8Array {
  const infos: { offset: number; length: number }[] = [];
  let total = 0;
  for (const b of buffers) {
    infos.push({ offset: total, length: b.length });
    total = align4(total + b.length);
  }
  const info = new TextEncoder().encode(JSON.stringify({ buffer_infos: infos, state }));
  const start = align4(16 + info.length);
  const out = new Uint8Array(start + total);
  const view = new DataView(out.buffer);
  view.setUint32(0, header.magic ?? STATE_MAGIC, true);
  view.setInt32(4, header.version ?? STATE_VERSION, true);
  view.setInt32(8, out.length, true);
  view.setInt32(12, info.length, true);
  out.set(info, 16);
  buffers.forEach((b, i) => out.set(b, start + infos[i]!.offset));
  return out;
}

/** Each buffer a state refers to, by its place in the state, read through its info block. */
function decode(raw: Uint8Array): { state: unknown[]; buffers: Uint8Array[]; order: number[] } {
  const infoLength = new DataView(raw.buffer, raw.byteOffset).getInt32(12, true);
  const info = JSON.parse(new TextDecoder().decode(raw.subarray(16, 16 + infoLength))) as { buffer_infos: { offset: number; length: number }[]; state: unknown[] };
  const start = align4(16 + infoLength);
  const buffers = info.buffer_infos.map((b) => raw.slice(start + b.offset, start + b.offset + b.length));
  const order = info.buffer_infos.map((b) => b.offset);
  return { state: info.state, buffers, order };
}

/** A "compressed" state for the fake decoder below: zstd's magic, then the raw state. */
function compressed(raw: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + raw.length);
  new DataView(out.buffer).setUint32(0, ZSTD_MAGIC, true);
  out.set(raw, 4);
  return out;
}

/** A typed array's bytes as a digest (with its kind): compared at once, where toEqual takes seconds for a few MiB. */
function digest(value: unknown): string {
  if (!ArrayBuffer.isView(value)) return `not a typed array: ${String(value)}`;
  return `${value.constructor.name} ${createHash("sha256").update(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)).digest("hex")}`;
}

const ref = (id: number): unknown => ({ __state_type__: "Uint8Array", buffer_id: id });

/** A machine of `pages` pages of RAM whose saved pages are `saved` (each filled with its own number + 1, as a byte). */
function machineState(pages: number, saved: number[], order: "as v86 writes" | "bitmap first" = "as v86 writes"): { raw: Uint8Array; vga: Uint8Array; regs: Uint8Array } {
  const bitmap = new Uint8Array(align4((pages + 7) >> 3));
  const packed = new Uint8Array(saved.length * PAGE);
  saved.forEach((page, i) => {
    bitmap[page >> 3]! |= 1 << (page & 7);
    packed.fill(page + 1, i * PAGE, (i + 1) * PAGE);
  });
  const vga = new Uint8Array(1.5 * 1024 * 1024).map((_, i) => i % 251);
  const regs = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const state: unknown[] = [];
  state[0] = pages * PAGE;
  state[1] = ref(0);
  state[52] = [7, ref(1), { __state_type__: "Map", args: [[1, 2]] }];
  state[77] = ref(2);
  state[78] = ref(3);
  state[79] = ref(4);
  const raw = encode(state, [regs, vga, packed, bitmap, new Uint8Array([9, 9, 9])]);
  if (order === "bitmap first") expect(putBitmapFirst(raw)).toBe(true);
  return { raw, vga, regs };
}

/** v86's CPU as the restore sees it: RAM at the start of its memory, a decoder that passes bytes through. */
function fakeCpu(pages: number, ramFill = 0) {
  const ramLength = pages * PAGE;
  const memory = { buffer: new ArrayBuffer(ramLength + 8 * 1024 * 1024) };
  new Uint8Array(memory.buffer, 0, ramLength).fill(ramFill);
  let input: Uint8Array = new Uint8Array(0);
  let at = 0;
  const scratch = ramLength;
  const cleared: [number, number][] = [];
  const restored: unknown[][] = [];
  const unpack = (): void => {
    throw new Error("v86's own unpacking ran");
  };
  const cpu: StateCpu & { restored: unknown[][] } = {
    restored,
    wasm_memory: memory,
    mem8: new Uint8Array(memory.buffer, 0, ramLength),
    zero_memory: (address, length) => {
      cleared.push([address, length]);
      new Uint8Array(memory.buffer, address, length).fill(0);
    },
    zstd_create_ctx: (length) => {
      input = new Uint8Array(length);
      at = 4; // past the magic compressed() puts first
      return 1;
    },
    zstd_get_src_ptr: () => scratch,
    zstd_read: (_context, length) => {
      // The input was copied to `scratch`; each read hands its next bytes back just past it.
      const src = new Uint8Array(memory.buffer, scratch, input.length);
      const out = scratch + input.length;
      if (at + length > src.length) throw new Error("read past the end");
      new Uint8Array(memory.buffer, out, length).set(src.subarray(at, at + length));
      at += length;
      return out;
    },
    zstd_read_free: () => {},
    zstd_free_ctx: () => {},
    set_state: (state) => {
      cpu.unpack_memory(undefined, new Uint8Array(0));
      restored.push(state);
    },
    unpack_memory: unpack,
  };
  return { cpu, cleared, ram: () => new Uint8Array(memory.buffer, 0, ramLength), unpack };
}

describe("putBitmapFirst", () => {
  it("puts the bitmap before the pages and keeps every buffer the state refers to as it was", () => {
    const { raw } = machineState(40, [0, 3, 17, 39]);
    const before = decode(raw);
    expect(putBitmapFirst(raw)).toBe(true);
    const after = decode(raw);
    const bufferAt = (d: typeof before, id: unknown): Uint8Array => d.buffers[(id as { buffer_id: number }).buffer_id]!;
    for (const index of [1, 77, 78, 79]) expect(digest(bufferAt(after, after.state[index]))).toBe(digest(bufferAt(before, before.state[index])));
    expect(digest(bufferAt(after, (after.state[52] as unknown[])[1]))).toBe(digest(bufferAt(before, (before.state[52] as unknown[])[1])));
    const memoryId = (after.state[77] as { buffer_id: number }).buffer_id;
    const bitmapId = (after.state[78] as { buffer_id: number }).buffer_id;
    expect(after.order[bitmapId]!).toBeLessThan(after.order[memoryId]!);
    // The buffers after them stay where they were, and the header's lengths still hold.
    expect(after.order[4]).toBe(before.order[4]);
    expect(new DataView(raw.buffer).getInt32(8, true)).toBe(raw.length);
    expect(putBitmapFirst(raw)).toBe(false); // already arranged
  });

  it("leaves alone what is not a state v86 wrote", () => {
    const garbage = new Uint8Array(64).fill(0x55);
    expect(putBitmapFirst(garbage)).toBe(false);
    expect(garbage.every((b) => b === 0x55)).toBe(true);
    const other = encode([], [], { version: 5 });
    const copy = other.slice();
    expect(putBitmapFirst(other)).toBe(false);
    expect(other).toEqual(copy);
    const noMemory = encode([4096], [new Uint8Array(8)]);
    expect(putBitmapFirst(noMemory)).toBe(false);
  });
});

describe("readState", () => {
  const kinds = { compressed, raw: (raw: Uint8Array) => raw };
  for (const [kind, as] of Object.entries(kinds))
  for (const order of ["as v86 writes", "bitmap first"] as const) {
    it(`puts each saved page at its place in RAM, ${kind}, ${order}, and hands the rest to v86`, () => {
      const saved = [0, 1, 5, 6, 7, 300, 511];
      const { raw, vga, regs } = machineState(512, saved, order);
      const { cpu, cleared, ram, unpack } = fakeCpu(512, 0xee);
      expect(readState(cpu, as(raw), 16 * PAGE)).toBe(true);
      expect(cleared).toEqual([[0, 16 * PAGE]]);
      const memory = ram();
      for (const page of saved) expect(memory[page * PAGE + 4095]).toBe((page + 1) & 0xff);
      for (const page of [2, 15]) expect(memory[page * PAGE + 100]).toBe(0); // cleared, not saved
      expect(memory[16 * PAGE]).toBe(0xee); // above what it was told to clear: left as it was
      const [state] = cpu.restored;
      expect(state![1]).toEqual(regs);
      expect(digest((state![52] as unknown[])[1])).toBe(digest(vga));
      expect((state![52] as unknown[])[2]).toEqual(new Map([[1, 2]]));
      expect(cpu.unpack_memory).toBe(unpack); // v86's unpacking is back
    });
  }

  for (const [kind, as] of Object.entries(kinds))
  it(`gives v86's memory to prepare once, before it writes RAM, ${kind}`, () => {
    const { raw } = machineState(512, [0, 9]);
    const { cpu, ram, cleared } = fakeCpu(512, 0xee);
    const seen: { memory: ArrayBuffer; ramByte: number; cleared: number }[] = [];
    expect(readState(cpu, as(raw), 16 * PAGE, (memory) => seen.push({ memory, ramByte: ram()[9 * PAGE]!, cleared: cleared.length }))).toBe(true);
    expect(seen).toEqual([{ memory: cpu.wasm_memory.buffer, ramByte: 0xee, cleared: 0 }]);
    expect(ram()[9 * PAGE + 4095]).toBe(10);
  });

  it("reads a raw state from a view of shared memory, and refuses one cut short or of another length than its header says", () => {
    const { raw, vga } = machineState(512, [3, 4], "bitmap first");
    const shared = new Uint8Array(new SharedArrayBuffer(raw.length + 65536), 0, raw.length);
    shared.set(raw);
    const { cpu, ram } = fakeCpu(512);
    expect(readState(cpu, shared, PAGE)).toBe(true);
    expect(ram()[4 * PAGE + 7]).toBe(5);
    expect(digest((cpu.restored[0]![52] as unknown[])[1])).toBe(digest(vga));

    expect(() => readState(fakeCpu(512).cpu, raw.subarray(0, raw.length - 100), PAGE)).toThrow(/^its header gives a length of \d+ bytes, it has \d+$/);
    const cut = raw.slice(0, raw.length - 3 * PAGE);
    new DataView(cut.buffer).setInt32(8, cut.length, true);
    expect(() => readState(fakeCpu(512).cpu, cut, PAGE)).toThrow(/^it ends at \d+ bytes, before its parts do$/);
  });

  it("hands a raw state's large parts to v86 as views of it, without a copy; small parts, and any part of a compressed one, in buffers of their own", () => {
    const { raw, vga, regs } = machineState(512, [3], "bitmap first");
    const shared = new Uint8Array(new SharedArrayBuffer(raw.length), 0, raw.length);
    shared.set(raw);
    const { cpu } = fakeCpu(512);
    expect(readState(cpu, shared, PAGE)).toBe(true);
    const [state] = cpu.restored;
    const large = (state![52] as unknown[])[1] as Uint8Array;
    expect(digest(large)).toBe(digest(vga));
    expect(large.buffer).toBe(shared.buffer); // 1.5 MiB, read where it lies
    const small = state![1] as Uint8Array;
    expect(small).toEqual(regs);
    expect(small.buffer).not.toBe(shared.buffer); // v86 may keep a small one: it must not hold the state

    const fromCompressed = fakeCpu(512);
    expect(readState(fromCompressed.cpu, compressed(raw), PAGE)).toBe(true);
    const copied = (fromCompressed.cpu.restored[0]![52] as unknown[])[1] as Uint8Array;
    expect(digest(copied)).toBe(digest(vga));
    expect(copied.byteOffset).toBe(0);
    expect(copied.byteLength).toBe(copied.buffer.byteLength);
  });

  it("makes a large part of wider elements from a raw state lying at any offset, copied where it would be unaligned", () => {
    const values = Float64Array.from({ length: (1024 * 1024) / 8 }, (_, i) => i + 0.5);
    const bytes = new Uint8Array(values.buffer);
    const state: unknown[] = [];
    state[0] = 16 * PAGE;
    state[5] = { __state_type__: "Float64Array", buffer_id: 0 };
    state[77] = ref(1);
    state[78] = ref(2);
    const raw = encode(state, [bytes, new Uint8Array(0), new Uint8Array(4)]);
    for (const offset of [0, 4]) {
      const lying = new Uint8Array(new ArrayBuffer(raw.length + 8), offset, raw.length);
      lying.set(raw);
      const { cpu } = fakeCpu(16);
      expect(readState(cpu, lying, PAGE)).toBe(true);
      const revived = cpu.restored[0]![5] as Float64Array;
      expect(revived).toBeInstanceOf(Float64Array);
      expect(digest(revived)).toBe(digest(values));
      expect(revived.buffer === lying.buffer).toBe((lying.byteOffset + align4(16 + new DataView(raw.buffer).getInt32(12, true))) % 8 === 0);
    }
  });

  it("leaves a state of another format version, or one that keeps RAM elsewhere, to v86, touching nothing", () => {
    for (const raw of [encode([], [], { version: 7 }), encode([4096], [new Uint8Array(8)])])
    for (const bytes of [raw, compressed(raw)]) {
      const { cpu, cleared, ram } = fakeCpu(512, 0xee);
      expect(readState(cpu, bytes, PAGE)).toBe(false);
      expect(cleared).toEqual([]);
      expect(cpu.restored).toEqual([]);
      expect(ram()[0]).toBe(0xee);
    }
  });

  it("refuses a state of another RAM size, a page beyond RAM, and pages its map does not name", () => {
    const other = machineState(64, [1]).raw;
    expect(() => readState(fakeCpu(512).cpu, compressed(other), PAGE)).toThrow(/machine with 0\.25 MiB of RAM, this one has 2 MiB/);

    const beyond = machineState(512, [1, 511], "bitmap first").raw;
    // The same state for a machine told it has RAM of 256 pages: its page 511 is not there.
    const view = decode(beyond);
    view.state[0] = 256 * PAGE;
    const bitmap = view.buffers[(view.state[78] as { buffer_id: number }).buffer_id]!;
    expect(() => readState(fakeCpu(256).cpu, compressed(encode(view.state, view.buffers)), PAGE)).toThrow(StateFormatError);
    expect(bitmap.length).toBeGreaterThan(0);

    const extra = decode(machineState(512, [1, 2], "bitmap first").raw);
    const memoryId = (extra.state[77] as { buffer_id: number }).buffer_id;
    extra.buffers[memoryId] = new Uint8Array(3 * PAGE);
    expect(() => readState(fakeCpu(512).cpu, compressed(encode(extra.state, extra.buffers)), PAGE)).toThrow(/its memory has 3 pages, its page map names 2/);

    // A part claiming more than any machine part could hold is refused before anything is allocated for it.
    const claims = decode(machineState(512, [1], "bitmap first").raw);
    const raw = encode(claims.state, claims.buffers);
    const infoLength = new DataView(raw.buffer).getInt32(12, true);
    const text = new TextDecoder().decode(raw.subarray(16, 16 + infoLength)).replace(/"length":1572864/, '"length":9999999999');
    const forged = new Uint8Array(raw.length + 8);
    forged.set(raw.subarray(0, 16));
    const block = new TextEncoder().encode(text);
    new DataView(forged.buffer).setInt32(12, block.length, true);
    forged.set(block, 16);
    expect(() => readState(fakeCpu(512).cpu, compressed(forged), PAGE)).toThrow(/^its part 1 claims 9999999999 bytes, more than this machine could have saved$/);

    expect(() => readState(fakeCpu(512).cpu, encode([], [], { magic: 0x55555555 }), PAGE)).toThrow(/^its header starts 0x55555555, where a v86 state starts 0x86768676$/);
  });
});
