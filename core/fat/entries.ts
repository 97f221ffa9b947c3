// FAT directory entries: the 32-byte short entry and the VFAT long-name entries that precede it
// (fatgen103, "FAT Directory Structure" and "FAT Long Directory Entries"). Counterpart:
// core/fat/names.ts picks the names; core/fat/image.ts lays the entries out in directories.
// Invariants: little-endian fields; times are DOS local date/time clamped to 1980..2107; the
// last LFN entry comes first on disk, with ordinal | 0x40, each carrying the short name's checksum.

import { shortNameChecksum, type DirectoryName } from "./names.js";

export const ENTRY_SIZE = 32;
/** Characters one long-name entry holds. */
export const LONG_CHARS_PER_ENTRY = 13;

export const Attr = {
  READ_ONLY: 0x01,
  HIDDEN: 0x02,
  SYSTEM: 0x04,
  VOLUME_ID: 0x08,
  DIRECTORY: 0x10,
  ARCHIVE: 0x20,
  LONG_NAME: 0x0f,
} as const;

const LAST_LONG_ENTRY = 0x40;
/** Byte offsets of the 13 UTF-16 characters inside a long-name entry: 5, then 6, then 2. */
const LONG_CHAR_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30] as const;

export interface DosTime {
  /** Bits 15-9 year since 1980, 8-5 month, 4-0 day. */
  readonly date: number;
  /** Bits 15-11 hours, 10-5 minutes, 4-0 seconds / 2. */
  readonly time: number;
  /** Creation time's extra resolution: 10 ms units, 0-199. */
  readonly tenths: number;
}

const DOS_EPOCH: DosTime = { date: (0 << 9) | (1 << 5) | 1, time: 0, tenths: 0 };
const DOS_END: DosTime = { date: (127 << 9) | (12 << 5) | 31, time: (23 << 11) | (59 << 5) | 29, tenths: 199 };

/** A DOS date and time from milliseconds since the Unix epoch, in local time unless `utc`. */
export function dosTime(ms: number, utc = false): DosTime {
  if (!Number.isFinite(ms)) return DOS_EPOCH;
  const d = new Date(ms);
  const year = utc ? d.getUTCFullYear() : d.getFullYear();
  if (year < 1980) return DOS_EPOCH;
  if (year > 2107) return DOS_END;
  const month = (utc ? d.getUTCMonth() : d.getMonth()) + 1;
  const day = utc ? d.getUTCDate() : d.getDate();
  const hours = utc ? d.getUTCHours() : d.getHours();
  const minutes = utc ? d.getUTCMinutes() : d.getMinutes();
  const seconds = utc ? d.getUTCSeconds() : d.getSeconds();
  return {
    date: ((year - 1980) << 9) | (month << 5) | day,
    time: (hours << 11) | (minutes << 5) | (seconds >> 1),
    tenths: (seconds & 1) * 100 + Math.floor(d.getUTCMilliseconds() / 10),
  };
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, v & 0xffff);
  put16(b, at + 2, (v >>> 16) & 0xffff);
}

export interface ShortEntryFields {
  /** 11 ASCII characters, space padded. */
  readonly short: string;
  readonly attr: number;
  readonly cluster: number;
  readonly size: number;
  readonly time: DosTime;
}

/** One 32-byte short entry; creation, access and write times are all the given time. */
export function shortEntry(f: ShortEntryFields): Uint8Array {
  const b = new Uint8Array(ENTRY_SIZE);
  for (let i = 0; i < 11; i++) b[i] = f.short.charCodeAt(i);
  b[11] = f.attr;
  b[13] = f.time.tenths;
  put16(b, 14, f.time.time);
  put16(b, 16, f.time.date);
  put16(b, 18, f.time.date);
  put16(b, 20, f.cluster >>> 16);
  put16(b, 22, f.time.time);
  put16(b, 24, f.time.date);
  put16(b, 26, f.cluster & 0xffff);
  put32(b, 28, f.size);
  return b;
}

/** How many long-name entries a long name takes. */
export function longEntryCount(long: string): number {
  return Math.ceil(long.length / LONG_CHARS_PER_ENTRY);
}

/**
 * The long-name entries for `long`, in on-disk order (highest ordinal first). The name is
 * UTF-16LE, ended by 0x0000 when it does not fill the last entry, then padded with 0xFFFF.
 */
export function longEntries(long: string, short: string): Uint8Array {
  const count = longEntryCount(long);
  const checksum = shortNameChecksum(short);
  const out = new Uint8Array(count * ENTRY_SIZE);
  for (let ord = 1; ord <= count; ord++) {
    const at = (count - ord) * ENTRY_SIZE;
    out[at] = ord === count ? ord | LAST_LONG_ENTRY : ord;
    out[at + 11] = Attr.LONG_NAME;
    out[at + 13] = checksum;
    LONG_CHAR_OFFSETS.forEach((offset, k) => {
      const index = (ord - 1) * LONG_CHARS_PER_ENTRY + k;
      const unit = index < long.length ? long.charCodeAt(index) : index === long.length ? 0x0000 : 0xffff;
      put16(out, at + offset, unit);
    });
  }
  return out;
}

/** Entries needed for one name: its long-name entries (if any) and the short entry. */
export function entryCount(name: DirectoryName): number {
  return (name.needsLongEntries ? longEntryCount(name.long) : 0) + 1;
}

/** The long-name entries (if any) followed by the short entry, ready to copy into a directory. */
export function nameEntries(name: DirectoryName, f: Omit<ShortEntryFields, "short">): Uint8Array {
  const short = shortEntry({ ...f, short: name.short });
  if (!name.needsLongEntries) return short;
  const long = longEntries(name.long, name.short);
  const out = new Uint8Array(long.length + ENTRY_SIZE);
  out.set(long);
  out.set(short, long.length);
  return out;
}
