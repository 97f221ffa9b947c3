// Opening a user's image file on the host: checks that it exists and is a regular file,
// reads its head and detects its kind from content (core/media/detect.ts) and its family
// (core/media/family.ts). gzip-wrapped images are unwrapped in memory. Hard disks a host serves
// block by block may pass 2 GiB; what a runtime holds in memory may not. Every failure is an
// ImageError naming the file and what was expected; nothing is written anywhere.

import { constants, openSync, readSync, closeSync, statSync, fstatSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { basename } from "node:path";
import { detectImage, ImageError, EXPECTED_KINDS, HEADER_BYTES, type DetectedImage } from "../../core/media/detect.js";
import { detectFamily } from "../../core/media/family.js";
import type { Family } from "../../core/guest/families.js";

export interface OpenedImage {
  path: string;
  detected: DetectedImage;
  size: number;
  /** Set when the content had to be unwrapped (gzip): the bytes to boot. */
  contents?: Uint8Array;
}

/** The largest image the emulator can hold in memory (a hard disk is served by the host instead). */
export const MAX_IMAGE = 2 * 1024 * 1024 * 1024 - 1;
/** Larger than this is not unwrapped in memory. */
const MAX_UNWRAP = 1024 * 1024 * 1024;

function readHead(path: string, size: number): Uint8Array {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    const head = new Uint8Array(Math.min(size, HEADER_BYTES));
    let done = 0;
    while (done < head.length) {
      const n = readSync(fd, head, done, head.length - done, done);
      if (n === 0) break;
      done += n;
    }
    return head.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

function tooLarge(path: string, size: number): ImageError {
  return new ImageError(`${path}: ${(size / 2 ** 30).toFixed(1)} GiB is more than the 2 GiB an image held in memory can have (only hard disks may be larger)`);
}

export function openImage(path: string): OpenedImage {
  let stat;
  try {
    stat = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ImageError(`${path}: no such file; expected ${EXPECTED_KINDS}`);
    if (code === "EACCES") throw new ImageError(`${path}: permission denied; the image must be readable`);
    throw new ImageError(`${path}: cannot be read (${code ?? (error as Error).message})`);
  }
  if (stat.isDirectory()) throw new ImageError(`${path}: is a directory; expected an image file (${EXPECTED_KINDS})`);
  if (!stat.isFile()) throw new ImageError(`${path}: is not a regular file; expected ${EXPECTED_KINDS}`);
  let head: Uint8Array;
  try {
    head = readHead(path, stat.size);
  } catch (error) {
    throw new ImageError(`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const detected = detectImage(head, stat.size, path);
  if (stat.size > MAX_IMAGE && detected.role !== "hda" && detected.role !== "hdb") throw tooLarge(path, stat.size);
  if (detected.kind === "gzip") {
    if (stat.size > MAX_UNWRAP) throw new ImageError(`${path}: gzip image too large to unwrap in memory`);
    let contents: Uint8Array;
    try {
      contents = gunzipSync(readFileSync(path), { maxOutputLength: MAX_UNWRAP });
    } catch {
      throw new ImageError(`${path}: gzip data is damaged or larger than 1 GiB unpacked`);
    }
    const inner = detectImage(contents.subarray(0, HEADER_BYTES), contents.length, `${path} (unpacked)`);
    if (inner.kind === "gzip" || inner.kind === "zstd") throw new ImageError(`${path}: nested compression is not supported`);
    return { path, detected: { ...inner, description: `${inner.description}, gzip-compressed` }, size: contents.length, contents };
  }
  if (detected.kind === "zstd") {
    throw new ImageError(`${path}: zstd-compressed; unpack it first (zstd -d ${basename(path)})`);
  }
  return { path, detected, size: stat.size };
}

/** The family of the system in an image file (core/media/family.ts), read from the file itself. */
export function detectFileFamily(path: string): Family {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    return detectFamily((offset, length) => {
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, bytes, done, length - done, offset + done);
        if (n === 0) break;
        done += n;
      }
      return bytes.subarray(0, done);
    }, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}
