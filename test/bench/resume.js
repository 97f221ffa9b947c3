#!/usr/bin/env node
// Benchmark: instant-on. Time from the command (or the click) to the tiny guest answering a
// shell command, resumed from its saved state against booted cold, headless (`unmachine run
// tiny --exec`) and in the page (web shell in Debian's Chromium), with QEMU TCG's cold boot of
// the same kernel and initrd (then the same command on its serial console) as the reference;
// in the page also a Start right after a Stop in the same page (it keeps the state it saved).
// The page is clicked once it has settled (it has fetched the state ahead of its Start), and
// its command is given in one piece, as a paste. And the size of the saved state on disk. All in one run, rounds interleaved; medians and
// ratios, also written to test-results/bench/resume.json.
import { CHROMIUM } from "../support/chromium.mjs";
import { chromium } from "@playwright/test";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { QEMU, qemuTinyArgs, requireQemu } from "./qemu.mjs";
import { startWebShell, stopWebShell } from "./web-shell.mjs";

requireQemu();

const root = resolve(import.meta.dirname, "../..");
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const { GuestLibrary } = await import(`${root}/dist/main/guests/library.js`);
const { cacheDir } = await import(`${root}/dist/main/paths.js`);
const library = new GuestLibrary();
const { profile, media } = library.resolve("tiny");
const ANSWER = /ok-42/;
const COMMAND = "echo ok-$((6*7))";

/** A data folder of its own, so the runs here keep their state apart from the user's. */
const data = mkdtempSync(join(tmpdir(), "unmachine-bench-resume-"));
/** A copy of the build cache without tiny's kept state: a machine where tiny can only boot cold. */
const coldCache = mkdtempSync(join(tmpdir(), "unmachine-bench-cold-"));
for (const part of ["firmware", "guests"]) cpSync(join(cacheDir(), part), join(coldCache, part), { recursive: true });
rmSync(join(coldCache, "guests", "tiny", "built.state"), { force: true });

/** Spawns a command and resolves with the ms from the spawn to `ready` on its stdout; then lets it end. */
function timeTo(cmd, args, ready, { env = {}, input, kill = false, timeoutMs = 240_000 } = {}) {
  return new Promise((resolveRun, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let ms;
    let typed = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")}: no answer in ${timeoutMs / 1000} s\n${out.slice(-1500)}${err.slice(-1500)}`));
    }, timeoutMs);
    child.stdout.on("data", (d) => {
      out += d.toString("latin1");
      if (input && !typed && input.after.test(out)) {
        typed = true;
        child.stdin.write(input.text);
      }
      if (ms === undefined && ready.test(out)) {
        ms = performance.now() - start;
        if (kill) child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (ms === undefined) reject(new Error(`${cmd} ${args.join(" ")} ended (${code}) without an answer:\n${out.slice(-1500)}${err.slice(-1500)}`));
      else resolveRun(ms);
    });
  });
}

const cli = (args, env = {}) => timeTo(process.execPath, ["bin/unmachine.js", ...args], ANSWER, { env: { UNMACHINE_DATA: data, ...env } });

/** The page in Debian's Chromium against a web shell: click Start, type the command, wait for the answer. */
async function pageSession(env) {
  const { server, url } = await startWebShell({ UNMACHINE_DATA: data, ...env });
  const profileDir = mkdtempSync(join(tmpdir(), "unmachine-bench-chromium-"));
  const context = await chromium.launchPersistentContext(profileDir, {
    ...CHROMIUM,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  const start = page.getByRole("button", { name: "Start", exact: true });
  await start.waitFor();
  // Clicked once the page has settled (no request for half a second), as a user clicks a page
  // they have seen: by then it has fetched what the Start resumes (guest-run's readAhead).
  await page.waitForLoadState("networkidle");
  /**
   * Start, then type the command on the serial console until the guest answers it. Timed in the
   * page, from the click's event to the answer appearing in the console (a mutation observer),
   * so the driver's own latency (its click's checks, its polling for the answer) is not counted;
   * the command is given right after the click (pasted) into a resuming guest, as a quick user would.
   */
  const startToAnswer = async ({ typeAhead }) => {
    // Its own answer each time: one already on the console (a start before, in this page) does not count.
    const nonce = Math.random().toString(36).slice(2, 8);
    await page.evaluate(
      ({ source }) => {
        const marks = {};
        window.resumeMarks = marks;
        const answer = new RegExp(source);
        const button = [...document.querySelectorAll("button")].find((b) => b.textContent?.trim() === "Start");
        button?.addEventListener("click", () => (marks.click ??= performance.now()), { capture: true, once: true });
        const log = document.querySelector('[data-testid="serial-console"]');
        new MutationObserver((_, observer) => {
          if (marks.click !== undefined && answer.test(log?.textContent ?? "")) {
            marks.answer = performance.now();
            observer.disconnect();
          }
        }).observe(log, { subtree: true, childList: true, characterData: true });
      },
      { source: `${ANSWER.source}-${nonce}` },
    );
    await start.click();
    // A resuming guest is typed to as soon as its console takes typing (the page keeps what is
    // typed while it resumes and gives it to the guest as it runs); a booting one once it shows
    // as running. Keys pressed before the click has turned the console on are not the guest's.
    if (typeAhead) await page.waitForFunction(() => document.querySelector('[data-testid="serial-console"]')?.getAttribute("aria-disabled") === "false", null, { polling: 5, timeout: 60_000 });
    else await page.waitForFunction(() => document.querySelector('[data-testid="guest-state"]')?.textContent?.includes("running"), null, { polling: 5, timeout: 240_000 });
    await page.evaluate(() => document.querySelector('[data-testid="serial-console"] textarea')?.focus());
    await page.evaluate(() => (window.resumeMarks.typing = performance.now()));
    // In one piece, as a paste: the headless run gets its command whole too, and the driver's
    // key-by-key round trips to a page busy resuming are not the guest's time.
    await page.keyboard.insertText(`${COMMAND}-${nonce}`);
    await page.keyboard.press("Enter");
    await page.evaluate(() => (window.resumeMarks.typed = performance.now()));
    const marks = await page.waitForFunction(() => window.resumeMarks.answer !== undefined && window.resumeMarks, null, { polling: 5, timeout: 240_000 });
    const { click, answer, typing, typed } = await marks.jsonValue();
    if (process.env.BENCH_DEBUG) {
      // Each fetch of the start (its state, its firmware): started, request sent, first byte, last byte.
      const steps = await page.evaluate(
        (from) => performance.getEntriesByType("resource").filter((e) => e.startTime >= from).map((e) => `${new URL(e.name).pathname.split("/")[1]} ${[e.startTime, e.requestStart, e.responseStart, e.responseEnd].map((t) => Math.round(t - from)).join("/")}`),
        click,
      );
      const marks = await page.evaluate(
        (from) => performance.getEntriesByType("mark").filter((e) => e.startTime >= from && e.name.startsWith("unmachine:start:")).map((e) => `${e.name.slice(16)} ${Math.round(e.startTime - from)}`),
        click,
      );
      process.stderr.write(`  page steps: ${marks.join(", ")}\n`);
      process.stderr.write(`  page: ${steps.join(", ")}; typing ${Math.round(typing - click)} typed ${Math.round(typed - click)} answer ${Math.round(answer - click)} ms after the click\n`);
    }
    return answer - click;
  };
  const stop = async () => {
    await page.getByRole("button", { name: "Stop", exact: true }).click();
    await page.getByRole("button", { name: "Start", exact: true }).waitFor({ timeout: 60_000 });
  };
  return {
    startToAnswer,
    stop,
    async close() {
      await context.close();
      await stopWebShell(server);
      rmSync(profileDir, { recursive: true, force: true });
    },
  };
}

/** The desktop guest, when it is built: from the command to its xterm's window being there (a first start: no state of its own). */
const desktopBuilt = library.problem("desktop") === undefined;
const WINDOW_COMMAND = `DISPLAY=:0 xwininfo -root -tree | grep -c '"XTerm")'`;

const contenders = {
  "headless resume": () => cli(["run", "tiny", "--headless", "--exec", COMMAND]),
  "headless cold": () => cli(["run", "tiny", "--cold", "--headless", "--exec", COMMAND]),
  "qemu tcg cold": () =>
    timeTo(QEMU, qemuTinyArgs(profile, media), ANSWER, { input: { after: /tiny:[^\n]*# /, text: `${COMMAND}\n` }, kill: true }),
  "page resume": async () => {
    const session = await pageSession({});
    try {
      return await session.startToAnswer({ typeAhead: true }).finally(() => session.stop());
    } finally {
      await session.close();
    }
  },
  // Stop, then Start again in the same page: it resumes from the state it has just saved.
  "page stop-start": async () => {
    const session = await pageSession({});
    try {
      await session.startToAnswer({ typeAhead: true });
      await session.stop();
      return await session.startToAnswer({ typeAhead: true }).finally(() => session.stop());
    } finally {
      await session.close();
    }
  },
  ...(desktopBuilt
    ? {
        "desktop window": async () => {
          const own = mkdtempSync(join(tmpdir(), "unmachine-bench-desktop-"));
          try {
            return await timeTo(process.execPath, ["bin/unmachine.js", "run", "desktop", "--headless", "--exec", WINDOW_COMMAND], /^1$/m, { env: { UNMACHINE_DATA: own } });
          } finally {
            rmSync(own, { recursive: true, force: true });
          }
        },
      }
    : {}),
  "page cold": async () => {
    // A data folder with no state and a cache without tiny's kept state: Start can only boot.
    const session = await pageSession({ UNMACHINE_CACHE: coldCache, UNMACHINE_DATA: mkdtempSync(join(tmpdir(), "unmachine-bench-cold-data-")) });
    try {
      return await session.startToAnswer({ typeAhead: false });
    } finally {
      await session.close();
    }
  },
};

// A first run leaves tiny suspended in this data folder, so every "resume" has a state to open.
await cli(["run", "tiny", "--headless", "--exec", "true; echo ok-$((40+2))"]);
// BENCH_ONLY="page resume,headless resume" measures only those (the ratios need both of a pair).
const only = process.env.BENCH_ONLY?.split(",").map((name) => name.trim());
const chosen = Object.entries(contenders).filter(([name]) => !only || only.includes(name));
const results = Object.fromEntries(chosen.map(([k]) => [k, []]));
for (let round = 1; round <= rounds; round++) {
  for (const [name, run] of chosen) {
    const ms = await run();
    results[name].push(ms);
    process.stderr.write(`round ${round}/${rounds} ${name.padEnd(16)} ${(ms / 1000).toFixed(2)} s\n`);
  }
}
const statePath = join(data, "guests", "tiny", "suspend.state");
const stateBytes = existsSync(statePath) ? statSync(statePath).size : undefined;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const seconds = Object.fromEntries(Object.entries(results).map(([name, ms]) => [name, median(ms) / 1000]));
const ratio = (a, b) => seconds[a] / seconds[b];
console.log(`\nFrom the command (or the click) to tiny answering "${COMMAND}" (median of ${rounds}):`);
for (const [name, s] of Object.entries(seconds)) console.log(`  ${name.padEnd(16)} ${s.toFixed(2).padStart(7)} s`);
/** "Nx" when both were measured in this run (BENCH_ONLY may leave one out), else "not measured". */
const times = (a, b, digits) => (seconds[a] !== undefined && seconds[b] !== undefined ? `${ratio(a, b).toFixed(digits)}x` : "not measured");
console.log(`  headless resume: ${times("qemu tcg cold", "headless resume", 1)} faster than QEMU TCG's cold boot (goal: at least 7x), ${times("headless cold", "headless resume", 1)} faster than a cold boot`);
console.log(`  page resume: ${times("page resume", "headless resume", 2)} the headless resume (goal: at most 1.2x), ${times("page cold", "page resume", 1)} faster than the page's cold boot`);
if (seconds["page stop-start"] !== undefined) console.log(`  page stop-start (Start again in the page that stopped it): ${ratio("page stop-start", "headless resume").toFixed(2)}x the headless resume`);
if (desktopBuilt && seconds["desktop window"] !== undefined) console.log(`  the desktop guest: its xterm's window is there ${seconds["desktop window"].toFixed(2)} s after the command (a first start, resumed from its kept state)`);
else console.log(`  the desktop guest: ${desktopBuilt ? "not measured in this run" : "not built (unmachine build desktop), not measured"}`);
console.log(`  tiny's saved state (${profile.memory} MiB of RAM): ${stateBytes === undefined ? "missing" : `${(stateBytes / 2 ** 20).toFixed(1)} MiB`} on disk (goal: at most 15 MiB)`);

const outDir = join(root, "test-results", "bench");
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "resume.json"), JSON.stringify({ rounds, memoryMiB: profile.memory, seconds, results, stateBytes }, null, 2));
rmSync(coldCache, { recursive: true, force: true });
rmSync(data, { recursive: true, force: true });
