// Image detection: what a file is, read from its content and size, never from its name.
// The host reads the first HEADER_BYTES of a file (plus its size) and asks here; the page does
// the same with a dropped File. Anything unrecognised gets an ImageError that says what was
// expected, and nothing is created from it.

import type { MediaRole } from "../guest/profile.js";

/** How much of a file detection needs: the ISO 9660 primary descriptor sits at 32 KiB + 1. */
export const HEADER_BYTES = 64 * 1024;

export type ImageKind =
  | "floppy"
  | "harddisk"
  | "cdrom"
  | "linux-kernel"
  | "multiboot-kernel"
  | "v86-state"
  | "gzip"
  | "zstd";

export interface DetectedImage {
  kind: ImageKind;
  /** Where it goes in the emulated machine. */
  role: MediaRole | "initial_state" | undefined;
  /** One line a user can read: "1.44 MB floppy disk", "ISO 9660 CD image (bootable)". */
  description: string;
}

export class ImageError extends Error {
  override name = "ImageError";
}

export const EXPECTED_KINDS =
  "a floppy, hard disk or CD/ISO image, a Linux kernel (bzImage), a multiboot kernel or a v86 state file";

const KiB = 1024;
/** Standard floppy sizes in bytes, with their common names. */
const FLOPPY_SIZES: ReadonlyMap<number, string> = new Map([
  [160 * KiB, "160 KB"],
  [180 * KiB, "180 KB"],
  [320 * KiB, "320 KB"],
  [360 * KiB, "360 KB"],
  [720 * KiB, "720 KB"],
  [1200 * KiB, "1.2 MB"],
  [1440 * KiB, "1.44 MB"],
  [1680 * KiB, "1.68 MB DMF"],
  [1722 * KiB, "1.72 MB DMF"],
  [2880 * KiB, "2.88 MB"],
]);

const V86_STATE_MAGIC = 0x86768676;

function u16(b: Uint8Array, at: number): number {
  return at + 2 <= b.length ? b[at]! | (b[at + 1]! << 8) : -1;
}
function u32(b: Uint8Array, at: number): number {
  return at + 4 <= b.length ? (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0 : -1;
}
function ascii(b: Uint8Array, at: number, len: number): string {
  if (at + len > b.length) return "";
  return String.fromCharCode(...b.subarray(at, at + len));
}

function hasBootSignature(b: Uint8Array): boolean {
  return b[510] === 0x55 && b[511] === 0xaa;
}

/** A FAT BIOS parameter block: sane bytes per sector, sectors per cluster, media byte. */
function fatTotalSectors(b: Uint8Array): number | undefined {
  const bytesPerSector = u16(b, 11);
  const perCluster = b[13] ?? 0;
  const media = b[21] ?? 0;
  const okBps = bytesPerSector === 512 || bytesPerSector === 1024 || bytesPerSector === 2048 || bytesPerSector === 4096;
  const okSpc = perCluster > 0 && (perCluster & (perCluster - 1)) === 0;
  if (!okBps || !okSpc || media < 0xf0) return undefined;
  const small = u16(b, 19);
  return small !== 0 ? small : u32(b, 32);
}

/** An MBR partition table: four entries, each empty or with status 0x00/0x80 and a type. */
function hasPartitionTable(b: Uint8Array): boolean {
  if (!hasBootSignature(b)) return false;
  let used = 0;
  for (let i = 0; i < 4; i++) {
    const at = 446 + i * 16;
    const status = b[at]!;
    const type = b[at + 4]!;
    if (status !== 0x00 && status !== 0x80) return false;
    if (type !== 0) {
      if (u32(b, at + 12) === 0) return false;
      used++;
    }
  }
  return used > 0 || ascii(b, 512, 8) === "EFI PART";
}

function multibootHeader(b: Uint8Array): boolean {
  const end = Math.min(b.length, 8192) - 12;
  for (let at = 0; at <= end; at += 4) {
    if (u32(b, at) === 0x1badb002) {
      const flags = u32(b, at + 4);
      const checksum = u32(b, at + 8);
      if (((0x1badb002 + flags + checksum) >>> 0) === 0) return true;
    }
  }
  return false;
}

function sizeText(size: number): string {
  if (size >= 1024 * 1024 * 1024) return `${(size / 1024 ** 3).toFixed(1)} GiB`;
  if (size >= 1024 * 1024) return `${(size / 1024 ** 2).toFixed(1)} MiB`;
  return `${Math.round(size / 1024)} KiB`;
}

/**
 * Detects an image from its first bytes (at least HEADER_BYTES, or the whole file if smaller)
 * and its total size. `name` is only used in messages.
 */
export function detectImage(header: Uint8Array, size: number, name: string): DetectedImage {
  if (size === 0) throw new ImageError(`${name}: the file is empty; expected ${EXPECTED_KINDS}`);

  if (u32(header, 0) === V86_STATE_MAGIC) {
    return { kind: "v86-state", role: "initial_state", description: `v86 saved state (${sizeText(size)})` };
  }
  if (header[0] === 0x1f && header[1] === 0x8b) {
    return { kind: "gzip", role: undefined, description: "gzip-compressed file" };
  }
  if (u32(header, 0) === 0xfd2fb528) {
    return { kind: "zstd", role: undefined, description: "zstd-compressed file" };
  }
  // ISO 9660 primary volume descriptor at sector 16 (ECMA-119 8.4); hybrid ISOs also carry an
  // MBR, so this comes before the disk checks.
  if (ascii(header, 0x8001, 5) === "CD001") {
    const bootable = ascii(header, 0x8801, 5) === "CD001" && ascii(header, 0x8807, 23) === "EL TORITO SPECIFICATION";
    return {
      kind: "cdrom",
      role: "cdrom",
      description: `ISO 9660 CD image${bootable ? " (El Torito bootable)" : ""}${hasBootSignature(header) ? ", hybrid" : ""}, ${sizeText(size)}`,
    };
  }
  // Linux boot protocol: "HdrS" at 0x202 and the boot flag 0xAA55 at 0x1FE (Documentation/x86/boot.rst).
  if (ascii(header, 0x202, 4) === "HdrS" && u16(header, 0x1fe) === 0xaa55) {
    const version = u16(header, 0x206);
    return {
      kind: "linux-kernel",
      role: "bzimage",
      description: `Linux kernel (boot protocol ${version >> 8}.${String(version & 0xff).padStart(2, "0")}), ${sizeText(size)}`,
    };
  }
  const floppyName = FLOPPY_SIZES.get(size);
  if (floppyName !== undefined) {
    return { kind: "floppy", role: "fda", description: `${floppyName} floppy disk image` };
  }
  const fatSectors = fatTotalSectors(header);
  if (hasBootSignature(header) && fatSectors !== undefined && fatSectors <= 5760 && size <= 5760 * 512 && !hasPartitionTable(header)) {
    return { kind: "floppy", role: "fda", description: `floppy disk image (${sizeText(size)}, non-standard size)` };
  }
  if (size >= 64 * 1024 && size % 512 === 0 && (hasPartitionTable(header) || (hasBootSignature(header) && fatSectors !== undefined))) {
    return { kind: "harddisk", role: "hda", description: `hard disk image, ${sizeText(size)}` };
  }
  if (multibootHeader(header)) {
    return { kind: "multiboot-kernel", role: "multiboot", description: `multiboot kernel, ${sizeText(size)}` };
  }
  if (hasBootSignature(header) && size % 512 === 0) {
    return { kind: "harddisk", role: "hda", description: `disk image with a boot sector, ${sizeText(size)}` };
  }
  throw new ImageError(`${name}: not a disk image or kernel this can boot (${sizeText(size)} of unrecognised data); expected ${EXPECTED_KINDS}`);
}
