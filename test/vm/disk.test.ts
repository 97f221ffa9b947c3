// A user's own bootable hard-disk image (MBR, a FAT partition, SYSLINUX, tiny's kernel) served
// by the host from its image and a copy-on-write overlay: the guest's file survives a reboot,
// the image is never written, a host killed with SIGKILL mid-write leaves a disk that boots
// and checks clean, and `unmachine run IMAGE` on a disk over 2 GiB is a one-off that says so.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync, copyFileSync, truncateSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { bootDisk, buildBootableDisk, diskPlan, PARTITION_OFFSET } from "../support/bootable-disk.mjs";
import { exportDisk, OverlayDisk, overlayStats } from "../../main/disk/overlay.js";
import { tinyPrompt } from "../support/guests.js";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");
const script = resolve(import.meta.dirname, "../support/bootable-disk.mjs");
const SIZE_MiB = 64;
const SIZE = SIZE_MiB * 1024 * 1024;

/** The SHA-256 of a file's first `limit` bytes (all of it by default), read in pieces. */
function sha(path: string, limit = Infinity): string {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  const chunk = new Uint8Array(1024 * 1024);
  let at = 0;
  for (;;) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, limit - at), at);
    if (n <= 0) break;
    hash.update(chunk.subarray(0, n));
    at += n;
  }
  closeSync(fd);
  return hash.digest("hex");
}

let dir: string;
let base: string;
let baseHash: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "unmachine-disk-"));
  base = buildBootableDisk(dir, SIZE_MiB);
  baseHash = sha(base);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a hard disk served from its image and an overlay", () => {
  it("keeps the guest's file in the overlay, not in the image, and reads it at the next boot", async () => {
    const overlay = join(dir, "keep.overlay");
    const plan = diskPlan({ base, overlay, size: SIZE });
    const first = await bootDisk(plan);
    const wrote = await first.guest.exec("mkdir -p /d && mount -t vfat /dev/sda1 /d && echo kept across boots > /d/NOTE.TXT && sync && umount /d && echo written", 120_000);
    expect(wrote.output).toContain("written");
    await first.stop();
    expect(sha(base)).toBe(baseHash);
    expect(overlayStats(overlay).changedBytes).toBeGreaterThan(0);

    const second = await bootDisk(diskPlan({ base, overlay, size: SIZE }));
    const read = await second.guest.exec("mkdir -p /d && mount -t vfat /dev/sda1 /d && cat /d/NOTE.TXT", 120_000);
    await second.stop();
    expect(read.output).toContain("kept across boots");
    expect(sha(base)).toBe(baseHash);
  }, 400_000);

  it("boots again and checks clean after the host is killed with SIGKILL while the guest writes", async () => {
    const overlay = join(dir, "killed.overlay");
    const child = spawn(process.execPath, [script, base, overlay, String(SIZE)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
    await new Promise<void>((resolveWrites, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (/wrote 8\b/.test(out)) resolveWrites();
      });
      child.on("exit", (code) => reject(new Error(`the host ended by itself (${code}): ${out.slice(-2000)}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    expect(sha(base)).toBe(baseHash);
    expect(overlayStats(overlay).changedBytes).toBeGreaterThan(0);

    const again = await bootDisk(diskPlan({ base, overlay, size: SIZE }));
    const listed = await again.guest.exec("mkdir -p /d && mount -t vfat /dev/sda1 /d && ls /d && umount /d && echo remounted", 120_000);
    await again.stop();
    expect(listed.output).toContain("remounted");
    expect(listed.output).toContain("f0.bin");

    const flat = join(dir, "killed-flat.img");
    const disk = new OverlayDisk(base, overlay, { readOnly: true, size: SIZE });
    exportDisk(disk, flat);
    disk.close();
    const partition = join(dir, "killed-part.img");
    const bytes = new Uint8Array(SIZE - PARTITION_OFFSET);
    const fd = openSync(flat, "r");
    readSync(fd, bytes, 0, bytes.length, PARTITION_OFFSET);
    closeSync(fd);
    writeFileSync(partition, bytes);
    const fsck = spawnSync("fsck.fat", ["-n", partition], { encoding: "utf8" });
    // The guest had the disk mounted when its host was killed, as after a power cut: its FAT
    // says so (the dirty bit, which Linux keeps until a check). Nothing else may be found.
    const findings = (fsck.stdout + fsck.stderr)
      .split("\n")
      .filter((line) => line.trim() && !/^fsck\.fat \d/.test(line) && !/Dirty bit is set|removing dirty bit|Leaving filesystem unchanged/.test(line))
      .filter((line) => !/: \d+ files, \d+\/\d+ clusters$/.test(line));
    expect(findings, fsck.stdout + fsck.stderr).toEqual([]);
    // fsck.fat counts the dirty bit alone as something to fix (status 1): only that is allowed.
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(/Dirty bit is set/.test(fsck.stdout) ? 1 : 0);
    expect(sha(base)).toBe(baseHash);
  }, 500_000);

  it("runs an image over 2 GiB as a one-off: says so, serves it without loading it, leaves nothing behind", () => {
    const big = join(dir, "big.img");
    copyFileSync(base, big);
    truncateSync(big, 2.5 * 1024 ** 3);
    const before = sha(big, SIZE);
    const modified = statSync(big).mtimeMs;
    const temp = join(dir, "tmp");
    mkdirSync(temp);
    const r = spawnSync(process.execPath, [bin, "run", big, "--headless", "--until", tinyPrompt(), "--timeout", "170"], {
      encoding: "utf8",
      timeout: 200_000,
      env: { ...process.env, TMPDIR: temp, UNMACHINE_DATA: join(dir, "data") },
    });
    expect(r.stderr).toMatch(/big\.img: a one-off run: the guest's changes to this disk go to a temporary overlay and are dropped when it ends/);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(temp).filter((name) => name.startsWith("unmachine-run-"))).toEqual([]);
    expect(statSync(big).size).toBe(2.5 * 1024 ** 3);
    expect(statSync(big).mtimeMs).toBe(modified);
    expect(sha(big, SIZE)).toBe(before);
  }, 250_000);
});
