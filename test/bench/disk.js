#!/usr/bin/env node
// Benchmark of served hard disks, one run: the tiny guest booted from a user's bootable disk
// image (test/support/bootable-disk.mjs) writes and reads 32 MiB on its raw disk (dd on
// /dev/sda past its partition), once served by the host from image and overlay, once from the
// same image held whole in memory as v86 takes a plain image. Results as MiB/s and ratios,
// also written to test-results/bench/disk.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { bootDisk, buildBootableDisk, diskPlan } from "../support/bootable-disk.mjs";

const root = resolve(import.meta.dirname, "../..");
const MB = 32;
const SIZE_MiB = 128;
const RAW_MiB = 48;
const SKIP = SIZE_MiB - RAW_MiB + 8; // MiB into the disk: past the partition
// Timed in the guest by its own clock (/proc/uptime, 10 ms steps); the write includes its
// fsync, the read runs after dropping the guest's page cache.
const ddScript =
  `up() { cut -d' ' -f1 /proc/uptime; }; t0=$(up); dd if=/dev/zero of=/dev/sda bs=1M seek=${SKIP} count=${MB} conv=fsync 2>/dev/null; t1=$(up); echo 3 > /proc/sys/vm/drop_caches; ` +
  `t2=$(up); dd if=/dev/sda of=/dev/null bs=1M skip=${SKIP} count=${MB} 2>/dev/null; t3=$(up); awk -v a=$t0 -v b=$t1 -v c=$t2 -v d=$t3 'BEGIN { printf "W %d R %d\\n", (b-a)*1e6, (d-c)*1e6 }'`;
const parse = (text) => {
  const m = /W (\d+) R (\d+)/.exec(text);
  if (!m) throw new Error(`no timing in: ${text.slice(-500)}`);
  return { write: MB / (Number(m[1]) / 1e6), read: MB / (Number(m[2]) / 1e6) };
};

async function measure(plan) {
  const run = await bootDisk(plan);
  try {
    return parse((await run.guest.exec(ddScript, 300_000)).output);
  } finally {
    await run.stop();
  }
}

const scratch = mkdtempSync(join(tmpdir(), "unmachine-bench-disk-"));
try {
  const base = buildBootableDisk(scratch, SIZE_MiB, RAW_MiB);
  const size = SIZE_MiB * 1024 * 1024;
  const results = {
    "served (overlay)": await measure(diskPlan({ base, overlay: join(scratch, "bench.overlay"), size })),
    "in memory": await measure(diskPlan({ base, size, inMemory: true })),
  };
  console.log(`\nHard disk, ${MB} MiB raw on /dev/sda, guest dd bs=1M (write with fsync; read after dropping caches):`);
  for (const [name, r] of Object.entries(results)) console.log(`  ${name.padEnd(17)} write ${r.write.toFixed(1).padStart(7)} MiB/s   read ${r.read.toFixed(1).padStart(7)} MiB/s`);
  const s = results["served (overlay)"];
  const m = results["in memory"];
  console.log(`  served / in memory: write ${(s.write / m.write).toFixed(2)}x, read ${(s.read / m.read).toFixed(2)}x`);
  mkdirSync(join(root, "test-results", "bench"), { recursive: true });
  writeFileSync(join(root, "test-results", "bench", "disk.json"), JSON.stringify({ megabytes: MB, results }, null, 2));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
