// The FAT image as a guest's disk driver meets it: mtools (an independent FAT reader) must list
// the same long and short names and extract the same bytes and times, fsck.fat must find nothing
// wrong, and the MBR and BPB must say what DOS, Windows 9x and v86 expect (one partition at
// sector 63, 16 x 63 CHS, FAT16 or FAT32 by size). Partial reads must agree with the whole image.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildFatImage, materialize, type FatImage, type FatImageOptions } from "../../../core/fat/image.js";
import { PartitionType } from "../../../core/fat/geometry.js";
import { directory, fileFromBytes, FatError, type FatDirectory, type FatFile, type FatNode } from "../../../core/fat/tree.js";
import {
  dosRounded, fsckFat, HAVE_FSCK, HAVE_MTOOLS, mtoolsExtract, mtoolsLabel, mtoolsList, mtoolsPaths, NO_MTOOLS, readTree, writeImageFile,
} from "./mtools.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const base = mkdtempSync(join(tmpdir(), "unmachine-fat-"));
let count = 0;
afterAll(() => rmSync(base, { recursive: true, force: true }));

const T = new Date(2023, 5, 15, 12, 34, 56).getTime();
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const u16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number): number => (u16(b, at) | (u16(b, at + 2) << 16)) >>> 0;

/** Deterministic bytes that differ from every other run of the same length. */
function noise(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A tree with what trips FAT writers: long, accented and clashing names, empty files and folders. */
function sampleTree(): FatDirectory {
  const longNames = Array.from({ length: 12 }, (_, i) => fileFromBytes(`Long File Name ${i + 1}.txt`, text(`file ${i + 1}\n`), T + i * 2000));
  return directory("", [
    fileFromBytes("Read Me.txt", text("Read me first.\r\n"), T),
    fileFromBytes("README.TXT", text("The upper-case one.\r\n"), T),
    fileFromBytes("Überprüfung der Daten.txt", text("geprüft\n"), T),
    fileFromBytes("empty.dat", new Uint8Array(0), T),
    fileFromBytes("one sector.bin", noise(512, 7), T),
    fileFromBytes("random.bin", noise(300 * KiB + 7, 42), T - 86_400_000),
    fileFromBytes(`${"x".repeat(200)}.txt`, text("a very long name\n"), T),
    directory("Sub Folder", [
      fileFromBytes("a.b.c.txt", text("abc"), T),
      ...longNames,
      directory("Deeper", [fileFromBytes("nested file.txt", noise(5000, 3), T), directory("EMPTYDIR", [], T)], T),
    ], T),
    directory("empty folder", [], T),
  ], T);
}

/** What a correct reader extracts from `tree`: relative path → bytes (undefined for folders). */
function expected(tree: FatDirectory, prefix = ""): Map<string, { bytes: Uint8Array | undefined; mtime: number }> {
  const out = new Map<string, { bytes: Uint8Array | undefined; mtime: number }>();
  for (const c of tree.children) {
    const path = prefix + c.name;
    if (c.kind === "directory") {
      out.set(path, { bytes: undefined, mtime: c.mtime });
      for (const [k, v] of expected(c, `${path}/`)) out.set(k, v);
    } else {
      out.set(path, { bytes: c.read(0, c.size), mtime: c.mtime });
    }
  }
  return out;
}

/** Writes the disk and the bare volume to files for mtools and fsck.fat. */
function writeOut(image: FatImage): { disk: string; volume: string } {
  const dir = join(base, `case-${++count}`);
  rmSync(dir, { recursive: true, force: true });
  const disk = `${dir}.img`;
  const volume = `${dir}.vol`;
  writeImageFile(image, disk);
  writeImageFile(image, volume, image.volumeOffset, image.volumeOffset + image.geometry.volumeSectors * 512);
  return { disk, volume };
}

/** Everything an independent reader can say about the image, checked against the tree. */
function checkWithMtools(image: FatImage, tree: FatDirectory): string {
  const { disk, volume } = writeOut(image);
  const want = expected(tree);
  const paths = mtoolsPaths(disk, image.volumeOffset);
  expect(paths.sort()).toEqual([...want].map(([p, v]) => (v.bytes ? `/${p}` : `/${p}/`)).sort());

  const dest = join(base, `extract-${++count}`);
  mtoolsExtract(disk, image.volumeOffset, dest);
  const got = readTree(dest);
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [path, w] of want) {
    const g = got.get(path)!;
    expect(g.directory, path).toBe(w.bytes === undefined);
    if (w.bytes) {
      expect(g.bytes!.length, path).toBe(w.bytes.length);
      expect(Buffer.compare(g.bytes!, Buffer.from(w.bytes)), path).toBe(0);
      expect(g.mtimeMs, path).toBe(dosRounded(w.mtime));
    }
  }

  if (HAVE_FSCK) {
    const fsck = fsckFat(volume);
    expect(fsck.output).not.toMatch(/differ|wrong|dirty|invalid|bad|error/i);
    expect(fsck.status, fsck.output).toBe(0);
  }
  return disk;
}

const withMtools = HAVE_MTOOLS ? describe : describe.skip;
if (!HAVE_MTOOLS) console.warn(`test/core/fat: mtools checks skipped: ${NO_MTOOLS}`);

withMtools("the image as mtools and fsck.fat read it", () => {
  const cases: [string, FatImageOptions, number][] = [
    ["a FAT16 hard disk", { label: "host files" }, 16],
    ["a FAT32 hard disk", { label: "host files", fatBits: 32 }, 32],
    ["a FAT12 floppy", { layout: "floppy", label: "host files" }, 12],
  ];
  for (const [what, options, bits] of cases) {
    it(`lists, extracts and checks ${what} with the tree's names, bytes and times`, () => {
      const tree = sampleTree();
      const image = buildFatImage(tree, options);
      expect(image.geometry.fatBits).toBe(bits);
      const disk = checkWithMtools(image, tree);
      expect(mtoolsLabel(disk, image.volumeOffset)).toBe("HOST FILES");
    });
  }

  it("shows the short names DOS uses beside the long names", () => {
    const tree = sampleTree();
    const image = buildFatImage(tree);
    const { disk } = writeOut(image);
    const root = mtoolsList(disk, image.volumeOffset, "/");
    const byLong = new Map(root.map((e) => [e.long, e]));
    expect(byLong.get("Read Me.txt")?.short).toBe("README~1.TXT");
    expect(byLong.get("README.TXT")?.short).toBe("README.TXT");
    expect(byLong.get("Überprüfung der Daten.txt")?.short).toBe("UBERPR~1.TXT");
    expect(byLong.get("random.bin")).toMatchObject({ short: "RANDOM.BIN", size: 300 * KiB + 7 });
    expect(byLong.get("Sub Folder")).toMatchObject({ short: "SUBFOL~1", directory: true });
    const sub = mtoolsList(disk, image.volumeOffset, "/Sub Folder");
    expect(sub.find((e) => e.long === "Long File Name 10.txt")?.short).toBe("LONGF~10.TXT");
    expect(sub.find((e) => e.long === "a.b.c.txt")?.short).toBe("ABC~1.TXT");
  });

  it("grows a FAT16 root directory past 512 entries when the root holds many long names", () => {
    const files: FatNode[] = Array.from({ length: 300 }, (_, i) => fileFromBytes(`Document number ${i}.txt`, text(`${i}`), T));
    const tree = directory("", files, T);
    const image = buildFatImage(tree);
    expect(image.geometry.rootEntries).toBeGreaterThan(512);
    checkWithMtools(image, tree);
  });

  it("picks FAT32 with an LBA partition for a 600 MiB tree, and its files past the first 600 MiB read back", () => {
    const big = 600 * MiB;
    // All zeros, so the image file stays sparse.
    const bigFile: FatFile = { kind: "file", name: "big.bin", size: big, mtime: T, read: (_offset, length) => new Uint8Array(length) };
    const after = fileFromBytes("after.txt", noise(10_000, 5), T);
    const tree = directory("", [bigFile, directory("z", [after], T)], T);
    const image = buildFatImage(tree);
    expect(image.geometry.fatBits).toBe(32);
    expect(image.geometry.partitionType).toBe(PartitionType.FAT32_LBA);
    expect(image.geometry.sectorsPerCluster * 512).toBe(4096);
    expect(image.freeClusters * 4096).toBeGreaterThanOrEqual(60 * MiB);
    const { disk, volume } = writeOut(image);
    expect(mtoolsList(disk, image.volumeOffset, "/")).toContainEqual({ short: "BIG.BIN", long: "big.bin", directory: false, size: big });
    const dest = join(base, `extract-${++count}`);
    mtoolsExtract(disk, image.volumeOffset, dest, "/z");
    if (HAVE_FSCK) expect(fsckFat(volume).status).toBe(0);
    expect(Buffer.compare(readTree(dest).get("z/after.txt")!.bytes!, Buffer.from(after.read(0, after.size)))).toBe(0);
  });
});

describe("disk layout", () => {
  it("has an MBR with one FAT16 partition at sector 63, whole 16 x 63 cylinders and CHS that v86 reads back", () => {
    const image = buildFatImage(sampleTree());
    const g = image.geometry;
    const mbr = image.read(0, 512);
    expect([mbr[510], mbr[511]]).toEqual([0x55, 0xaa]);
    const p = mbr.subarray(446, 462);
    expect(p[4]).toBe(g.volumeSectors < 0x10000 ? PartitionType.FAT16_SMALL : PartitionType.FAT16);
    expect(u32(p, 8)).toBe(63);
    expect(u32(p, 12)).toBe(g.volumeSectors);
    expect([p[1], p[2]! & 63, p[3]]).toEqual([1, 1, 0]); // start: cylinder 0, head 1, sector 1
    expect([p[5], p[6]! & 63]).toEqual([15, 63]); // end head and sector: v86 takes 16 heads x 63 from here
    const endCylinder = p[7]! | ((p[6]! & 0xc0) << 2);
    expect((endCylinder + 1) * 16 * 63).toBe(g.diskSectors);
    expect(image.size).toBe(g.diskSectors * 512);
    expect(g.diskSectors % (16 * 63)).toBe(0);
    expect(mbr.subarray(462, 510).every((b) => b === 0)).toBe(true); // the other three entries are empty
    expect(image.volumeOffset).toBe(63 * 512);
  });

  it("has a boot sector whose BPB matches the geometry", () => {
    const image = buildFatImage(sampleTree(), { volumeId: 0x1234abcd, label: "My Files" });
    const g = image.geometry;
    const b = image.read(image.volumeOffset, 512);
    expect(b[0]).toBe(0xeb);
    expect(u16(b, 11)).toBe(512);
    expect(b[13]).toBe(g.sectorsPerCluster);
    expect(u16(b, 14)).toBe(1);
    expect(b[16]).toBe(2);
    expect(u16(b, 17)).toBe(g.rootEntries);
    expect(b[21]).toBe(0xf8);
    expect(u16(b, 22)).toBe(g.fatSectors);
    expect([u16(b, 24), u16(b, 26)]).toEqual([63, 16]);
    expect(u32(b, 28)).toBe(63);
    expect(u16(b, 19) || u32(b, 32)).toBe(g.volumeSectors);
    expect(b[38]).toBe(0x29);
    expect(u32(b, 39)).toBe(0x1234abcd);
    expect(String.fromCharCode(...b.subarray(43, 62))).toBe("MY FILES   FAT16   ");
    expect([b[510], b[511]]).toEqual([0x55, 0xaa]);
  });

  it("keeps FAT32's FSInfo free count and the backup boot sector in step", () => {
    const image = buildFatImage(sampleTree(), { fatBits: 32 });
    const v = image.volumeOffset;
    const info = image.read(v + 512, 512);
    expect(u32(info, 0)).toBe(0x41615252);
    expect(u32(info, 484)).toBe(0x61417272);
    expect(u32(info, 488)).toBe(image.freeClusters);
    expect(u32(info, 508)).toBe(0xaa550000);
    expect(image.read(v + 6 * 512, 512)).toEqual(image.read(v, 512));
    expect(image.read(v + 7 * 512, 512)).toEqual(info);
    expect(image.read(0, 512)[446 + 4]).toBe(PartitionType.FAT32_LBA);
  });

  it("uses FAT16 while the disk fits the 1024 cylinders CHS reaches, FAT32 above, and FAT16 LBA when forced past them", () => {
    const zeros = (name: string, size: number): FatFile => ({ kind: "file", name, size, mtime: T, read: (_o, n) => new Uint8Array(n) });
    const fat16 = buildFatImage([zeros("a.bin", 450 * MiB)]);
    expect([fat16.geometry.fatBits, fat16.geometry.partitionType]).toEqual([16, PartitionType.FAT16]);
    expect(fat16.geometry.diskSectors).toBeLessThanOrEqual(1024 * 16 * 63);
    const forced = buildFatImage([zeros("a.bin", 600 * MiB)], { fatBits: 16 });
    expect([forced.geometry.fatBits, forced.geometry.partitionType]).toEqual([16, PartitionType.FAT16_LBA]);
    const large = buildFatImage([zeros("a.bin", 1024 * MiB), zeros("b.bin", 1024 * MiB - 1)]);
    expect([large.geometry.fatBits, large.geometry.sectorsPerCluster]).toEqual([32, 8]);
    expect(large.freeClusters * 4096).toBeGreaterThanOrEqual(200 * MiB);
    expect(large.read(large.size - 512, 512)).toHaveLength(512);
    expect(() => buildFatImage([zeros("a.bin", 2000 * MiB), zeros("b.bin", 2000 * MiB)], { fatBits: 16 })).toThrow(/FAT16 holds at most 2 GiB/);
  });

  it("leaves at least 16 MiB free by default, and the free space asked for", () => {
    const small = buildFatImage(sampleTree());
    expect(small.freeClusters * small.geometry.sectorsPerCluster * 512).toBeGreaterThanOrEqual(16 * MiB);
    const more = buildFatImage(sampleTree(), { freeBytes: 100 * MiB });
    expect(more.freeClusters * more.geometry.sectorsPerCluster * 512).toBeGreaterThanOrEqual(100 * MiB);
  });

  it("makes a bare 1.44 MB floppy for a small tree, 2.88 MB when that is too small, and refuses more", () => {
    const floppy = buildFatImage([fileFromBytes("a.txt", text("a"), T)], { layout: "floppy" });
    expect(floppy.size).toBe(1440 * KiB);
    expect(floppy.volumeOffset).toBe(0);
    const boot = floppy.read(0, 512);
    expect([u16(boot, 19), boot[21], u16(boot, 24), u16(boot, 26)]).toEqual([2880, 0xf0, 18, 2]);
    expect(String.fromCharCode(...boot.subarray(54, 62))).toBe("FAT12   ");
    expect(buildFatImage([fileFromBytes("b.bin", noise(2 * MiB, 1), T)], { layout: "floppy" }).size).toBe(2880 * KiB);
    expect(() => buildFatImage([fileFromBytes("c.bin", noise(3 * MiB, 1), T)], { layout: "floppy" })).toThrow(/largest floppy/);
  });
});

describe("reading", () => {
  it("gives the same bytes for any unaligned piece as for the whole image", () => {
    const image = buildFatImage(sampleTree(), { fatBits: 32 });
    const whole = materialize(image);
    const random = noise(4000, 77);
    for (let i = 0; i < 200; i++) {
      const offset = (u32(random, i * 8) % (image.size - 1)) >>> 0;
      const length = Math.min(image.size - offset, u16(random, i * 8 + 4) % 20_000);
      expect(Buffer.compare(image.read(offset, length), whole.subarray(offset, offset + length)), `${length} bytes at ${offset}`).toBe(0);
    }
  });

  it("pads a file that now reads short with zeros and keeps its size", () => {
    const shrunk: FatFile = { kind: "file", name: "shrunk.txt", size: 1000, mtime: T, read: () => text("only this") };
    const image = buildFatImage([shrunk]);
    const whole = materialize(image);
    const at = whole.indexOf(0x6f /* "o" */, image.volumeOffset + 10 * 512);
    expect(String.fromCharCode(...whole.subarray(at, at + 9))).toBe("only this");
    expect(whole.subarray(at + 9, at + 1000).every((b) => b === 0)).toBe(true);
  });

  it("refuses reads outside the image", () => {
    const image = buildFatImage(sampleTree());
    expect(() => image.read(image.size - 10, 11)).toThrow(RangeError);
    expect(() => image.read(-1, 1)).toThrow(RangeError);
    expect(image.read(image.size - 10, 10)).toHaveLength(10);
  });

  it("materializes only images up to the limit it is given", () => {
    const image = buildFatImage(sampleTree());
    expect(() => materialize(image, 1 * MiB)).toThrow(/only images up to 1.0 MiB/);
  });
});

describe("trees FAT cannot hold", () => {
  it("names the file whose size is not a FAT size", () => {
    const huge: FatFile = { kind: "file", name: "huge.iso", size: 2 ** 32, mtime: T, read: () => new Uint8Array(0) };
    expect(() => buildFatImage(directory("", [directory("isos", [huge], T)], T))).toThrow(FatError);
    expect(() => buildFatImage(directory("", [directory("isos", [huge], T)], T))).toThrow(/\/isos\/huge.iso: size 4294967296/);
  });

  it("names the directory with more entries than FAT allows", () => {
    const many = Array.from({ length: 22_000 }, (_, i) => fileFromBytes(`a long name for file ${i}.txt`, new Uint8Array(0), T));
    expect(() => buildFatImage(directory("", [directory("crowded", many, T)], T))).toThrow(/\/crowded: 22000 names take \d+ directory entries; a FAT directory holds at most 65536/);
  });
});
