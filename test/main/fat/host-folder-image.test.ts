// A host folder attached as a FAT drive, read back by mtools as a DOS or Windows 9x guest would
// see it: nested folders, long and accented names, a 3 MiB file and an empty one arrive with
// their bytes and times; symlinks and FIFOs do not arrive at all; a file changed after attach
// reads as it is now at its attach-time size; limits and bad folders fail with the folder's name.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { materialize } from "../../../core/fat/image.js";
import { FatError } from "../../../core/fat/tree.js";
import { openHostFolderImage, type HostFolderImage } from "../../../main/fat/host-folder-image.js";
import {
  dosRounded, fsckFat, HAVE_FSCK, HAVE_MTOOLS, mtoolsExtract, mtoolsLabel, mtoolsList, NO_MTOOLS, readTree, writeImageFile,
} from "../../core/fat/mtools.js";

const MiB = 1024 * 1024;
const base = mkdtempSync(join(tmpdir(), "unmachine-fat-host-"));
let count = 0;
afterAll(() => rmSync(base, { recursive: true, force: true }));

const WHEN = new Date(2022, 10, 3, 14, 15, 16);

function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A folder named "Host Share" with what users keep in one, and a sibling folder outside it. */
function makeShare(): { share: string; outside: string } {
  const dir = join(base, `case-${++count}`);
  const share = join(dir, "Host Share");
  const outside = join(dir, "outside");
  mkdirSync(join(share, "docs", "deep", "er", "still deeper"), { recursive: true });
  mkdirSync(join(share, "empty folder"));
  mkdirSync(outside);
  writeFileSync(join(outside, "secret.txt"), "outside the share");
  const files: [string, Buffer | string][] = [
    ["Überprüfung der Daten.txt", "Prüfsumme: 42\n"],
    ["Read Me.txt", "Read me first.\r\n"],
    ["README.TXT", "UPPER\r\n"],
    ["big.bin", noise(3 * MiB, 1234)],
    ["empty.txt", ""],
    ["docs/Project Plan 2024.md", "# Plan\n"],
    ["docs/deep/er/still deeper/leaf.txt", "leaf\n"],
  ];
  files.forEach(([path, content], i) => {
    writeFileSync(join(share, path), content);
    utimesSync(join(share, path), WHEN, new Date(WHEN.getTime() + i * 3000));
  });
  symlinkSync("Read Me.txt", join(share, "link to readme"));
  symlinkSync(join(outside, "secret.txt"), join(share, "docs", "escape"));
  symlinkSync(outside, join(share, "outside dir"));
  spawnSync("mkfifo", [join(share, "pipe")]);
  return { share, outside };
}

/** Writes the drive out and extracts it with mcopy; returns the disk file and the extracted folder. */
function extract(image: HostFolderImage): { disk: string; dest: string } {
  const disk = join(base, `disk-${++count}.img`);
  writeImageFile(image, disk);
  const dest = join(base, `extract-${count}`);
  mtoolsExtract(disk, image.volumeOffset, dest);
  return { disk, dest };
}

const withMtools = HAVE_MTOOLS ? describe : describe.skip;
if (!HAVE_MTOOLS) console.warn(`test/main/fat: mtools checks skipped: ${NO_MTOOLS}`);

withMtools("a host folder as a FAT drive, read by mtools", () => {
  it("carries every regular file and folder with its long name, bytes and time, and nothing else", () => {
    const { share } = makeShare();
    const image = openHostFolderImage(share);
    try {
      const { disk, dest } = extract(image);
      const source = readTree(share);
      const got = readTree(dest);
      expect([...got.keys()].sort()).toEqual([...source.keys()].sort());
      for (const [path, want] of source) {
        const g = got.get(path)!;
        expect(g.directory, path).toBe(want.directory);
        if (!want.directory) {
          expect(g.bytes!.length, path).toBe(want.bytes!.length);
          expect(Buffer.compare(g.bytes!, want.bytes!), path).toBe(0);
          expect(g.mtimeMs, path).toBe(dosRounded(want.mtimeMs));
        }
      }
      expect(got.has("link to readme")).toBe(false);
      expect(got.has("docs/escape")).toBe(false);
      expect(got.has("outside dir")).toBe(false);
      expect(got.has("pipe")).toBe(false);

      const root = new Map(mtoolsList(disk, image.volumeOffset, "/").map((e) => [e.long, e]));
      expect(root.get("Read Me.txt")?.short).toBe("README~1.TXT");
      expect(root.get("README.TXT")?.short).toBe("README.TXT");
      expect(root.get("Überprüfung der Daten.txt")?.short).toBe("UBERPR~1.TXT");
      expect(root.get("big.bin")?.size).toBe(3 * MiB);
      expect(mtoolsLabel(disk, image.volumeOffset)).toBe("HOST SHARE");

      if (HAVE_FSCK) {
        const volume = join(base, `volume-${count}.img`);
        writeImageFile(image, volume, image.volumeOffset, image.volumeOffset + image.geometry.volumeSectors * 512);
        const fsck = fsckFat(volume);
        expect(fsck.status, fsck.output).toBe(0);
      }
    } finally {
      image.dispose();
    }
  });

  it("reads a file changed after attach as it is now, cut or padded to the size it had", () => {
    const { share } = makeShare();
    const image = openHostFolderImage(share);
    try {
      writeFileSync(join(share, "Read Me.txt"), "CHANGED");
      writeFileSync(join(share, "README.TXT"), "a much longer content than before\r\n");
      const { dest } = extract(image);
      const shrunk = readTree(dest).get("Read Me.txt")!.bytes!;
      expect(shrunk.length).toBe("Read me first.\r\n".length);
      expect(shrunk.toString("latin1")).toBe("CHANGED".padEnd(shrunk.length, "\0"));
      expect(readTree(dest).get("README.TXT")!.bytes!.toString()).toBe("a much ");
    } finally {
      image.dispose();
    }
  });
});

describe("a host folder as a FAT drive", () => {
  it("lists what it left out and why", () => {
    const { share } = makeShare();
    const image = openHostFolderImage(share);
    image.dispose();
    const skipped = new Map(image.skipped.map((s) => [s.path, s.reason]));
    expect(skipped.get("link to readme")).toMatch(/symbolic link/);
    expect(skipped.get("docs/escape")).toMatch(/symbolic link/);
    expect(skipped.get("outside dir")).toMatch(/symbolic link/);
    expect(skipped.get("pipe")).toMatch(/not a regular file/);
  });

  it("reads zeros, and says so, from a file replaced or removed after attach, and never the new file", () => {
    const { share } = makeShare();
    const errors: string[] = [];
    const image = openHostFolderImage(share, { onReadError: (path) => errors.push(path) });
    try {
      const replacement = join(share, "replacement");
      writeFileSync(replacement, "NEW CONTENT THAT MUST NOT SHOW");
      renameSync(replacement, join(share, "Read Me.txt"));
      rmSync(join(share, "big.bin"));
      const whole = Buffer.from(materialize(image));
      expect(whole.includes("NEW CONTENT")).toBe(false);
      expect(whole.includes(noise(3 * MiB, 1234).subarray(0, 4096))).toBe(false);
      expect(errors.sort()).toEqual([join(share, "Read Me.txt"), join(share, "big.bin")].sort());
    } finally {
      image.dispose();
    }
  });

  it("stops reading files once disposed", () => {
    const { share } = makeShare();
    const errors: string[] = [];
    const image = openHostFolderImage(share, { onReadError: (path) => errors.push(path) });
    image.dispose();
    expect(Buffer.from(materialize(image)).includes("Read me first.")).toBe(false);
    expect(new Set(errors).size).toBe(errors.length);
    expect(errors).toContain(join(share, "big.bin"));
  });

  it("refuses a folder over its limits, naming the folder", () => {
    const { share } = makeShare();
    expect(() => openHostFolderImage(share, { maxEntries: 3 })).toThrow(FatError);
    expect(() => openHostFolderImage(share, { maxEntries: 3 })).toThrow(`${share}: holds more than 3 files and folders`);
    expect(() => openHostFolderImage(share, { maxDepth: 2 })).toThrow(`${share}: "docs/deep/er" is nested more than 2 folders deep`);
    expect(() => openHostFolderImage(share, { maxBytes: MiB })).toThrow(`${share}: its files hold more than 1.0 MiB`);
  });

  it("refuses what is not a folder, naming it", () => {
    const { share } = makeShare();
    expect(() => openHostFolderImage(join(share, "missing"))).toThrow(`${join(share, "missing")}: no such folder`);
    expect(() => openHostFolderImage(join(share, "big.bin"))).toThrow(`${join(share, "big.bin")}: is not a folder`);
  });

  it("attaches an empty folder as an empty drive", () => {
    const dir = join(base, `empty-${++count}`);
    mkdirSync(dir);
    const image = openHostFolderImage(dir);
    image.dispose();
    expect(image.fileBytes).toBe(0);
    expect(image.geometry.fatBits).toBe(16);
  });
});
