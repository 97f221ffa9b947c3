// A bootable hard-disk image as a user would bring one: a FAT file system with SYSLINUX
// (Debian's syslinux and mtools) holding tiny's kernel and initramfs, booted with `append`
// added to tiny's own command line, so the guest can say which disk it came from.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cacheDir } from "./fixtures.js";

export function tinyBootDisk(append: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "unmachine-boot-disk-"));
  const image = join(dir, "disk.img");
  const config = join(dir, "syslinux.cfg");
  const profile = JSON.parse(readFileSync(join(import.meta.dirname, "../../guests/tiny/guest.json"), "utf8")) as { cmdline: string };
  writeFileSync(config, `DEFAULT tiny\nLABEL tiny\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img ${profile.cmdline} ${append}\n`);
  execFileSync("mkfs.fat", ["-C", image, String(16 * 1024)], { stdio: "ignore" });
  execFileSync("syslinux", ["--install", image]);
  const tiny = join(cacheDir, "guests", "tiny");
  execFileSync("mcopy", ["-i", image, join(tiny, "vmlinuz"), join(tiny, "initrd.img"), config, "::"]);
  return readFileSync(image);
}
