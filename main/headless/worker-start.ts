// Starting the headless worker (worker.ts). `unmachine run` starts one before the rest of the
// CLI has loaded: v86's code loads and its WebAssembly compiles on the second core while the
// guest's plan and saved state are read, and the worker waits for its "init". Unclaimed, it
// holds nothing open: the process ends as if it had never been started.

import { Worker } from "node:worker_threads";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The compiled worker: beside this file in dist/, or in dist/ when this runs from source (tests). */
function workerPath(): string {
  const beside = new URL("./worker.js", import.meta.url);
  if (existsSync(fileURLToPath(beside))) return fileURLToPath(beside);
  return fileURLToPath(new URL("../../dist/main/headless/worker.js", import.meta.url));
}

/**
 * The worker's young generation, capped at V8's starting size (a semi-space of 1 MiB: V8 counts
 * three of them in this figure). Uncapped, V8 grows it while v86 sets up (65,536 I/O port entries
 * that all live on) and the heap took 45 MiB; capped, 16 MiB. Each MiB the heap takes is memory
 * the host backs at its first touch, about 10 µs a 4 KiB page on the virtual machine this was
 * measured on: a headless resume answered in 391-402 against 425-432 ms (medians of 8 and 10,
 * alternated), and a cold boot of tiny took 9.8 against 10.1 s. The young objects of a running
 * emulator are short-lived: its scavenges stay under a millisecond.
 */
const YOUNG_GENERATION_MB = 3;

function startWorker(): Worker {
  const worker = new Worker(workerPath(), { stdout: true, stderr: true, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
  // v86 writes its own diagnostics to the console; keep them off the user's terminal.
  worker.stdout.resume();
  worker.stderr.resume();
  return worker;
}

let early: Worker | undefined;

/** Starts a worker now for the next guest to claim; a second call keeps the first. */
export function startWorkerEarly(): void {
  if (early) return;
  const worker = startWorker();
  worker.unref();
  // One that failed or ended before it was claimed is forgotten: the guest gets a fresh one.
  const forget = (): void => {
    if (early === worker) early = undefined;
  };
  worker.once("error", forget);
  worker.once("exit", forget);
  early = worker;
}

/** The worker started early if there is one, else a new one; the caller sends its "init". */
export function claimWorker(): Worker {
  const worker = early ?? startWorker();
  early = undefined;
  worker.ref();
  return worker;
}
