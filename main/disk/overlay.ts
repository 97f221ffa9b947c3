// A guest's hard disk as the host keeps it: the base image (opened read-only, never written)
// plus a copy-on-write overlay file that every guest write is appended to. The overlay is an
// append-only log: a header (magic, version, the base's size and identity) then records
// (disk offset, length, CRC-32 of header and data, data), each written whole in one call.
// Opening scans the log, indexes the newest data of each sector and cuts a torn tail, so a
// host killed mid-write leaves every record whole or absent. One process writes an overlay at a
// time: it holds <overlay>.lock (its process id) while open for writing. Format: main/disk/README.md.

import { processAlive } from "../private-files.js";
import { replaceWith, syncFolder } from "../replace-file.js";
import { closeSync, constants, fdatasyncSync, fstatSync, ftruncateSync, linkSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync, existsSync, realpathSync } from "node:fs";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { basename, dirname, join, resolve as resolvePath } from "node:path";

export const SECTOR = 512;
const MAGIC = "UNMOVL01";
const VERSION = 1;
export const HEADER_BYTES = 64;
const RECORD_MAGIC = 0x52_45_43_31; // "REC1"
export const RECORD_HEADER_BYTES = 24;
/** The part of the base whose hash names it in the overlay's header. */
const IDENTITY_BYTES = 1024 * 1024;
/** The most one record holds; larger writes become several records. */
const MAX_RECORD = 4 * 1024 * 1024;
/** Written data reaches the disk (fdatasync) at most this long after it was written. */
export const SYNC_MS = 1000;

export class OverlayError extends Error {
  override name = "OverlayError";
}

/** Lock files this process holds (the same process id in a lock held by no one here is stale). */
const heldHere = new Set<string>();

/** The live process that has this overlay open for writing, if any (a dead writer's lock is stale). */
export function overlayHolder(overlayPath: string): number | undefined {
  const lock = `${overlayPath}.lock`;
  let text: string;
  try {
    text = readFileSync(lock, "utf8").trim();
  } catch {
    return undefined;
  }
  const pid = /^\d{1,10}$/.test(text) ? Number(text) : 0;
  if (pid <= 0) return undefined;
  if (pid === process.pid) return heldHere.has(lock) ? pid : undefined;
  return processAlive(pid) ? pid : undefined;
}

/** Takes the overlay's lock: written whole aside, then linked into place (which fails if it exists). */
function lockOverlay(overlayPath: string): string {
  const lock = `${overlayPath}.lock`;
  const aside = `${lock}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(aside, `${process.pid}\n`, { mode: 0o600 });
  } catch (error) {
    throw new OverlayError(`${overlayPath}: cannot be locked for writing (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        try {
          linkSync(aside, lock);
        } catch (error) {
          // A file system without hard links: created exclusively, the id written at once.
          if ((error as NodeJS.ErrnoException).code === "EEXIST") throw error;
          writeFileSync(lock, `${process.pid}\n`, { mode: 0o600, flag: "wx" });
        }
        heldHere.add(lock);
        return lock;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
          throw new OverlayError(`${overlayPath}: cannot be locked for writing (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
        }
      }
      const holder = overlayHolder(overlayPath);
      if (holder !== undefined) {
        throw new OverlayError(`${overlayPath}: in use by another running guest (process ${holder}); stop it first (if process ${holder} is no Unmachine, remove ${lock})`);
      }
      rmSync(lock, { force: true }); // its writer is gone (killed, or the host stopped)
    }
    throw new OverlayError(`${overlayPath}: cannot be locked for writing (its lock ${lock} keeps coming back)`);
  } finally {
    rmSync(aside, { force: true });
  }
}

function unlockOverlay(lock: string): void {
  heldHere.delete(lock);
  rmSync(lock, { force: true });
}

/** What opening an overlay found and did. */
export interface OverlayScan {
  /** Newest file offset of each written sector's data, by sector number. */
  index: Map<number, number>;
  /** Where the last whole record ends: the file is cut here if anything follows. */
  end: number;
  /** Bytes after the last whole record (a torn or damaged tail), cut on open for writing. */
  torn: number;
  baseSize: number;
  baseId: Uint8Array;
}

function baseIdentity(fd: number, size: number): Uint8Array {
  const head = new Uint8Array(Math.min(size, IDENTITY_BYTES));
  readFully(fd, head, 0);
  const hash = createHash("sha256");
  hash.update(head);
  const sizeBytes = new Uint8Array(8);
  new DataView(sizeBytes.buffer).setBigUint64(0, BigInt(size), true);
  hash.update(sizeBytes);
  return new Uint8Array(hash.digest());
}

function readFully(fd: number, into: Uint8Array, position: number): number {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

function encodeHeader(baseSize: number, baseId: Uint8Array): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, HEADER_BYTES, true);
  view.setBigUint64(16, BigInt(baseSize), true);
  header.set(baseId, 24);
  view.setUint32(56, crc32(header.subarray(0, 56)), true);
  return header;
}

function recordHeader(offset: number, data: Uint8Array): Uint8Array {
  const header = new Uint8Array(RECORD_HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, RECORD_MAGIC, true);
  view.setBigUint64(4, BigInt(offset), true);
  view.setUint32(12, data.length, true);
  view.setUint32(16, 0, true);
  view.setUint32(20, crc32(data, crc32(header.subarray(0, 20))), true);
  return header;
}

/**
 * Reads an overlay file's header and records. A file that is not an overlay (wrong magic,
 * short or damaged header, unknown version) is an OverlayError naming it; damaged records at
 * the end are reported in `torn` (recovery keeps every whole record before them).
 */
export function scanOverlay(path: string): OverlayScan {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (error) {
    throw new OverlayError(`${path}: cannot open the overlay (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return scanFd(fd, path);
  } finally {
    closeSync(fd);
  }
}

function scanFd(fd: number, path: string): OverlayScan {
  const fileSize = fstatSync(fd).size;
  const header = new Uint8Array(HEADER_BYTES);
  const got = readFully(fd, header, 0);
  const view = new DataView(header.buffer);
  if (got < HEADER_BYTES || new TextDecoder().decode(header.subarray(0, 8)) !== MAGIC) {
    throw new OverlayError(`${path}: not an unmachine disk overlay (no overlay header); move it away to start the disk from its image again`);
  }
  if (view.getUint32(56, true) !== crc32(header.subarray(0, 56))) throw new OverlayError(`${path}: the overlay's header is damaged`);
  const version = view.getUint32(8, true);
  if (version !== VERSION) throw new OverlayError(`${path}: overlay version ${version} is not known to this unmachine (it reads version ${VERSION})`);
  const baseSize = Number(view.getBigUint64(16, true));
  const baseId = header.slice(24, 56);
  const index = new Map<number, number>();
  let at = HEADER_BYTES;
  const recordHead = new Uint8Array(RECORD_HEADER_BYTES);
  const recordView = new DataView(recordHead.buffer);
  let data = new Uint8Array(64 * 1024);
  while (at + RECORD_HEADER_BYTES <= fileSize) {
    if (readFully(fd, recordHead, at) < RECORD_HEADER_BYTES) break;
    if (recordView.getUint32(0, true) !== RECORD_MAGIC) break;
    const offset = Number(recordView.getBigUint64(4, true));
    const length = recordView.getUint32(12, true);
    if (length === 0 || length > MAX_RECORD || length % SECTOR !== 0 || offset % SECTOR !== 0) break;
    if (at + RECORD_HEADER_BYTES + length > fileSize) break;
    if (data.length < length) data = new Uint8Array(length);
    const body = data.subarray(0, length);
    if (readFully(fd, body, at + RECORD_HEADER_BYTES) < length) break;
    if (crc32(body, crc32(recordHead.subarray(0, 20))) !== recordView.getUint32(20, true)) break;
    const first = offset / SECTOR;
    for (let i = 0; i < length / SECTOR; i++) index.set(first + i, at + RECORD_HEADER_BYTES + i * SECTOR);
    at += RECORD_HEADER_BYTES + length;
  }
  return { index, end: at, torn: fileSize - at, baseSize, baseId };
}

/** What an overlay holds, read without the base: for listings and "has this guest changed?". */
export interface OverlayStats {
  /** Bytes of the disk the guest has written (sectors that differ from, or replace, the base's). */
  changedBytes: number;
  /** The overlay file's size on the host. */
  fileBytes: number;
}

/** An overlay's stats; a missing overlay has no changes. */
export function overlayStats(path: string): OverlayStats {
  if (!existsSync(path)) return { changedBytes: 0, fileBytes: 0 };
  const scan = scanOverlay(path);
  return { changedBytes: scan.index.size * SECTOR, fileBytes: statSync(path).size };
}

export interface DiskOptions {
  /** The disk's size as the guest sees it; at least the base's (default: the base's size). */
  size?: number;
  /** Told once when opening cut a torn tail off the overlay. */
  onRecover?: (message: string) => void;
  /** Write nothing: reads only (exports, inspection). */
  readOnly?: boolean;
}

/**
 * A base image and its overlay, opened together. Reads take each sector's newest data from the
 * overlay, else from the base, else (past the base's end: a grown disk) zeros. Writes append a
 * record to the overlay at once; fdatasync follows within SYNC_MS and at every flush and close.
 */
export class OverlayDisk {
  readonly basePath: string;
  readonly overlayPath: string;
  readonly size: number;
  readonly baseSize: number;
  readonly #base: number;
  #overlay: number;
  #index: Map<number, number>;
  #end: number;
  #dirty = false;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  readonly #readOnly: boolean;
  #lock: string | undefined;

  constructor(basePath: string, overlayPath: string, options: DiskOptions = {}) {
    this.basePath = basePath;
    this.overlayPath = overlayPath;
    this.#readOnly = options.readOnly === true;
    try {
      this.#base = openSync(basePath, constants.O_RDONLY);
    } catch (error) {
      throw new OverlayError(`${basePath}: cannot open the disk image (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    try {
      this.baseSize = fstatSync(this.#base).size;
      this.size = options.size ?? this.baseSize;
      if (this.size < this.baseSize) throw new OverlayError(`${basePath}: a disk cannot be smaller than its image (${this.size} < ${this.baseSize} bytes)`);
      if (this.size % SECTOR !== 0) throw new OverlayError(`${basePath}: a disk's size must be a whole number of 512-byte sectors (${this.size})`);
      const id = baseIdentity(this.#base, this.baseSize);
      if (!existsSync(overlayPath) && this.#readOnly) {
        this.#overlay = -1;
        this.#index = new Map();
        this.#end = HEADER_BYTES;
        return;
      }
      // Taken before anything is written: two writers would append over each other's records.
      if (!this.#readOnly) this.#lock = lockOverlay(overlayPath);
      if (!this.#readOnly) {
        if (!existsSync(overlayPath)) createOverlay(overlayPath, this.baseSize, id);
        rmSync(`${overlayPath}.compact`, { force: true }); // a compaction the host did not finish
      }
      this.#overlay = openSync(overlayPath, this.#readOnly ? constants.O_RDONLY : constants.O_RDWR);
      const scan = scanFd(this.#overlay, overlayPath);
      if (scan.baseSize !== this.baseSize || !sameBytes(scan.baseId, id)) {
        closeSync(this.#overlay);
        throw new OverlayError(`${overlayPath}: this overlay was made for another image than ${basePath} (the image changed since); its changes cannot be applied`);
      }
      if (scan.torn > 0) {
        if (!this.#readOnly) {
          ftruncateSync(this.#overlay, scan.end);
          fdatasyncSync(this.#overlay);
        }
        options.onRecover?.(`${overlayPath}: cut ${scan.torn} bytes of an unfinished write at its end (the guest's last writes before the host stopped)`);
      }
      this.#index = scan.index;
      this.#end = scan.end;
    } catch (error) {
      closeSync(this.#base);
      if (this.#lock) unlockOverlay(this.#lock);
      throw error;
    }
  }

  /** Bytes of the disk the guest has written. */
  get changedBytes(): number {
    return this.#index.size * SECTOR;
  }

  /** The overlay file's length (whole records only). */
  get fileBytes(): number {
    return this.#end;
  }

  #check(offset: number, length: number): void {
    if (this.#closed) throw new OverlayError(`${this.overlayPath}: the disk is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new OverlayError(`${this.basePath}: ${length} bytes at ${offset} are outside the ${this.size}-byte disk`);
    }
  }

  /** Reads `into.length` bytes at `offset`. */
  read(offset: number, into: Uint8Array): void {
    this.#check(offset, into.length);
    let done = 0;
    while (done < into.length) {
      const at = offset + done;
      const sector = Math.floor(at / SECTOR);
      const within = at - sector * SECTOR;
      const stored = this.#index.get(sector);
      // A run of sectors from one place: overlay sectors contiguous in the file, or base sectors.
      let run = Math.min(SECTOR - within, into.length - done);
      if (stored !== undefined) {
        let next = sector + 1;
        while (done + run < into.length && this.#index.get(next) === stored + (next - sector) * SECTOR) {
          run += Math.min(SECTOR, into.length - done - run);
          next++;
        }
        if (readFully(this.#overlay, into.subarray(done, done + run), stored + within) < run) throw new OverlayError(`${this.overlayPath}: shorter than its index`);
      } else {
        let next = sector + 1;
        while (done + run < into.length && !this.#index.has(next)) {
          run += Math.min(SECTOR, into.length - done - run);
          next++;
        }
        const part = into.subarray(done, done + run);
        const fromBase = Math.max(0, Math.min(run, this.baseSize - at));
        const got = fromBase > 0 ? readFully(this.#base, part.subarray(0, fromBase), at) : 0;
        part.fill(0, got);
      }
      done += run;
    }
  }

  /** Writes `data` at `offset`: appended to the overlay now, on the host's disk within SYNC_MS. */
  write(offset: number, data: Uint8Array): void {
    this.#check(offset, data.length);
    if (this.#readOnly) throw new OverlayError(`${this.overlayPath}: opened read-only`);
    if (data.length === 0) return;
    // Whole sectors only: a partial one is completed with what the disk holds now.
    const start = Math.floor(offset / SECTOR) * SECTOR;
    const stop = Math.ceil((offset + data.length) / SECTOR) * SECTOR;
    let whole = data;
    if (start !== offset || stop !== offset + data.length) {
      whole = new Uint8Array(stop - start);
      this.read(start, whole);
      whole.set(data, offset - start);
    }
    for (let at = 0; at < whole.length; at += MAX_RECORD) this.#append(start + at, whole.subarray(at, Math.min(whole.length, at + MAX_RECORD)));
    this.#dirty = true;
    this.#syncTimer ??= setTimeout(() => {
      this.#syncTimer = undefined;
      this.flush();
    }, SYNC_MS);
  }

  #append(offset: number, data: Uint8Array): void {
    const record = new Uint8Array(RECORD_HEADER_BYTES + data.length);
    record.set(recordHeader(offset, data), 0);
    record.set(data, RECORD_HEADER_BYTES);
    const at = this.#end;
    writeFully(this.#overlay, record, at);
    this.#end = at + record.length;
    const first = offset / SECTOR;
    for (let i = 0; i < data.length / SECTOR; i++) this.#index.set(first + i, at + RECORD_HEADER_BYTES + i * SECTOR);
  }

  /** Puts every write so far on the host's disk. */
  flush(): void {
    if (this.#syncTimer) clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
    if (!this.#dirty || this.#closed) return;
    this.#dirty = false;
    fdatasyncSync(this.#overlay);
  }

  /**
   * Rewrites the overlay with only the newest data of each sector when most of it is superseded:
   * written aside, synced, renamed over the old one, and the folder synced.
   */
  compact(force = false): boolean {
    if (this.#readOnly || this.#closed) return false;
    const live = this.#index.size * SECTOR;
    if (!force && (this.#end < 16 * 1024 * 1024 || this.#end < 2 * live)) return false;
    this.flush();
    const aside = `${this.overlayPath}.compact`;
    const header = new Uint8Array(HEADER_BYTES);
    readFully(this.#overlay, header, 0);
    const fd = openSync(aside, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600);
    const index = new Map<number, number>();
    let end = HEADER_BYTES;
    replaceWith(fd, aside, this.overlayPath, () => {
      writeFully(fd, header, 0);
      const sectors = [...this.#index.keys()].sort((a, b) => a - b);
      let i = 0;
      while (i < sectors.length) {
        let j = i + 1;
        while (j < sectors.length && sectors[j] === sectors[j - 1]! + 1 && (j - i) * SECTOR < MAX_RECORD) j++;
        // Straight from the old overlay, sector by sector: sectors past the disk's size as opened now
        // (its saved size went down) are kept for when it grows again.
        const data = new Uint8Array((j - i) * SECTOR);
        for (let k = i; k < j; k++) {
          const part = data.subarray((k - i) * SECTOR, (k - i + 1) * SECTOR);
          if (readFully(this.#overlay, part, this.#index.get(sectors[k]!)!) < SECTOR) throw new OverlayError(`${this.overlayPath}: shorter than its index`);
        }
        const record = new Uint8Array(RECORD_HEADER_BYTES + data.length);
        record.set(recordHeader(sectors[i]! * SECTOR, data), 0);
        record.set(data, RECORD_HEADER_BYTES);
        writeFully(fd, record, end);
        for (let k = i; k < j; k++) index.set(sectors[k]!, end + RECORD_HEADER_BYTES + (k - i) * SECTOR);
        end += record.length;
        i = j;
      }
    });
    closeSync(this.#overlay);
    this.#overlay = openSync(this.overlayPath, constants.O_RDWR);
    this.#index = index;
    this.#end = end;
    return true;
  }

  /** Flushes, compacts when most of the overlay is superseded (unless told not to), and closes both files. */
  close(options: { compact?: boolean } = {}): void {
    if (this.#closed) return;
    try {
      if (!this.#readOnly && this.#overlay >= 0) {
        this.flush();
        if (options.compact !== false) this.compact();
      }
    } finally {
      // Whatever the flush or compaction said, the files are closed and the lock given back.
      this.#closed = true;
      if (this.#overlay >= 0) closeSync(this.#overlay);
      closeSync(this.#base);
      if (this.#lock) unlockOverlay(this.#lock);
      this.#lock = undefined;
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** A new overlay holding only its header: written aside, synced, then renamed into place. */
function createOverlay(path: string, baseSize: number, baseId: Uint8Array): void {
  const aside = `${path}.new`;
  const fd = openSync(aside, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    writeFully(fd, encodeHeader(baseSize, baseId), 0);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(aside, path);
  syncFolder(dirname(path));
}

export interface ExportOptions {
  /** Replace an existing output file. */
  overwrite?: boolean;
}

const EXPORT_CHUNK = 1024 * 1024;

/** Where a path really is: its links resolved, or for a file not there yet, its folder's. */
function realPlace(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      return join(realpathSync(dirname(resolvePath(path))), basename(path));
    } catch {
      return resolvePath(path);
    }
  }
}

/**
 * Writes the disk as the guest sees it (base plus changes, its full virtual size) as one flat
 * image. The output is written aside and renamed into place; it is never the base itself, and
 * an existing file is refused unless `overwrite`. Runs of zeros are left as holes.
 */
export function exportDisk(disk: OverlayDisk, outFile: string, options: ExportOptions = {}): void {
  const folder = dirname(resolvePath(outFile));
  if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory()) throw new OverlayError(`${outFile}: the folder ${folder} does not exist`);
  if (statSync(outFile, { throwIfNoEntry: false })?.isDirectory()) throw new OverlayError(`${outFile}: is a folder; expected the name of the image file to write`);
  // Compared where the files really are, the overlay's place too before it exists.
  const target = realPlace(outFile);
  if (target === realPlace(disk.basePath) || target === realPlace(disk.overlayPath)) {
    throw new OverlayError(`${outFile}: is the disk's own image or overlay; export to a new file`);
  }
  if (existsSync(outFile) && !options.overwrite) throw new OverlayError(`${outFile}: already exists; choose another name or allow replacing it`);
  const aside = `${outFile}.partial`;
  let fd: number;
  try {
    fd = openSync(aside, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
  } catch (error) {
    throw new OverlayError(`${outFile}: cannot be written (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  replaceWith(fd, aside, outFile, () => {
    const chunk = new Uint8Array(EXPORT_CHUNK);
    for (let at = 0; at < disk.size; at += EXPORT_CHUNK) {
      const part = chunk.subarray(0, Math.min(EXPORT_CHUNK, disk.size - at));
      disk.read(at, part);
      if (part.some((byte) => byte !== 0)) writeFully(fd, part, at);
    }
    ftruncateSync(fd, disk.size);
  });
}
