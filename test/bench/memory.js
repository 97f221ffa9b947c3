#!/usr/bin/env node
// Benchmark: host memory per running guest. The resident memory a process gains for each tiny
// guest it runs at its shell prompt, as the app runs them (`unmachine run`: launch plan, host
// services, a worker thread per guest) and as bare v86 runs the same kernel and initrd with no
// host services, 1 and 2 guests each, in the same run; then what Chromium gains for one guest
// in the app's page against a bare page running v86 (memory-page.mjs). Goal: no more than
// bare v86 per guest.
// Results also in test-results/bench/memory.json.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
const counts = [1, 2];
const MiB = 2 ** 20;

function measure(mode, count) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [join(root, "test/bench/memory-guests.mjs"), mode, String(count)], {
      cwd: root,
      env: { ...process.env, UNMACHINE_DATA: mkdtempSync(join(tmpdir(), "unmachine-bench-")) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("exit", (code) => {
      const line = out.trim().split("\n").pop();
      if (code !== 0 || !line) reject(new Error(`${mode} with ${count} guest(s) failed (exit ${code})`));
      else resolveRun(JSON.parse(line));
    });
  });
}

const results = [];
for (let round = 1; round <= rounds; round++) {
  for (const count of counts) {
    for (const mode of ["app", "bare"]) {
      const r = await measure(mode, count);
      const perGuest = (r.running - r.baseline) / count;
      results.push({ ...r, perGuest });
      process.stderr.write(`round ${round}/${rounds} ${mode.padEnd(4)} ${count} guest(s): +${((r.running - r.baseline) / MiB).toFixed(0)} MiB, ${(perGuest / MiB).toFixed(0)} MiB per guest\n`);
    }
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const per = (mode, count) => median(results.filter((r) => r.mode === mode && r.count === count).map((r) => r.perGuest)) / MiB;
console.log(`\nHost memory per running tiny guest (resident memory gained, median of ${rounds}):`);
const summary = {};
for (const count of counts) {
  const app = per("app", count);
  const bare = per("bare", count);
  summary[count] = { appMiB: app, bareMiB: bare };
  console.log(`  ${count} guest(s): app ${app.toFixed(0).padStart(4)} MiB, bare v86 ${bare.toFixed(0).padStart(4)} MiB per guest; app / bare v86 ${(app / bare).toFixed(2)}x`);
}
const page = await new Promise((resolvePage) => {
  const child = spawn(process.execPath, [join(root, "test/bench/memory-page.mjs")], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.on("exit", (code) => resolvePage(code === 0 ? JSON.parse(out.trim().split("\n").pop()) : undefined));
});
if (page) {
  summary.page = { appMiB: page.app / MiB, bareMiB: page.bare / MiB };
  console.log(`  in Chromium, 1 guest: app's page ${(page.app / MiB).toFixed(0)} MiB, bare v86 page ${(page.bare / MiB).toFixed(0)} MiB (PSS gained); app / bare ${(page.app / page.bare).toFixed(2)}x`);
} else {
  console.log("  in Chromium: not measured (the page bench failed; see above)");
}
const outDir = join(root, "test-results", "bench");
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "memory.json"), JSON.stringify({ rounds, summary, results }, null, 2));
