// Directory entries byte by byte: the long-name entries Windows 9x and Linux read back into the
// host's name (UTF-16, 13 characters each, last one first, checksum of the short name), the short
// entry's cluster and size fields, and DOS timestamps with their 1980..2107 range.

import { describe, expect, it } from "vitest";
import { Attr, ENTRY_SIZE, dosTime, longEntries, longEntryCount, nameEntries, shortEntry } from "../../../core/fat/entries.js";
import { directoryNames, shortNameChecksum } from "../../../core/fat/names.js";

const u16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number): number => (u16(b, at) | (u16(b, at + 2) << 16)) >>> 0;

/** The 13 UTF-16 units of one long-name entry, in name order. */
function units(entry: Uint8Array): number[] {
  return [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30].map((at) => u16(entry, at));
}

/** Reads a name back from long-name entries as a VFAT driver does: by ordinal, up to 0x0000. */
function decode(entries: Uint8Array): string {
  const count = entries.length / ENTRY_SIZE;
  const all: number[] = [];
  for (let ord = 1; ord <= count; ord++) all.push(...units(entries.subarray((count - ord) * ENTRY_SIZE, (count - ord + 1) * ENTRY_SIZE)));
  const end = all.indexOf(0);
  return String.fromCharCode(...(end < 0 ? all : all.slice(0, end)));
}

describe("long-name entries", () => {
  it("encodes a short long name in one entry, ended by 0x0000 and padded with 0xFFFF", () => {
    const e = longEntries("Read Me.txt", "README~1TXT");
    expect(e.length).toBe(ENTRY_SIZE);
    expect(e[0]).toBe(0x41); // ordinal 1, last entry
    expect(e[11]).toBe(Attr.LONG_NAME);
    expect(e[12]).toBe(0);
    expect(e[13]).toBe(shortNameChecksum("README~1TXT"));
    expect(u16(e, 26)).toBe(0); // first cluster is always 0
    expect(units(e)).toEqual([..."Read Me.txt"].map((c) => c.charCodeAt(0)).concat(0x0000, 0xffff));
  });

  it("stores the entry with the highest ordinal first, flagged 0x40, and needs no terminator at exactly 13n characters", () => {
    const name = "abcdefghijklmnopqrstuvwxyz"; // 26 = 2 x 13
    const e = longEntries(name, "ABCDEF~1   ");
    expect(e.length).toBe(2 * ENTRY_SIZE);
    expect(e[0]).toBe(0x42);
    expect(e[ENTRY_SIZE]).toBe(0x01);
    expect(units(e.subarray(0, ENTRY_SIZE))).toEqual([..."nopqrstuvwxyz"].map((c) => c.charCodeAt(0)));
    expect(decode(e)).toBe(name);
  });

  it("keeps UTF-16 as it is, surrogate pairs included, up to 255 units in 20 entries", () => {
    for (const name of ["Überprüfung der Daten.txt", "日本語のファイル名.txt", "emoji 😀 ok.txt", "y".repeat(255)]) {
      const e = longEntries(name, "X~1        ");
      expect(e.length / ENTRY_SIZE).toBe(longEntryCount(name));
      expect(decode(e)).toBe(name);
    }
    expect(longEntryCount("y".repeat(255))).toBe(20);
  });

  it("puts the long-name entries before the short entry, and none for a name that is its own short name", () => {
    const [plain, long] = directoryNames(["README.TXT", "Read Me.txt"], "/");
    const time = dosTime(Date.UTC(2020, 0, 1), true);
    expect(nameEntries(plain!, { attr: Attr.ARCHIVE, cluster: 5, size: 1, time }).length).toBe(ENTRY_SIZE);
    const e = nameEntries(long!, { attr: Attr.ARCHIVE, cluster: 5, size: 1, time });
    expect(e.length).toBe(2 * ENTRY_SIZE);
    expect(String.fromCharCode(...e.subarray(ENTRY_SIZE, ENTRY_SIZE + 11))).toBe("README~1TXT");
  });
});

describe("short entry", () => {
  it("splits the first cluster into high and low words and stores the size", () => {
    const time = dosTime(Date.UTC(2024, 4, 17, 10, 30, 13, 250), true);
    const e = shortEntry({ short: "BIG     BIN", attr: Attr.ARCHIVE, cluster: 0x0012_3456, size: 0xfedc_ba98, time });
    expect(String.fromCharCode(...e.subarray(0, 11))).toBe("BIG     BIN");
    expect(e[11]).toBe(Attr.ARCHIVE);
    expect(u16(e, 20)).toBe(0x0012);
    expect(u16(e, 26)).toBe(0x3456);
    expect(u32(e, 28)).toBe(0xfedc_ba98);
    expect(u16(e, 22)).toBe(time.time); // write time
    expect(u16(e, 24)).toBe(time.date); // write date
    expect(u16(e, 16)).toBe(time.date); // creation date
    expect(u16(e, 18)).toBe(time.date); // last access date
  });
});

describe("DOS time", () => {
  it("packs year-1980, month, day and hours, minutes, seconds/2, with odd seconds in the tenths byte", () => {
    const t = dosTime(Date.UTC(2024, 4, 17, 10, 30, 13, 250), true);
    expect(t.date).toBe(((2024 - 1980) << 9) | (5 << 5) | 17);
    expect(t.time).toBe((10 << 11) | (30 << 5) | 6);
    expect(t.tenths).toBe(125);
  });

  it("uses local time by default, as DOS and Windows do", () => {
    const ms = Date.UTC(2024, 0, 2, 3, 4, 6);
    const local = new Date(ms);
    expect(dosTime(ms).time).toBe((local.getHours() << 11) | (local.getMinutes() << 5) | (local.getSeconds() >> 1));
  });

  it("clamps times before 1980 and after 2107 to the ends of the DOS range", () => {
    expect(dosTime(0, true)).toEqual({ date: (0 << 9) | (1 << 5) | 1, time: 0, tenths: 0 });
    expect(dosTime(Date.UTC(2200, 0, 1), true).date).toBe((127 << 9) | (12 << 5) | 31);
    expect(dosTime(Number.NaN, true).date).toBe((0 << 9) | (1 << 5) | 1);
  });
});
