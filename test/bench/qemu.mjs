// QEMU TCG, the benchmarks' reference: tiny's kernel and initramfs booted with the console on
// the serial port, as every benchmark runs it. From Debian's qemu-system-x86
// (scripts/system-deps.sh bench, which npm run bench runs first).
import { spawnSync } from "node:child_process";

export const QEMU = "qemu-system-i386";

/** Ends the benchmark with one line when QEMU is missing, before it has run anything. */
export function requireQemu() {
  if (spawnSync(QEMU, ["--version"], { stdio: "ignore" }).error) {
    process.stderr.write(`${QEMU} (the benchmarks' reference) is not installed: run npm run bench, or bash scripts/system-deps.sh bench first\n`);
    process.exit(2);
  }
}

/** QEMU's arguments to boot tiny (its profile and media) with its console on stdio, then `extra`. */
export function qemuTinyArgs(profile, media, extra = []) {
  const cmdline = profile.cmdline.replace("console=tty0", "").replace(/\s+/g, " ").trim();
  return ["-accel", "tcg", "-m", String(profile.memory), "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
    "-kernel", media.bzimage, "-initrd", media.initrd, "-append", cmdline, ...extra];
}
