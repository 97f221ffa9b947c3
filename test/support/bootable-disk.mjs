// A bootable hard-disk image as a user would bring one, built from the tiny guest's kernel and
// initramfs: syslinux's MBR, one FAT16 partition at 1 MiB with SYSLINUX installed by Debian's
// syslinux (mtools variant) and a syslinux.cfg booting tiny with its console on ttyS0. Plain
// JavaScript on the compiled app (dist/), so the vm tests, a child process they kill and the
// benchmark all build and boot the same disk. Run as a script: boots a disk and writes until killed.

import { execFileSync } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync, writeSync, ftruncateSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { GuestLibrary } from "../../dist/main/guests/library.js";
import { firmwareSources } from "../../dist/main/guests/launch.js";
import { launchPlan } from "../../dist/core/guest/launch-plan.js";
import { HeadlessGuest } from "../../dist/main/headless/runner.js";
import { hostServiceSet } from "../../dist/main/host/services.js";

export const MBR_BIN = "/usr/lib/syslinux/mbr/mbr.bin";
export const PARTITION_OFFSET = 1024 * 1024;

/**
 * Builds `disk.img` in `dir`: sizeMiB in all, the partition from 1 MiB to the end but for
 * `rawMiB` left unpartitioned at the end (for raw reads and writes); returns its path.
 */
export function buildBootableDisk(dir, sizeMiB = 64, rawMiB = 0) {
  const library = new GuestLibrary();
  const { profile, media } = library.resolve("tiny");
  const part = join(dir, "part.img");
  const partKiB = (sizeMiB - 1 - rawMiB) * 1024;
  execFileSync("mkfs.fat", ["-C", "-F", "16", "-n", "TINYDISK", part, String(partKiB)], { stdio: "ignore" });
  const cfg = join(dir, "syslinux.cfg");
  writeFileSync(cfg, `SERIAL 0 115200\nDEFAULT tiny\nPROMPT 0\nTIMEOUT 1\nLABEL tiny\n  KERNEL vmlinuz\n  INITRD initrd.img\n  APPEND ${profile.cmdline}\n`);
  execFileSync("mcopy", ["-i", part, media.bzimage, "::/vmlinuz"]);
  execFileSync("mcopy", ["-i", part, media.initrd, "::/initrd.img"]);
  execFileSync("mcopy", ["-i", part, cfg, "::/syslinux.cfg"]);
  execFileSync("syslinux", ["--install", part]);

  const disk = join(dir, "disk.img");
  const mbr = new Uint8Array(512);
  mbr.set(readFileSync(MBR_BIN).subarray(0, 440), 0);
  const entry = new DataView(mbr.buffer, 446, 16);
  entry.setUint8(0, 0x80); // active
  entry.setUint8(1, 0xfe); // CHS fields unused: the MBR code reads by LBA (EDD)
  entry.setUint16(2, 0xffff);
  entry.setUint8(4, 0x0e); // FAT16, LBA
  entry.setUint8(5, 0xfe);
  entry.setUint16(6, 0xffff);
  entry.setUint32(8, PARTITION_OFFSET / 512, true);
  entry.setUint32(12, (partKiB * 1024) / 512, true);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fd = openSync(disk, "w");
  try {
    writeSync(fd, mbr, 0, 512, 0);
    writeSync(fd, readFileSync(part), 0, partKiB * 1024, PARTITION_OFFSET);
    ftruncateSync(fd, sizeMiB * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
  return disk;
}

/** The plan of a hard disk served from `base` and `overlay` (or an in-memory copy: `inMemory`), tiny's prompt as its ready signal. */
export function diskPlan({ base, overlay, size, inMemory }) {
  const library = new GuestLibrary();
  const firmware = library.firmware();
  if (!firmware) throw new Error("the firmware is not built: run npm run guest");
  const image = inMemory ? { kind: "bytes", bytes: new Uint8Array(readFileSync(base)) } : { kind: "disk", disk: { base, overlay, size } };
  const plan = launchPlan({ kind: "image", name: "disk.img", role: "hda", image }, firmwareSources(firmware), { memory: 128 });
  const tiny = library.profile("tiny");
  plan.ready = { kind: "prompt", prompt: tiny.prompt };
  // As tiny is planned: its kernel finds the IDE controller without ACPI (with it, ata_piix sees no drives).
  plan.machine.acpi = tiny.acpi;
  return plan;
}

/** Boots a plan headless with its host services; resolves once tiny's shell is up. */
export async function bootDisk(plan, onError = (message) => process.stderr.write(`${message}\n`)) {
  const services = hostServiceSet(plan, { onError });
  const guest = new HeadlessGuest(plan, { services: services.attach });
  await guest.waitForShell(180_000);
  return {
    guest,
    async stop() {
      await guest.stop();
      guest.dispose();
      services.dispose();
    },
  };
}

// As a script: node bootable-disk.mjs BASE OVERLAY SIZE: boots, mounts the disk, and writes
// files in a loop, printing "wrote N" after each synced write, until it is killed.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [base, overlay, size] = process.argv.slice(2);
  const { guest } = await bootDisk(diskPlan({ base, overlay, size: Number(size) }));
  guest.onOutput((text) => process.stdout.write(text));
  const loop = "mkdir -p /d && mount -t vfat /dev/sda1 /d && i=0; while true; do dd if=/dev/urandom of=/d/f$((i%6)).bin bs=16k count=$((i%5+1)) 2>/dev/null; sync; i=$((i+1)); echo wrote $i; done";
  await guest.exec(loop, 600_000);
}
