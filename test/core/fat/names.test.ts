// Short and long names as DOS and Windows users will see them: a host name that already is 8.3
// in upper case stays as it is with no long entry; anything else gets a VFAT long name and a
// short name with "~n" made by the basis-name rules; clashes, invalid characters and device
// names never produce a short name DOS cannot open or two entries DOS cannot tell apart.

import { describe, expect, it } from "vitest";
import {
  basisName, directoryNames, displayShortName, fits83, shortNameChecksum, toLongName, uniqueLongNames,
} from "../../../core/fat/names.js";
import { FatError } from "../../../core/fat/tree.js";

/** The short names DOS would show for a directory holding these host names. */
function shorts(...names: string[]): string[] {
  return directoryNames(names, "/test").map((n) => displayShortName(n.short));
}

describe("short names", () => {
  it("keeps an upper-case 8.3 name as it is, with no long-name entries", () => {
    const [n] = directoryNames(["README.TXT"], "/");
    expect(n).toEqual({ long: "README.TXT", short: "README  TXT", needsLongEntries: false });
    expect(directoryNames(["AUTOEXEC.BAT", "COMMAND.COM", "DOS", "A-B_C~1.$$$"], "/").map((x) => x.needsLongEntries)).toEqual([false, false, false, false]);
  });

  it("gives a lower- or mixed-case 8.3 name its upper-case short name without a tail, and a long name", () => {
    const [lower, mixed] = directoryNames(["readme.txt", "Setup.Exe"], "/");
    expect(displayShortName(lower!.short)).toBe("README.TXT");
    expect(lower!.needsLongEntries).toBe(true);
    expect(displayShortName(mixed!.short)).toBe("SETUP.EXE");
    expect(mixed!.long).toBe("Setup.Exe");
  });

  it('turns "Read Me.txt" into README~1.TXT: spaces are dropped and the name no longer fits 8.3', () => {
    const [n] = directoryNames(["Read Me.txt"], "/");
    expect(displayShortName(n!.short)).toBe("README~1.TXT");
    expect(n!.long).toBe("Read Me.txt");
    expect(n!.needsLongEntries).toBe(true);
  });

  it("numbers clashing names ~1, ~2 ... and shortens the base to make room for ~10", () => {
    const names = Array.from({ length: 11 }, (_, i) => `Long File Name ${i + 1}.txt`);
    const got = shorts(...names);
    expect(got.slice(0, 3)).toEqual(["LONGFI~1.TXT", "LONGFI~2.TXT", "LONGFI~3.TXT"]);
    expect(got[9]).toBe("LONGF~10.TXT");
    expect(got[10]).toBe("LONGF~11.TXT");
    expect(new Set(got).size).toBe(names.length);
  });

  it("never generates a short name another entry already has as its own 8.3 name", () => {
    expect(shorts("Read Me.txt", "README~1.TXT", "Read me too.txt")).toEqual(["README~2.TXT", "README~1.TXT", "README~3.TXT"]);
  });

  it('replaces characters short names cannot hold with "_" and always adds a tail then', () => {
    expect(shorts("a+b.txt")).toEqual(["A_B~1.TXT"]);
    expect(shorts("[x];y=z,w.dat")).toEqual(["_X__Y_~1.DAT"]);
    expect(shorts("Überprüfung der Daten.txt")).toEqual(["UBERPR~1.TXT"]);
    expect(shorts("日本語.doc")).toEqual(["___~1.DOC"]);
    expect(basisName("Überprüfung der Daten.txt").lossy).toBe(true);
  });

  it("keeps at most 3 characters of the last extension and drops earlier periods and leading ones", () => {
    expect(shorts("index.html")).toEqual(["INDEX~1.HTM"]);
    expect(shorts("archive.tar.gz")).toEqual(["ARCHIV~1.GZ"]);
    expect(shorts("a.b.c.txt")).toEqual(["ABC~1.TXT"]);
    expect(shorts(".bashrc")).toEqual(["BASHRC~1"]);
    expect(shorts("Makefile")).toEqual(["MAKEFILE"]);
    expect(shorts("Makefile.in.in")).toEqual(["MAKEFI~1.IN"]);
  });

  it("never gives a file a DOS device name as its short name", () => {
    expect(shorts("con.txt", "AUX", "nul", "LPT1.PRN")).toEqual(["CON~1.TXT", "AUX~1", "NUL~1", "LPT1~1.PRN"]);
  });

  it("decides what fits 8.3 ignoring case only", () => {
    expect(fits83("readme.txt")).toBe(true);
    expect(fits83("READ ME.TXT")).toBe(false);
    expect(fits83("toolongname.txt")).toBe(false);
    expect(fits83("name.text")).toBe(false);
    expect(fits83("a.b.c")).toBe(false);
    expect(fits83(".profile")).toBe(false);
    expect(fits83("ä.txt")).toBe(false);
  });
});

describe("long names", () => {
  it("replaces characters Windows refuses and trailing periods and spaces", () => {
    expect(toLongName('a:b?c*d"e<f>g|h\\i')).toBe("a_b_c_d_e_f_g_h_i");
    expect(toLongName("tab\there")).toBe("tab_here");
    expect(toLongName("name.")).toBe("name_");
    expect(toLongName("name . ")).toBe("name___");
    expect(toLongName("Überprüfung der Daten.txt")).toBe("Überprüfung der Daten.txt");
  });

  it("refuses an empty name and one over 255 UTF-16 units, naming it", () => {
    expect(() => toLongName("")).toThrow(FatError);
    expect(() => toLongName("x".repeat(256))).toThrow(/256 UTF-16 units is longer than the 255/);
    expect(toLongName("x".repeat(255))).toHaveLength(255);
  });

  it("makes names that differ only in case unique, since FAT compares without case", () => {
    expect(uniqueLongNames(["Makefile", "makefile", "MAKEFILE", "notes.txt", "NOTES.TXT"]))
      .toEqual(["Makefile", "makefile (2)", "MAKEFILE (3)", "notes.txt", "NOTES (2).TXT"]);
    expect(uniqueLongNames(["a.txt", "A.TXT", "a (2).txt"])).toEqual(["a.txt", "A (3).TXT", "a (2).txt"]);
  });

  it("gives the renamed one its own short name", () => {
    const names = directoryNames(["README.TXT", "readme.txt"], "/");
    expect(names.map((n) => [n.long, displayShortName(n.short)])).toEqual([["README.TXT", "README.TXT"], ["readme (2).txt", "README~1.TXT"]]);
  });
});

describe("short name checksum", () => {
  /** fatgen103's ChkSum: rotate the 8-bit sum right by one, then add the next byte. */
  function reference(short: string): number {
    let sum = 0;
    for (const ch of short) sum = ((((sum >> 1) | (sum << 7)) & 0xff) + ch.charCodeAt(0)) & 0xff;
    return sum;
  }

  it("matches the rotate-and-add definition for every name", () => {
    for (const s of ["README  TXT", "README~1TXT", "A          ", "~~~~~~~~~~~", "LONGF~10TXT"]) expect(shortNameChecksum(s)).toBe(reference(s));
    expect(shortNameChecksum("README~1TXT")).toBe(0x6b);
  });
});
