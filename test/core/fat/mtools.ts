// Independent readers for the FAT tests: GNU mtools (mdir, mcopy) lists and extracts an image the
// test writes to a file, and dosfstools' fsck.fat checks its structure read-only. Images are
// written sparse (all-zero MiB chunks skipped), so a 600 MiB volume costs only its metadata.

import { spawnSync } from "node:child_process";
import { closeSync, ftruncateSync, mkdirSync, lstatSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { DiskImage } from "../../../core/fat/image.js";

function installed(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { encoding: "utf8" });
  return r.error === undefined;
}

/** mtools is in scripts/system-deps.sh's test set (Debian package mtools). */
export const HAVE_MTOOLS = installed("mdir", ["--version"]);
/** fsck.fat comes with dosfstools (also in the test set). */
export const HAVE_FSCK = installed("fsck.fat", ["--help"]);
export const NO_MTOOLS = "mtools is not installed (apt-get install mtools; scripts/system-deps.sh test does it)";

/** UTF-8 so mtools prints long names as they are; no MTOOLS_SKIP_CHECK, so its geometry checks run. */
const env = { ...process.env, LC_ALL: "C.UTF-8", MTOOLSRC: "/dev/null" };
const MiB = 1024 * 1024;
const ZEROS = Buffer.alloc(MiB);

/** Writes bytes [from, to) of the image to `path`, leaving all-zero MiB chunks as holes. */
export function writeImageFile(image: DiskImage, path: string, from = 0, to = image.size): void {
  const fd = openSync(path, "w");
  try {
    ftruncateSync(fd, to - from);
    for (let at = from; at < to; at += MiB) {
      const chunk = image.read(at, Math.min(MiB, to - at));
      if (Buffer.compare(chunk, ZEROS.subarray(0, chunk.length)) !== 0) writeSync(fd, chunk, 0, chunk.length, at - from);
    }
  } finally {
    closeSync(fd);
  }
}

function run(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: "utf8", env, maxBuffer: 64 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function drive(file: string, offset: number): string {
  return offset === 0 ? file : `${file}@@${offset}`;
}

/** Every path on the volume as mtools sees it, long names first ("/Sub Folder/", "/a.txt"). */
export function mtoolsPaths(file: string, offset: number): string[] {
  return run("mdir", ["-/", "-b", "-a", "-i", drive(file, offset), "::/"])
    .split("\n")
    .filter((line) => line.startsWith("::/"))
    .map((line) => line.slice(2));
}

/** One directory's entries as mtools lists them: short name "README~1.TXT" and long name. */
export interface ListedEntry {
  readonly short: string;
  readonly long: string;
  readonly directory: boolean;
  readonly size: number;
}

const LINE = /^(.{8}) (.{3}) +(<DIR>|\d+) +\d{4}-\d\d-\d\d +\d\d?:\d\d(?: {1,2}(.*))?$/;

/** `mdir -a` of one directory (not "." and ".."). */
export function mtoolsList(file: string, offset: number, dir: string): ListedEntry[] {
  const out: ListedEntry[] = [];
  for (const line of run("mdir", ["-a", "-i", drive(file, offset), `::${dir}`]).split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const base = m[1]!.trimEnd();
    const ext = m[2]!.trimEnd();
    if (base === "." || base === "..") continue;
    const short = ext ? `${base}.${ext}` : base;
    out.push({ short, long: m[4]?.trim() || short, directory: m[3] === "<DIR>", size: m[3] === "<DIR>" ? 0 : Number(m[3]) });
  }
  return out;
}

/** The volume label mdir reports, or undefined. */
export function mtoolsLabel(file: string, offset: number): string | undefined {
  const m = / Volume in drive : is (.*?) *$/m.exec(run("mdir", ["-i", drive(file, offset), "::/"]));
  return m?.[1];
}

/** Extracts `from` (everything by default) with mcopy, long names and times kept, into `dest`. */
export function mtoolsExtract(file: string, offset: number, dest: string, from = "/*"): void {
  mkdirSync(dest, { recursive: true });
  run("mcopy", ["-s", "-m", "-n", "-i", drive(file, offset), `::${from}`, dest]);
}

/** fsck.fat -n (check only) on a file holding just the volume: its exit status and report. */
export function fsckFat(volumeFile: string): { status: number | null; output: string } {
  const r = spawnSync("fsck.fat", ["-n", "-v", volumeFile], { encoding: "utf8", env });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export interface TreeEntry {
  readonly directory: boolean;
  readonly bytes?: Buffer;
  readonly mtimeMs: number;
}

/** A host folder as relative path → contents, to compare what mcopy extracted with the source. */
export function readTree(root: string, relative = ""): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  for (const name of readdirSync(join(root, relative)).sort()) {
    const rel = relative ? `${relative}/${name}` : name;
    const st = lstatSync(join(root, rel));
    if (st.isDirectory()) {
      out.set(rel, { directory: true, mtimeMs: st.mtimeMs });
      for (const [k, v] of readTree(root, rel)) out.set(k, v);
    } else if (st.isFile()) {
      out.set(rel, { directory: false, bytes: readFileSync(join(root, rel)), mtimeMs: st.mtimeMs });
    }
  }
  return out;
}

/** A DOS time keeps even seconds: what an mtime reads back as. */
export function dosRounded(ms: number): number {
  return Math.floor(ms / 2000) * 2000;
}
