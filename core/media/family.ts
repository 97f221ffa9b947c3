// Which family of system an image holds (core/guest/families.ts), read from its content: a Linux
// kernel's header, an ISO's volume label, or a FAT volume (the image's own or its first FAT
// partition's): the system files in its root folder and in WINDOWS, then its boot sector's OEM
// name. Pure: the caller gives `read(offset, length)` over the image (a host file, bytes in hand).
// Anything unknown is "other"; a damaged volume is never an error here, only "other".

import type { Family } from "../guest/families.js";

/** Reads up to `length` bytes at `offset` (fewer at the end of the image). */
export type ReadAt = (offset: number, length: number) => Uint8Array;

const SECTOR = 512;
/** MBR partition types of FAT volumes (12, 16 and 32 bits, CHS and LBA). */
const FAT_TYPES = new Set([0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e]);
const NTFS_TYPE = 0x07;
const LINUX_TYPE = 0x83;
/** How many clusters of one directory are read at most. */
const MAX_DIR_CLUSTERS = 64;

function u16(b: Uint8Array, at: number): number {
  return at + 2 <= b.length ? b[at]! | (b[at + 1]! << 8) : 0;
}
function u32(b: Uint8Array, at: number): number {
  return at + 4 <= b.length ? (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0 : 0;
}
function ascii(b: Uint8Array, at: number, len: number): string {
  if (at + len > b.length) return "";
  return String.fromCharCode(...b.subarray(at, at + len));
}

/** ISO 9660 volume identifiers (ECMA-119 8.4.6) as the systems' own CDs name themselves. */
const ISO_LABELS: [RegExp, Family][] = [
  [/^(WIN_?3|WIN31|WFW)/, "win3x"],
  [/^(WIN_?9|W9[58]|WIN_?ME|WINME)/, "win9x"],
  [/^(W2|WXP|WIN_?XP|WIN_?2000|WIN_?2K|WINNT|NT|GRTM|GSP|GRM|X1\d)/, "winnt"],
  [/(FREEDOS|^FD\d|MS-?DOS|^DOS)/, "dos"],
  [/(LINUX|DEBIAN|UBUNTU|ARCH|ALPINE|FEDORA|CENTOS|KNOPPIX|TINYCORE|TINY ?CORE|CORE_|SLAX|DSL|PUPPY|GENTOO|MINT|BUILDROOT|SYSRESCUE|SLACKWARE|OPENSUSE)/, "linux"],
];

interface Bpb {
  oem: string;
  bytesPerSector: number;
  sectorsPerCluster: number;
  reserved: number;
  fats: number;
  rootEntries: number;
  fatSectors: number;
  rootCluster: number;
}

/** The BIOS parameter block of a FAT boot sector, or undefined when the sector is not one. */
function parseBpb(b: Uint8Array): Bpb | undefined {
  const bytesPerSector = u16(b, 11);
  const sectorsPerCluster = b[13] ?? 0;
  const reserved = u16(b, 14);
  const fats = b[16] ?? 0;
  const media = b[21] ?? 0;
  const fatSectors = u16(b, 22) || u32(b, 36);
  const okBps = bytesPerSector === 512 || bytesPerSector === 1024 || bytesPerSector === 2048 || bytesPerSector === 4096;
  const okSpc = sectorsPerCluster > 0 && (sectorsPerCluster & (sectorsPerCluster - 1)) === 0;
  if (!okBps || !okSpc || reserved === 0 || fats < 1 || fats > 2 || media < 0xf0 || fatSectors === 0) return undefined;
  return { oem: ascii(b, 3, 8), bytesPerSector, sectorsPerCluster, reserved, fats, rootEntries: u16(b, 17), fatSectors, rootCluster: u32(b, 44) };
}

interface DirEntry {
  name: string;
  directory: boolean;
  cluster: number;
}

/** A FAT volume at `base` in the image: its root folder and sub-folders, by 8.3 name. */
class FatVolume {
  readonly #read: ReadAt;
  readonly #base: number;
  readonly #bpb: Bpb;
  readonly #bits: 12 | 16 | 32;
  readonly #dataStart: number;
  readonly #clusterBytes: number;

  constructor(read: ReadAt, base: number, bpb: Bpb, totalSectors: number) {
    this.#read = read;
    this.#base = base;
    this.#bpb = bpb;
    const rootSectors = Math.ceil((bpb.rootEntries * 32) / bpb.bytesPerSector);
    const dataSector = bpb.reserved + bpb.fats * bpb.fatSectors + rootSectors;
    this.#dataStart = dataSector * bpb.bytesPerSector;
    this.#clusterBytes = bpb.sectorsPerCluster * bpb.bytesPerSector;
    // fatgen103 "FAT Type Determination": by the count of data clusters.
    const clusters = Math.floor((totalSectors - dataSector) / bpb.sectorsPerCluster);
    this.#bits = bpb.rootEntries === 0 ? 32 : clusters < 4085 ? 12 : 16;
  }

  #next(cluster: number): number {
    const fat = this.#base + this.#bpb.reserved * this.#bpb.bytesPerSector;
    if (this.#bits === 32) return u32(this.#read(fat + cluster * 4, 4), 0) & 0x0fffffff;
    if (this.#bits === 16) return u16(this.#read(fat + cluster * 2, 2), 0);
    const pair = u16(this.#read(fat + Math.floor(cluster * 1.5), 2), 0);
    return cluster & 1 ? pair >> 4 : pair & 0xfff;
  }

  #end(cluster: number): boolean {
    const last = this.#bits === 32 ? 0x0ffffff8 : this.#bits === 16 ? 0xfff8 : 0xff8;
    return cluster < 2 || cluster >= last;
  }

  root(): DirEntry[] {
    if (this.#bits === 32) return this.folder(this.#bpb.rootCluster);
    const at = this.#base + (this.#bpb.reserved + this.#bpb.fats * this.#bpb.fatSectors) * this.#bpb.bytesPerSector;
    return entries(this.#read(at, this.#bpb.rootEntries * 32));
  }

  folder(first: number): DirEntry[] {
    const found: DirEntry[] = [];
    let cluster = first;
    for (let n = 0; n < MAX_DIR_CLUSTERS && !this.#end(cluster); n++) {
      const bytes = this.#read(this.#base + this.#dataStart + (cluster - 2) * this.#clusterBytes, this.#clusterBytes);
      found.push(...entries(bytes));
      if (bytes.length < this.#clusterBytes || hasEnd(bytes)) break;
      cluster = this.#next(cluster);
    }
    return found;
  }
}

function hasEnd(bytes: Uint8Array): boolean {
  for (let at = 0; at + 32 <= bytes.length; at += 32) if (bytes[at] === 0) return true;
  return false;
}

/** Short (8.3) entries of a folder's bytes; long-name, deleted and label entries are skipped. */
function entries(bytes: Uint8Array): DirEntry[] {
  const found: DirEntry[] = [];
  for (let at = 0; at + 32 <= bytes.length; at += 32) {
    const first = bytes[at]!;
    if (first === 0) break;
    const attr = bytes[at + 11]!;
    if (first === 0xe5 || (attr & 0x0f) === 0x0f || attr & 0x08) continue;
    const base = ascii(bytes, at, 8).trimEnd();
    const ext = ascii(bytes, at + 8, 3).trimEnd();
    const name = (ext ? `${base}.${ext}` : base).toUpperCase();
    if (name === "." || name === "..") continue;
    found.push({ name, directory: (attr & 0x10) !== 0, cluster: (u16(bytes, at + 20) << 16) | u16(bytes, at + 26) });
  }
  return found;
}

/** The family of the system on a FAT volume whose boot sector is at `base`. */
function fatFamily(read: ReadAt, base: number, sectors: number): Family {
  const boot = read(base, SECTOR);
  if (ascii(boot, 3, 8) === "NTFS    ") return "winnt";
  const bpb = parseBpb(boot);
  if (!bpb) return "other";
  const total = u16(boot, 19) || u32(boot, 32) || sectors;
  const volume = new FatVolume(read, base, bpb, total);
  const root = volume.root();
  const has = (...names: string[]): boolean => root.some((e) => names.includes(e.name));
  const dir = (name: string): DirEntry | undefined => root.find((e) => e.directory && e.name === name);
  if (has("NTLDR", "BOOTMGR", "BOOT.INI") || dir("WINNT")) return "winnt";
  const windows = dir("WINDOWS");
  if (windows) {
    const inside = volume.folder(windows.cluster);
    const holds = (...names: string[]): boolean => inside.some((e) => names.includes(e.name));
    if (holds("SYSTEM32")) return "winnt";
    if (holds("EXPLORER.EXE", "SYSTEM.DAT", "USER.DAT", "REGEDIT.EXE")) return "win9x";
    if (holds("WIN.COM", "PROGMAN.EXE", "WIN.INI")) return "win3x";
    return bpb.oem.startsWith("MSWIN4") ? "win9x" : "win3x";
  }
  if (has("IO.SYS", "MSDOS.SYS", "IBMBIO.COM", "IBMDOS.COM", "KERNEL.SYS", "COMMAND.COM")) return "dos";
  if (has("LDLINUX.SYS", "LDLINUX.C32", "SYSLINUX.CFG", "EXTLINUX.CONF", "VMLINUZ") || dir("SYSLINUX")) return "linux";
  if (bpb.oem.startsWith("MSWIN4")) return "win9x";
  if (/^(MSDOS|IBM|FRDOS|FREEDOS)/i.test(bpb.oem)) return "dos";
  return "other";
}

/** The family of the system in an image of `size` bytes; "other" when nothing says. */
export function detectFamily(read: ReadAt, size: number): Family {
  const head = read(0, 2 * SECTOR);
  // Linux boot protocol: "HdrS" at 0x202 and 0xAA55 at 0x1FE (Documentation/x86/boot.rst).
  if (ascii(head, 0x202, 4) === "HdrS" && u16(head, 0x1fe) === 0xaa55) return "linux";
  const pvd = read(0x8000, 2048);
  if (ascii(pvd, 1, 5) === "CD001" && pvd[0] === 1) {
    const label = ascii(pvd, 40, 32).trim().toUpperCase();
    for (const [pattern, family] of ISO_LABELS) if (pattern.test(label)) return family;
    return "other";
  }
  if (head[510] !== 0x55 || head[511] !== 0xaa) return "other";
  // A volume without a partition table (a floppy, a "superfloppy" disk).
  if (ascii(head, 3, 8) === "NTFS    " || parseBpb(head)) return fatFamily(read, 0, Math.floor(size / SECTOR));
  for (let i = 0; i < 4; i++) {
    const at = 446 + i * 16;
    const type = head[at + 4]!;
    const start = u32(head, at + 8);
    const count = u32(head, at + 12);
    if (type === 0 || start === 0 || start * SECTOR >= size) continue;
    if (FAT_TYPES.has(type) || type === NTFS_TYPE) return fatFamily(read, start * SECTOR, count);
    if (type === LINUX_TYPE) return "linux";
  }
  return "other";
}
