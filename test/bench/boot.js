#!/usr/bin/env node
// Benchmark: time from start to the tiny guest's first shell prompt, and peak host memory,
// for (1) the app's headless path (`unmachine run tiny --headless --until`), (2) bare v86 on
// the same files, (3) QEMU TCG (qemu-system-i386 -accel tcg) on the same kernel and initrd.
// All in one run, several rounds interleaved; results as medians and ratios, also written to
// test-results/bench/boot.json.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GuestLibrary } from "../../dist/main/guests/library.js";
import { QEMU, qemuTinyArgs, requireQemu } from "./qemu.mjs";

requireQemu();

const root = resolve(import.meta.dirname, "../..");
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const library = new GuestLibrary();
const { profile, firmware, media } = library.resolve("tiny");
const memory = profile.memory;
const benchData = mkdtempSync(join(tmpdir(), "unmachine-bench-boot-"));

function peakRss(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs a command until `ready` matches its stdout; returns ms to the match and its peak RSS. */
function measure(cmd, args, ready, { kill = false, timeoutMs = 180_000, env = {} } = {}) {
  return new Promise((resolvePromise, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], cwd: root, env: { ...process.env, ...env } });
    let out = "";
    let peak = 0;
    let readyMs;
    const poll = setInterval(() => (peak = Math.max(peak, peakRss(child.pid))), 50);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} did not reach the prompt in ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.stdout.on("data", (d) => {
      out += d.toString("latin1");
      if (readyMs === undefined && ready.test(out)) {
        readyMs = performance.now() - start;
        peak = Math.max(peak, peakRss(child.pid));
        if (kill) child.kill("SIGKILL");
      }
    });
    child.stderr.resume();
    child.on("error", (error) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", () => {
      clearInterval(poll);
      clearTimeout(timer);
      if (readyMs === undefined) reject(new Error(`${cmd} exited before the prompt:\n${out.slice(-2000)}`));
      else resolvePromise({ ms: readyMs, rss: peak });
    });
  });
}

const contenders = {
  // A cold boot (the app's instant-on resume is measured in resume.js), in a data folder of its own.
  app: () => measure(process.execPath, ["bin/unmachine.js", "run", "tiny", "--cold", "--headless", "--until", "tiny:/# "], /tiny:\/# /, { env: { UNMACHINE_DATA: benchData } }),
  "bare v86": () =>
    measure(process.execPath, ["test/bench/bare-v86.mjs", firmware.bios, firmware.vgaBios, media.bzimage, media.initrd, profile.cmdline, String(memory)], /PROMPT \d+/),
  "qemu tcg": () =>
    measure(QEMU, qemuTinyArgs(profile, media), /tiny:[^\n]*# /, { kill: true }),
};

const results = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
for (let round = 1; round <= rounds; round++) {
  for (const [name, run] of Object.entries(contenders)) {
    const r = await run();
    results[name].push(r);
    process.stderr.write(`round ${round}/${rounds} ${name.padEnd(9)} ${(r.ms / 1000).toFixed(2)} s  ${(r.rss / 2 ** 20).toFixed(0)} MiB\n`);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = Object.fromEntries(
  Object.entries(results).map(([name, rs]) => [name, { seconds: median(rs.map((r) => r.ms)) / 1000, peakMiB: median(rs.map((r) => r.rss)) / 2 ** 20 }]),
);
const ratio = (a, b) => (summary[a].seconds / summary[b].seconds).toFixed(2);
const mem = (a, b) => (summary[a].peakMiB / summary[b].peakMiB).toFixed(2);

console.log(`\nTime to tiny's first shell prompt (median of ${rounds}), peak host RSS:`);
for (const [name, s] of Object.entries(summary)) console.log(`  ${name.padEnd(9)} ${s.seconds.toFixed(2).padStart(6)} s  ${s.peakMiB.toFixed(0).padStart(5)} MiB`);
console.log(`  app / bare v86: time ${ratio("app", "bare v86")}x, memory ${mem("app", "bare v86")}x`);
console.log(`  app / qemu tcg: time ${ratio("app", "qemu tcg")}x, memory ${mem("app", "qemu tcg")}x`);
console.log(`  bare v86 / qemu tcg: time ${ratio("bare v86", "qemu tcg")}x`);

const outDir = join(root, "test-results", "bench");
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "boot.json"), JSON.stringify({ rounds, memoryMiB: memory, summary, results }, null, 2));
