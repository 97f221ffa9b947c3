// A guest's saved state on the host's disk: ASCII "UNMSTATE", a u32 LE header length, the
// header as JSON (which emulator build and machine made it, the payload's length and SHA-256,
// each served disk's overlay length), then the payload: v86's state compressed with zstd,
// exactly what v86 restores. Written aside 0600, synced and renamed (main/replace-file.ts), so
// a kill mid-save leaves the previous state whole. Reading checks everything and says why not.

import { closeSync, constants, fchmodSync, fstatSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { bytesForFilling } from "../native/huge-pages.js";
import { basename, dirname, join } from "node:path";
import type { DiskRole } from "../../core/guest/launch-plan.js";
import { identityDifference } from "../../core/guest/state-identity.js";
import { isCompressedState } from "../../core/v86/state-codec.js";
import type { HostState } from "../host/services.js";
import { replaceWith } from "../replace-file.js";
import { processAlive } from "../private-files.js";
import { v86Dir } from "../paths.js";

export const STATE_MAGIC = "UNMSTATE";
const PREFIX = STATE_MAGIC.length + 4;
/** A header longer than this is not one we wrote. */
const HEADER_LIMIT = 1024 * 1024;
/** The last time a Date can hold (ms). */
const LAST_TIME = 8.64e15;
const DISK_ROLES: ReadonlySet<string> = new Set<DiskRole>(["hda", "hdb"]);

export interface StateHeader {
  format: 1;
  /** The emulator build that saved it (emulatorBuild()). */
  emulator: string;
  /** The machine's identity (core/guest/state-identity.ts). */
  machine: string;
  guest: string;
  savedAt: number;
  payloadLength: number;
  payloadSha256: string;
  /** Each served disk's overlay length at the save (the overlay is append-only). */
  disks: Partial<Record<DiskRole, { overlayLength: number }>>;
  host?: HostState;
}

export type StateProblem = "damaged" | "not-state" | "emulator" | "machine" | "guest" | "disk";

export class StateError extends Error {
  override name = "StateError";
  readonly problem: StateProblem;
  constructor(problem: StateProblem, message: string) {
    super(message);
    this.problem = problem;
  }
}

/** What a state must match to be used in this run. */
export interface StateExpectation {
  emulator: string;
  machine: string;
  /** Each served disk's overlay file now. */
  disks?: Partial<Record<DiskRole, string>>;
  /** The guest it must have been saved for (a state copied from another guest's folder is not). */
  guest?: string;
}

export interface SavedState {
  header: StateHeader;
  payload: Uint8Array;
}

let build: string | undefined;

/** This emulator build: `v86 <package version> <first 16 hex of sha256(v86.wasm)>`. */
export function emulatorBuild(): string {
  if (build === undefined) {
    const version = (JSON.parse(readFileSync(join(v86Dir, "..", "package.json"), "utf8")) as { version: string }).version;
    const wasm = createHash("sha256").update(readFileSync(join(v86Dir, "v86.wasm"))).digest("hex").slice(0, 16);
    build = `v86 ${version} ${wasm}`;
  }
  return build;
}

/** An overlay's length now (0 when it is not there yet). */
export function overlayLength(path: string): number {
  return statSync(path, { throwIfNoEntry: false })?.size ?? 0;
}

export function encodeStateFile(header: StateHeader, payload: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const out = new Uint8Array(PREFIX + json.length + payload.length);
  out.set(Buffer.from(STATE_MAGIC, "ascii"), 0);
  new DataView(out.buffer).setUint32(STATE_MAGIC.length, json.length, true);
  out.set(json, PREFIX);
  out.set(payload, PREFIX + json.length);
  return out;
}

export type NewState = Omit<StateHeader, "format" | "savedAt" | "payloadLength" | "payloadSha256">;

/** The header of a payload about to be written. */
export function stateHeader(state: NewState, payload: Uint8Array): StateHeader {
  const header: StateHeader = {
    format: 1,
    emulator: state.emulator,
    machine: state.machine,
    guest: state.guest,
    savedAt: Date.now(),
    payloadLength: payload.length,
    payloadSha256: createHash("sha256").update(payload).digest("hex"),
    disks: state.disks,
  };
  if (state.host !== undefined) header.host = state.host;
  return header;
}

/**
 * Where a file is written before it takes `path`'s place: a name of this process's own, so two
 * runs of a guest saving at once never write in one file. What a killed save left (its process
 * gone) is removed; so is a link planted in this process's place, never written through.
 */
export function asidePath(path: string): string {
  const folder = dirname(path);
  const own = basename(path);
  let names: string[] = [];
  try {
    names = readdirSync(folder);
  } catch {
    // no folder: the write says so
  }
  for (const name of names) {
    if (!name.startsWith(`${own}.`)) continue;
    const pid = /^\.(?:(\d+)\.)?partial$/.exec(name.slice(own.length))?.[1];
    if (name === `${own}.partial` || (pid !== undefined && (Number(pid) === process.pid || !processAlive(Number(pid))))) rmSync(join(folder, name), { force: true });
  }
  return `${path}.${process.pid}.partial`;
}

/** Writes a state file whole in `path`'s place (0600); the old one stays until the new one is complete. */
export function writeStateFile(path: string, state: NewState, payload: Uint8Array): StateHeader {
  const header = stateHeader(state, payload);
  const bytes = encodeStateFile(header, payload);
  const aside = asidePath(path);
  const fd = openSync(aside, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
  replaceWith(fd, aside, path, () => {
    fchmodSync(fd, 0o600); // whatever the umask
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
  });
  return header;
}

function damaged(why: string): StateError {
  return new StateError("damaged", `damaged: ${why}`);
}

/** A state file's header, from its first bytes (at least the whole header); where its payload starts. */
function decodeHeader(bytes: Uint8Array): { header: StateHeader; payloadStart: number } {
  if (bytes.length < PREFIX || Buffer.from(bytes.subarray(0, STATE_MAGIC.length)).toString("latin1") !== STATE_MAGIC) {
    throw new StateError("not-state", "not a saved state");
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(STATE_MAGIC.length, true);
  if (length > HEADER_LIMIT || PREFIX + length > bytes.length) throw damaged("its header is cut short");
  let header: StateHeader;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(PREFIX, PREFIX + length)).toString("utf8")) as StateHeader;
  } catch {
    throw damaged("its header is not readable");
  }
  if (typeof header !== "object" || header === null || header.format !== 1) throw damaged("its header is of an unknown format");
  for (const key of ["emulator", "machine", "guest", "payloadSha256"] as const) if (typeof header[key] !== "string") throw damaged(`its header has no ${key}`);
  if (!Number.isSafeInteger(header.payloadLength) || typeof header.disks !== "object" || header.disks === null) throw damaged("its header is incomplete");
  if (typeof header.savedAt !== "number" || !(header.savedAt >= 0 && header.savedAt <= LAST_TIME)) throw damaged("its header has no time it was saved");
  for (const [role, disk] of Object.entries(header.disks) as [string, unknown][]) {
    const length = (disk as { overlayLength?: unknown } | null)?.overlayLength;
    if (!DISK_ROLES.has(role) || typeof length !== "number" || !Number.isSafeInteger(length) || length < 0) throw damaged("its header names a disk it cannot have");
  }
  if (header.host !== undefined && (typeof header.host !== "object" || header.host === null)) throw damaged("its host state is not readable");
  return { header, payloadStart: PREFIX + length };
}

/** Checks a payload's length, checksum (`sha256`, in hex) and kind against its header. */
function checkPayload(header: StateHeader, length: number, sha256: string, start: Uint8Array): void {
  if (length !== header.payloadLength) throw damaged(`${length} bytes of state where ${header.payloadLength} were saved`);
  if (sha256 !== header.payloadSha256) throw damaged("its contents do not match their checksum");
  if (!isCompressedState(start)) throw damaged("its contents are not a compressed state");
}

/** Parses a state file's bytes; checks its form and payload, not what it is for. */
export function decodeStateFile(bytes: Uint8Array): SavedState {
  const { header, payloadStart } = decodeHeader(bytes);
  const payload = bytes.subarray(payloadStart);
  checkPayload(header, payload.length, createHash("sha256").update(payload).digest("hex"), payload);
  return { header, payload };
}

/** Checks a state against this run: the emulator build, the machine, each disk's overlay. */
export function checkState(header: StateHeader, expected: StateExpectation): void {
  if (expected.guest !== undefined && header.guest !== expected.guest) throw new StateError("guest", `saved for guest ${JSON.stringify(header.guest.slice(0, 64))}`);
  if (header.emulator !== expected.emulator) throw new StateError("emulator", "made by another emulator build");
  if (header.machine !== expected.machine) throw new StateError("machine", `made for another machine (${identityDifference(header.machine, expected.machine)})`);
  const roles = new Set([...Object.keys(header.disks), ...Object.keys(expected.disks ?? {})]) as Set<DiskRole>;
  for (const role of roles) {
    const saved = header.disks[role];
    const overlay = expected.disks?.[role];
    if (!saved || overlay === undefined || overlayLength(overlay) !== saved.overlayLength) throw new StateError("disk", "its disk changed since it was saved");
  }
}

/** Opens a state file to read: only a file is a state (a pipe or a device would be read for ever, a start that hangs). */
function openState(path: string): { fd: number; size: number } {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw damaged("it is not a file");
    return { fd, size: stat.size };
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    if (error instanceof StateError) throw error;
    throw damaged(`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/** Reads `length` bytes at `position` into `into`; fewer only at the file's end. */
function readAt(fd: number, into: Uint8Array, length: number, position: number): number {
  let at = 0;
  while (at < length) {
    const read = readSync(fd, into, at, length - at, position + at);
    if (read === 0) break;
    at += read;
  }
  return at;
}

/** Reads and checks a state file; a StateError says why it cannot be used. */
export function readStateFile(path: string, expected?: StateExpectation): SavedState {
  const { fd, size } = openState(path);
  let bytes: Uint8Array;
  try {
    bytes = bytesForFilling(size); // not a fault for each 4 KiB read: a resume waits for these bytes
    if (readAt(fd, bytes, size, 0) !== size) throw damaged("it was cut short while it was read");
  } catch (error) {
    if (error instanceof StateError) throw error;
    throw damaged(`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  } finally {
    closeSync(fd);
  }
  const saved = decodeStateFile(bytes);
  if (expected) checkState(saved.header, expected);
  return saved;
}

/** How much of a payload checkStateFile reads at a time. */
const CHECK_PIECE = 1024 * 1024;

/**
 * Checks a state file as readStateFile does, reading its payload a piece at a time instead of
 * whole: for a caller that sends the file on, not the bytes (the page's host). Its header.
 */
export function checkStateFile(path: string, expected?: StateExpectation): StateHeader {
  const { fd, size } = openState(path);
  try {
    const piece = new Uint8Array(Math.min(size, CHECK_PIECE + PREFIX + HEADER_LIMIT));
    const first = readAt(fd, piece, Math.min(size, PREFIX + HEADER_LIMIT), 0);
    const { header, payloadStart } = decodeHeader(piece.subarray(0, first));
    const hash = createHash("sha256");
    const start = new Uint8Array(4);
    for (let at = payloadStart; at < size; ) {
      const read = readAt(fd, piece, Math.min(CHECK_PIECE, size - at), at);
      if (read === 0) throw damaged("it was cut short while it was read");
      if (at === payloadStart) start.set(piece.subarray(0, Math.min(4, read)));
      hash.update(piece.subarray(0, read));
      at += read;
    }
    checkPayload(header, size - payloadStart, hash.digest("hex"), start.subarray(0, Math.min(4, size - payloadStart)));
    if (expected) checkState(header, expected);
    return header;
  } catch (error) {
    if (error instanceof StateError) throw error;
    throw damaged(`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  } finally {
    closeSync(fd);
  }
}
