// v86's saved state, format 6 (v86's src/state.js), read and arranged here for a quicker resume.
//
// The format: a 16-byte header (magic 0x86768676, version 6, total length, the info block's
// length, as little-endian int32), the info block (JSON: `buffer_infos`, an {offset, length}
// for each buffer, and `state`, the CPU's state array in which a typed array is
// {"__state_type__": "Uint8Array", "buffer_id": N}), then the buffers, each at a 4-byte
// boundary. The CPU keeps guest RAM in two of them: its non-zero 4 KiB pages packed in order
// (state[77]) and a bitmap of which pages those are (state[78]). v86 writes the packed pages
// first; read as a stream, where each page goes is known only after all of them have passed.
//
// So a state is kept with its bitmap first (putBitmapFirst, when it is compressed: still a
// state v86 restores as it is), and restored by streaming it through v86's own zstd decoder
// with each page written straight to its place in RAM (readState), or, decoded ahead on another
// thread (a headless run's host, the page's codec worker), read where it lies. v86's own restore
// decodes all pages into a buffer of their own, then copies each into RAM: tiny's 34 MiB of
// pages, touched twice, on a host where a page's first touch is dear.

import { MiB } from "./options.js";

export const STATE_MAGIC = 0x86768676;
export const STATE_VERSION = 6;
const HEADER_LENGTH = 16;
const PAGE = 4096;
/** The CPU state's indices: RAM's size, its packed non-zero pages, and the bitmap of them. */
const MEMORY_SIZE = 0;
const PACKED_MEMORY = 77;
const MEMORY_BITMAP = 78;
/** Room for a device's part of a state beyond RAM's size (the largest, the video memory, is 8 MiB in the machines set up here). */
const MAX_DEVICE_BUFFER = 64 * MiB;
/** How much is decoded at a time (v86's own chunk). */
const CHUNK = 1 * MiB;
/**
 * A part at least this large (the video memory: 8 MiB) is read from a raw state as a view of
 * it, not copied into a buffer of its own first: v86 copies it into its own memory at set_state
 * (vga.js), and a fresh 8 MiB buffer, touched for the first time, took 25 ms of a 75 ms restore
 * here, and its release two collections more. Smaller parts are copied, as v86 keeps some of
 * them as they are (its DAC map, IDE buffers): a view would keep the whole decoded state alive.
 */
const VIEW_FROM = 1 * MiB;

/** A state that is not one of v86's format 6, or whose parts do not agree; its message says what is wrong. */
export class StateFormatError extends Error {
  override name = "StateFormatError";
}

interface BufferInfo {
  offset: number;
  length: number;
}

interface StateInfo {
  buffer_infos: BufferInfo[];
  state: unknown[];
}

const align4 = (n: number): number => (n + 3) & ~3;

/** The info block's length, from the 16-byte header; `total`, when given, is the state's whole length. */
function readHeader(header: Uint8Array, total?: number): number {
  if (header.length < HEADER_LENGTH) throw new StateFormatError(`${header.length} bytes, shorter than its 16-byte header`);
  const view = new DataView(header.buffer, header.byteOffset, HEADER_LENGTH);
  const magic = view.getUint32(0, true);
  if (magic !== STATE_MAGIC) throw new StateFormatError(`its header starts 0x${magic.toString(16)}, where a v86 state starts 0x${STATE_MAGIC.toString(16)}`);
  const version = view.getInt32(4, true);
  if (version !== STATE_VERSION) throw new StateFormatError(`its format is version ${version}, this emulator reads ${STATE_VERSION}`);
  if (total !== undefined && view.getInt32(8, true) !== total) throw new StateFormatError(`its header gives a length of ${view.getInt32(8, true)} bytes, it has ${total}`);
  const infoLength = view.getInt32(12, true);
  if (infoLength <= 0 || (total !== undefined && HEADER_LENGTH + infoLength > total)) throw new StateFormatError(`its info block's length (${infoLength}) does not fit`);
  return infoLength;
}

/** Whether a header is v86's but of a format version other than the one read here. */
function isOtherVersion(header: Uint8Array): boolean {
  if (header.length < HEADER_LENGTH) return false;
  const view = new DataView(header.buffer, header.byteOffset, HEADER_LENGTH);
  return view.getUint32(0, true) === STATE_MAGIC && view.getInt32(4, true) !== STATE_VERSION;
}

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

function parseInfo(block: Uint8Array): StateInfo {
  let info: unknown;
  try {
    info = JSON.parse(new TextDecoder().decode(block));
  } catch (error) {
    throw new StateFormatError(`its info block is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const { buffer_infos: infos, state } = (info ?? {}) as Partial<StateInfo>;
  if (!Array.isArray(infos) || !infos.every((b) => isCount(b?.offset) && isCount(b?.length))) throw new StateFormatError("its info block has no list of buffers");
  if (!Array.isArray(state)) throw new StateFormatError("its info block has no CPU state");
  return { buffer_infos: infos, state };
}

/** The buffer a typed array of the state is kept in. */
function bufferOf(value: unknown, infos: BufferInfo[], what: string): number {
  const { __state_type__: type, buffer_id: id } = (value ?? {}) as { __state_type__?: unknown; buffer_id?: unknown };
  if (type !== "Uint8Array" || !isCount(id) || id >= infos.length) throw new StateFormatError(`its ${what} is not a buffer of bytes`);
  return id;
}

function memoryBuffers(info: StateInfo): { memory: number; bitmap: number } {
  const memory = bufferOf(info.state[PACKED_MEMORY], info.buffer_infos, "memory");
  const bitmap = bufferOf(info.state[MEMORY_BITMAP], info.buffer_infos, "memory's page map");
  if (memory === bitmap) throw new StateFormatError("its memory and its page map are one buffer");
  return { memory, bitmap };
}

/**
 * Rearranges v86's raw state, in place, so that RAM's bitmap comes before its packed pages;
 * the same state to v86 (its buffers are found through the info block). False, and `raw` left
 * as it was, for a state not laid out as v86 writes it, or one already arranged.
 */
export function putBitmapFirst(raw: Uint8Array): boolean {
  let infoLength: number;
  let info: StateInfo;
  let ids: { memory: number; bitmap: number };
  try {
    infoLength = readHeader(raw, raw.length);
    info = parseInfo(raw.subarray(HEADER_LENGTH, HEADER_LENGTH + infoLength));
    ids = memoryBuffers(info);
  } catch {
    return false;
  }
  const { memory, bitmap } = ids;
  const infos = info.buffer_infos;
  const packed = infos[memory]!;
  const map = infos[bitmap]!;
  // v86 writes the bitmap right after the pages; the swap keeps every other buffer where it is.
  if (bitmap !== memory + 1 || packed.length % PAGE !== 0 || packed.offset % 4 !== 0 || map.offset !== packed.offset + packed.length) return false;
  const start = align4(HEADER_LENGTH + infoLength);
  if (start + map.offset + map.length > raw.length) return false;

  // The two trade places in the list (the bitmap first, then the pages) and in the state's references.
  const [first, second] = [memory, bitmap];
  infos[first] = { offset: packed.offset, length: map.length };
  infos[second] = { offset: packed.offset + align4(map.length), length: packed.length };
  info.state[MEMORY_BITMAP] = { __state_type__: "Uint8Array", buffer_id: first };
  info.state[PACKED_MEMORY] = { __state_type__: "Uint8Array", buffer_id: second };
  const text = new TextEncoder().encode(JSON.stringify(info));
  // The new block may be shorter (a smaller offset), never longer than the room it has: JSON allows the spaces that fill it.
  if (text.length > infoLength) return false;

  const pagesAt = start + packed.offset;
  const bits = raw.slice(start + map.offset, start + map.offset + map.length);
  raw.copyWithin(pagesAt + align4(map.length), pagesAt, pagesAt + packed.length);
  raw.fill(0, pagesAt, pagesAt + align4(map.length));
  raw.set(bits, pagesAt);
  raw.fill(0x20, HEADER_LENGTH, HEADER_LENGTH + infoLength);
  raw.set(text, HEADER_LENGTH);
  return true;
}

/** What the restore uses of v86's CPU (emulator.v86.cpu); its typings do not list it. */
export interface StateCpu {
  wasm_memory: { readonly buffer: ArrayBuffer };
  /** RAM: a view v86 makes anew on each use (its buffer changes when its memory grows). */
  mem8: { readonly byteOffset: number; readonly length: number };
  zero_memory(address: number, length: number): void;
  zstd_create_ctx(length: number): number;
  zstd_get_src_ptr(context: number): number;
  zstd_read(context: number, length: number): number;
  zstd_read_free(pointer: number, length: number): void;
  zstd_free_ctx(context: number): void;
  set_state(state: unknown[]): void;
  unpack_memory(bitmap: unknown, packed: Uint8Array): void;
}

const STATE_CPU_CALLS = ["zero_memory", "zstd_create_ctx", "zstd_get_src_ptr", "zstd_read", "zstd_read_free", "zstd_free_ctx", "set_state", "unpack_memory"] as const;

/** Whether `cpu` has what readState uses. */
export function canReadState(cpu: unknown): cpu is StateCpu {
  const c = cpu as Partial<Record<string, unknown>> | undefined;
  return !!c && typeof c.wasm_memory === "object" && typeof c.mem8 === "object" && STATE_CPU_CALLS.every((name) => typeof c[name] === "function");
}

interface TypedArrayKind {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): unknown;
  readonly BYTES_PER_ELEMENT: number;
}

const CONSTRUCTORS: Record<string, TypedArrayKind> = {
  Uint8Array,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
};

/**
 * The state's typed arrays and maps made again from their buffers (each its bytes: a buffer of
 * its own, or a view of a raw state), as v86's restore does.
 */
function revive(value: unknown, buffers: Uint8Array[]): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i], buffers);
    return value;
  }
  const { __state_type__: type, args, buffer_id: id } = value as { __state_type__?: unknown; args?: unknown; buffer_id?: unknown };
  if (type === "Map" && Array.isArray(args)) return new Map(args as [unknown, unknown][]);
  const make = typeof type === "string" && Object.hasOwn(CONSTRUCTORS, type) ? CONSTRUCTORS[type] : undefined;
  if (!make) throw new StateFormatError(`it holds a value of an unknown kind (${String(type)})`);
  const bytes = isCount(id) ? buffers[id] : undefined;
  if (!bytes) throw new StateFormatError(`it refers to a buffer it does not have (${String(id)})`);
  const size = make.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) throw new StateFormatError(`its buffer ${String(id)} (${bytes.byteLength} bytes) is not a whole ${type}`);
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice(); // a view where the raw state lies unaligned for it: copied
  return new make(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}

/** The pages a bitmap names, in order, for RAM of `pages` pages; throws if it names one beyond. */
function pagesOf(bits: Uint8Array, pages: number): number[] {
  const list: number[] = [];
  for (let byte = 0; byte < bits.length; byte++) {
    const b = bits[byte]!;
    if (b === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) list.push(byte * 8 + bit);
  }
  if (list.length > 0 && list[list.length - 1]! >= pages) throw new StateFormatError(`its memory has page ${list[list.length - 1]}, this machine's RAM ${pages} pages`);
  return list;
}

/** zstd's frame magic, little-endian (RFC 8878 section 3.1.1). */
export const ZSTD_MAGIC = 0xfd2fb528;

/** Whether bytes start as a zstd frame (a state as it is kept). */
export function isCompressedState(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0 === ZSTD_MAGIC;
}

/**
 * The size a zstd frame says it decodes to (its header's Frame_Content_Size, RFC 8878 section
 * 3.1.1.1); undefined when the frame does not say, or the bytes are not a whole frame header.
 */
export function frameContentSize(bytes: Uint8Array): number | undefined {
  if (!isCompressedState(bytes) || bytes.length < 5) return undefined;
  const descriptor = bytes[4]!;
  const singleSegment = (descriptor & 0x20) !== 0;
  const flag = descriptor >> 6;
  const fieldSize = flag === 0 ? (singleSegment ? 1 : 0) : 1 << flag; // 0/1, 2, 4 or 8 bytes
  if (fieldSize === 0) return undefined;
  const dictionaryIdSize = [0, 1, 2, 4][descriptor & 3]!;
  const at = 5 + (singleSegment ? 0 : 1) + dictionaryIdSize;
  if (bytes.length < at + fieldSize) return undefined;
  let size = 0;
  for (let i = fieldSize - 1; i >= 0; i--) size = size * 256 + bytes[at + i]!;
  return fieldSize === 2 ? size + 256 : size;
}

/**
 * A state's bytes, read in order: `take` hands the next `length` to `use`, valid until it
 * returns; `keep`, where the source has it, gives them as a view that stays valid.
 */
interface StateSource {
  take<T>(length: number, use: (view: Uint8Array) => T): T;
  keep?(length: number): Uint8Array;
  close(): void;
}

/** The state's bytes decoded by v86's own zstd decoder, in v86's memory. */
function zstdSource(cpu: StateCpu, bytes: Uint8Array, prepare?: (memory: ArrayBuffer) => void): StateSource {
  const context = cpu.zstd_create_ctx(bytes.length);
  try {
    prepare?.(cpu.wasm_memory.buffer); // all v86's memory the restore writes now exists, none of it written yet
    new Uint8Array(cpu.wasm_memory.buffer, cpu.zstd_get_src_ptr(context) >>> 0, bytes.length).set(bytes);
  } catch (error) {
    cpu.zstd_free_ctx(context);
    throw error;
  }
  return {
    take: (length, use) => {
      const pointer = cpu.zstd_read(context, length) >>> 0;
      try {
        return use(new Uint8Array(cpu.wasm_memory.buffer, pointer, length));
      } finally {
        cpu.zstd_read_free(pointer, length);
      }
    },
    close: () => cpu.zstd_free_ctx(context),
  };
}

/** A state already decoded (raw, as v86 saves it): views of its own bytes, checked against its end. */
function rawSource(cpu: StateCpu, bytes: Uint8Array, prepare?: (memory: ArrayBuffer) => void): StateSource {
  prepare?.(cpu.wasm_memory.buffer);
  let at = 0;
  const keep = (length: number): Uint8Array => {
    if (at + length > bytes.length) throw new StateFormatError(`it ends at ${bytes.length} bytes, before its parts do`);
    const view = bytes.subarray(at, at + length);
    at += length;
    return view;
  };
  return { take: (length, use) => use(keep(length)), keep, close: () => {} };
}

/**
 * Restores a state, zstd-compressed as it is kept or raw as v86 saves it, into v86's CPU: RAM
 * cleared below `clearEnd` (what may hold something not in the state), each saved page written
 * straight to its place in RAM as it is read, the rest of the machine through v86's own
 * set_state. A compressed state streams through v86's own zstd decoder; a raw one (decoded
 * ahead, on another thread) is read where it lies. A state whose bitmap comes after its pages
 * (as v86 writes it) is restored too, with its pages held until their bitmap has come.
 * Synchronous, like v86's restore. False, with nothing touched, for a state of another format
 * version or one that keeps RAM elsewhere (a later v86's): v86's own restore is the one to read
 * it. Throws StateFormatError for a state that cannot be used. `prepare` is given v86's memory
 * before anything is written there (once the decoder has its room in it).
 */
export function readState(cpu: StateCpu, bytes: Uint8Array, clearEnd: number, prepare?: (memory: ArrayBuffer) => void): boolean {
  const ram = { offset: cpu.mem8.byteOffset, length: cpu.mem8.length };
  const pages = ram.length / PAGE;
  const compressed = isCompressedState(bytes);
  const source = compressed ? zstdSource(cpu, bytes, prepare) : rawSource(cpu, bytes, prepare);
  try {
    const { take, keep } = source;
    const takeBuffer = (length: number): Uint8Array => {
      if (keep && length >= VIEW_FROM) return keep(length);
      const out = new Uint8Array(length);
      for (let have = 0; have < length; have += CHUNK) {
        const n = Math.min(CHUNK, length - have);
        take(n, (view) => out.set(view, have));
      }
      return out;
    };
    /** Writes packed pages, read `n` at a time by `next`, to the places `list` gives. */
    const place = (list: number[], next: (n: number, put: (view: Uint8Array) => void) => void): void => {
      for (let done = 0; done < list.length; ) {
        const n = Math.min(CHUNK / PAGE, list.length - done);
        next(n, (view) => {
          const into = new Uint8Array(cpu.wasm_memory.buffer, ram.offset, ram.length);
          for (let i = 0; i < n; i++) into.set(view.subarray(i * PAGE, (i + 1) * PAGE), list[done + i]! * PAGE);
        });
        done += n;
      }
    };

    const infoLength = take(HEADER_LENGTH, (header) => (isOtherVersion(header) ? undefined : readHeader(header, compressed ? undefined : bytes.length)));
    if (infoLength === undefined) return false;
    const info = take(infoLength, parseInfo);
    let ids: { memory: number; bitmap: number };
    try {
      ids = memoryBuffers(info);
    } catch {
      return false;
    }
    const { memory, bitmap } = ids;
    if (info.state[MEMORY_SIZE] !== ram.length) throw new StateFormatError(`it is of a machine with ${Number(info.state[MEMORY_SIZE]) / MiB} MiB of RAM, this one has ${ram.length / MiB} MiB`);
    if (info.buffer_infos[bitmap]!.length * 8 < pages) throw new StateFormatError("its memory's page map is shorter than the RAM");

    cpu.zero_memory(0, Math.min(clearEnd, ram.length));
    const buffers: Uint8Array[] = [];
    let list: number[] | undefined;
    let held: Uint8Array | undefined; // pages that came before their bitmap
    let position = HEADER_LENGTH + infoLength;
    for (const [id, { length }] of info.buffer_infos.entries()) {
      // Each part is checked before it is read: a claim no machine's part could make is refused, not allocated.
      if (length > (id === memory ? ram.length : ram.length + MAX_DEVICE_BUFFER)) throw new StateFormatError(`its part ${id} claims ${length} bytes, more than this machine could have saved`);
      const padding = align4(position) - position;
      if (padding > 0) take(padding, () => undefined);
      position += padding + length;
      if (id === memory) {
        if (length % PAGE !== 0) throw new StateFormatError(`its memory (${length} bytes) is not whole pages`);
        buffers.push(new Uint8Array(0)); // never read: RAM is written here
        if (list) {
          if (length !== list.length * PAGE) throw new StateFormatError(`its memory has ${length / PAGE} pages, its page map names ${list.length}`);
          place(list, (n, put) => take(n * PAGE, put));
        } else {
          held = takeBuffer(length);
        }
        continue;
      }
      const buffer = takeBuffer(length);
      buffers.push(buffer);
      if (id !== bitmap) continue;
      list = pagesOf(buffer, pages);
      if (held) {
        const from = held;
        if (from.length !== list.length * PAGE) throw new StateFormatError(`its memory has ${from.length / PAGE} pages, its page map names ${list.length}`);
        let at = 0;
        place(list, (n, put) => {
          put(from.subarray(at, at + n * PAGE));
          at += n * PAGE;
        });
        held = undefined;
      }
    }

    const state = revive(info.state, buffers) as unknown[];
    // RAM is in place: v86's set_state restores the rest, its unpacking (which clears all RAM first) left out.
    const own = Object.hasOwn(cpu, "unpack_memory");
    const unpack = cpu.unpack_memory;
    cpu.unpack_memory = () => {};
    try {
      cpu.set_state(state);
    } finally {
      if (own) cpu.unpack_memory = unpack;
      else delete (cpu as Partial<StateCpu>).unpack_memory;
    }
    return true;
  } finally {
    source.close();
  }
}
