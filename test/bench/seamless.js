#!/usr/bin/env node
// Benchmark: seamless windows. (1) Window-appear latency: a watcher in the desktop guest (xev on
// the root) prints each window the X server maps on the serial console; the page (web shell in
// Debian's Chromium, seamless mode on) notes when that line, the host's "windows" event with the
// window and its panel arrive (each counted from its first appearance, by window id, whether or
// not its title is known yet), all on the page's clock; headless, the same from the serial line to
// the agent's report at the host (the reference). (2) Frames per second of a seamless window while
// the guest redraws it, against v86's own screen updates in the same run. Medians of a few rounds,
// written to test-results/bench/seamless.json.
import { CHROMIUM } from "../support/chromium.mjs";
import { chromium } from "@playwright/test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startWebShell, stopWebShell } from "./web-shell.mjs";

const root = resolve(import.meta.dirname, "../..");
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const { GuestLibrary } = await import(`${root}/dist/main/guests/library.js`);
const library = new GuestLibrary();
if (library.problem("desktop") !== undefined) {
  console.log("seamless: the desktop guest is not built (unmachine build desktop): not measured");
  process.exit(0);
}
const data = mkdtempSync(join(tmpdir(), "unmachine-bench-seamless-"));

/** Prints "MAPPED <window>" on the serial console for each window mapped on the root (a frame, an override-redirect). */
const WATCHER = `DISPLAY=:0 xev -root -event substructure | awk '/^MapNotify/{m=1;next} m{print "MAP" "PED " $4; fflush(); m=0}'`;
/** The window each round maps: a small xterm, what a user starts most. */
const probe = (round) => `DISPLAY=:0 xterm -title probe${round} -geometry 40x8+${500 + (round % 100) * 20}+${300 + (round % 100) * 15}`;
const unprobe = (round) => `pkill -f 'xterm -title [p]robe${round} '`;
const median = (xs) => {
  const known = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return known.length ? known[Math.floor(known.length / 2)] : Number.NaN;
};

// ---------------------------------------------------------------------------------------------
// Headless: the serial line to the agent's report at the host.

async function headless() {
  const { libraryPlan } = await import(`${root}/dist/main/guests/launch.js`);
  const { HeadlessGuest } = await import(`${root}/dist/main/headless/runner.js`);
  const { hostServiceSet } = await import(`${root}/dist/main/host/services.js`);
  const plan = libraryPlan(library, "desktop", undefined, { net: false });
  const services = hostServiceSet(plan, { onError: () => {} });
  const guest = new HeadlessGuest(plan, { services: services.attach });
  const out = { mapToReport: [], execToReport: [] };
  try {
    await guest.waitForShell(300_000);
    const agent = services.agent();
    await agent.whenReady(120_000);
    // X is up once the agent lists a window (the desktop's xterm).
    await new Promise((r) => (agent.windows?.length ? r() : agent.onWindows((list) => list.length > 0 && r())));
    const mapped = new Map();
    let text = "";
    guest.onOutput((chunk) => {
      const at = performance.now();
      text += chunk;
      for (const m of text.matchAll(/MAPPED (0x[0-9a-f]+)/g)) if (!mapped.has(m[1])) mapped.set(m[1], at);
      text = text.slice(-200);
    });
    await agent.exec(`${WATCHER} >/dev/ttyS0 2>&1 &`);
    await new Promise((r) => setTimeout(r, 3000));
    for (let round = 1; round <= rounds; round++) {
      const title = `probe${round}`;
      const before = new Set(mapped.keys());
      // Reported: the first list with the window that later has the probe's title.
      const firstSeen = new Map();
      const reported = new Promise((r) => {
        const sub = agent.onWindows((list) => {
          const now = performance.now();
          for (const w of list) if (!firstSeen.has(w.id)) firstSeen.set(w.id, now);
          const probe = list.find((w) => w.title === title);
          if (probe) {
            sub?.dispose?.();
            r(firstSeen.get(probe.id));
          }
        });
      });
      const sent = performance.now();
      await agent.exec(`${probe(round)} >/dev/null 2>&1 &`);
      const at = await reported;
      await new Promise((r) => setTimeout(r, 500));
      const fresh = [...mapped].filter(([id]) => !before.has(id)).map(([, t]) => t);
      const mapAt = fresh.length ? Math.min(...fresh) : Number.NaN;
      out.mapToReport.push(at - mapAt);
      out.execToReport.push(at - sent);
      process.stderr.write(`headless round ${round}: exec->report ${(at - sent).toFixed(0)} ms, map->report ${(at - mapAt).toFixed(0)} ms\n`);
      await agent.exec(unprobe(round));
    }
  } finally {
    await guest.stop();
    guest.dispose();
    services.dispose();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The page: a web shell, Debian's Chromium, the desktop resumed, seamless mode on.

/** Runs in the page before its scripts: notes the host's window events and v86's screen draws. */
function pageProbe() {
  const marks = { ws: [], wsFirst: {}, mapped: {}, panels: {}, panelFirst: {}, screenFrames: 0, draws: 0, frame: 0, damage: undefined };
  window.benchMarks = marks;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        if (typeof event.data !== "string" || !event.data.includes('"windows"')) return;
        const at = performance.now();
        // A window counts from the first event that lists it (by id): the agent may list it before its title.
        const walk = (value) => {
          if (Array.isArray(value)) value.forEach(walk);
          else if (value && typeof value === "object") {
            if (typeof value.id === "number" && typeof value.title === "string") {
              if (!(value.id in marks.wsFirst)) marks.wsFirst[value.id] = at;
              if (/^probe\d+$/.test(value.title) && !marks.ws.some((w) => w.title === value.title)) marks.ws.push({ title: value.title, at: marks.wsFirst[value.id], titledAt: at });
            } else Object.values(value).forEach(walk);
          }
        };
        try {
          walk(JSON.parse(event.data));
        } catch {
          // not JSON: not a window event
        }
      });
    }
  };
  // v86 draws the guest's screen with putImageData: one update per animation frame that drew.
  const put = CanvasRenderingContext2D.prototype.putImageData;
  let drewThisFrame = false;
  CanvasRenderingContext2D.prototype.putImageData = function (...args) {
    if (!this.canvas.closest?.('[data-testid="seamless-body"]') && this.canvas.dataset.testid !== "seamless-body") {
      marks.draws++;
      drewThisFrame = true;
      const [image, dx, dy, x = 0, y = 0, width = image.width, height = image.height] = args;
      marks.damage?.push({ frame: marks.frame, x: dx + x, y: dy + y, width, height });
    }
    return put.apply(this, args);
  };
  requestAnimationFrame(function frame() {
    if (drewThisFrame) marks.screenFrames++;
    marks.frame++;
    drewThisFrame = false;
    requestAnimationFrame(frame);
  });
  addEventListener("DOMContentLoaded", () => {
    new MutationObserver(() => {
      const at = performance.now();
      // A panel counts from its first appearance (by window id), whatever its title then.
      for (const panel of document.querySelectorAll('[data-testid="seamless-panel"]')) {
        const id = panel.getAttribute("data-window");
        if (!(id in marks.panelFirst)) marks.panelFirst[id] = at;
        const label = panel.getAttribute("aria-label");
        if (label && !(label in marks.panels)) marks.panels[label] = marks.panelFirst[id];
      }
      const text = document.querySelector('[data-testid="serial-console"]')?.textContent ?? "";
      for (const m of text.matchAll(/MAPPED (0x[0-9a-f]+)/g)) if (!(m[1] in marks.mapped)) marks.mapped[m[1]] = at;
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

async function pageRun() {
  const { server, url } = await startWebShell({ UNMACHINE_DATA: data });
  const browser = await chromium.launch({
    ...CHROMIUM,
  });
  const out = { seamlessOn: { mapToEvent: [], mapToPanel: [] }, seamlessOff: { mapToEvent: [] }, fps: {} };
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.addInitScript(pageProbe);
    await page.goto(url);
    await page.getByRole("button", { name: /^Desktop/ }).click();
    await page.getByRole("button", { name: "Start", exact: true }).click();
    await page.getByTestId("guest-state").filter({ hasText: "running" }).waitFor({ timeout: 240_000 });
    const toggle = page.getByTestId("seamless-toggle");
    await toggle.waitFor({ timeout: 240_000 });
    const console_ = page.getByTestId("serial-console");
    const type = async (command) => {
      await console_.click();
      await page.keyboard.type(`${command}\n`);
    };
    await type(`${WATCHER} &`);
    await page.waitForTimeout(3000);
    const marks = () => page.evaluate(() => window.benchMarks);

    /** One window: the serial line of its map, the host's event with it, its panel (when seamless). */
    const appear = async (round, seamless, timeout = 60_000) => {
      const title = `probe${round}`;
      const before = new Set(Object.keys((await marks()).mapped));
      await type(`${probe(round)} &`);
      await page.waitForFunction((t) => window.benchMarks.ws.some((w) => w.title === t), title, { timeout, polling: 100 });
      if (seamless) await page.waitForFunction((t) => t in window.benchMarks.panels, title, { timeout: 60_000, polling: 100 });
      await page.waitForTimeout(500);
      const m = await marks();
      const fresh = Object.entries(m.mapped).filter(([id]) => !before.has(id)).map(([, t]) => t);
      const mapAt = fresh.length ? Math.min(...fresh) : Number.NaN;
      const { at: eventAt, titledAt } = m.ws.find((w) => w.title === title);
      const row = { mapToEvent: eventAt - mapAt, mapToTitle: titledAt - mapAt, mapToPanel: seamless ? m.panels[title] - mapAt : undefined };
      await type(unprobe(round));
      await page.waitForTimeout(1500);
      process.stderr.write(`page round ${round} seamless ${seamless ? "on " : "off"}: map->event ${row.mapToEvent.toFixed(0)} ms (titled ${row.mapToTitle.toFixed(0)} ms)${seamless ? `, map->panel ${row.mapToPanel.toFixed(0)} ms` : ""}\n`);
      return row;
    };

    // A first window, not counted: just after the resume the guest loads the programs over 9P and
    // its agent may take long to report the first change.
    await appear(100, false, 180_000).catch((error) => process.stderr.write(`the first window was not reported: ${error.message}\n`));
    // Rounds interleaved: seamless off (the page shows the guest's screen), then on (panels).
    for (let round = 1; round <= rounds; round++) {
      if (await toggle.isChecked()) await toggle.uncheck();
      const off = await appear(100 + round, false);
      out.seamlessOff.mapToEvent.push(off.mapToEvent);
      await toggle.check();
      await page.getByTestId("seamless-panel").first().waitFor();
      const on = await appear(200 + round, true);
      out.seamlessOn.mapToEvent.push(on.mapToEvent);
      out.seamlessOn.mapToPanel.push(on.mapToPanel);
    }
    out.fps = await fps(page, type);
  } catch (error) {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) {
      process.stderr.write(`serial: ${(await page.getByTestId("serial-console").textContent()).slice(-1500)}\n`);
      process.stderr.write(`marks: ${JSON.stringify(await page.evaluate(() => window.benchMarks)).slice(0, 1500)}\n`);
    }
    throw error;
  } finally {
    await browser.close();
    await stopWebShell(server);
  }
  return out;
}

/** A seamless xterm the guest redraws all the time: its panel's distinct frames per second, and v86's screen updates. */
async function fps(page, type) {
  await type(`DISPLAY=:0 xterm -title fps -geometry 40x12+40+420 -e sh -c 'while :; do date +%N; done' &`);
  const panel = page.locator('[data-testid="seamless-panel"][aria-label="fps"] [data-testid="seamless-body"]');
  await panel.waitFor({ timeout: 60_000 });
  await page.waitForTimeout(3000);
  const result = await page.evaluate(async () => {
    const body = document.querySelector('[data-testid="seamless-panel"][aria-label="fps"] [data-testid="seamless-body"]');
    const context = body.getContext("2d", { willReadFrequently: true });
    const start = { frames: window.benchMarks.screenFrames, draws: window.benchMarks.draws, at: performance.now() };
    window.benchMarks.damage = [];
    let last = -1;
    let distinct = 0;
    let frames = 0;
    await new Promise((done) => {
      requestAnimationFrame(function frame() {
        const { data } = context.getImageData(0, 0, body.width, body.height);
        let hash = 2166136261;
        for (let i = 0; i < data.length; i += 12) hash = Math.imul(hash ^ data[i] ^ (data[i + 1] << 8), 16777619);
        if (hash !== last) distinct++;
        last = hash;
        frames++;
        if (performance.now() - start.at < 5000) requestAnimationFrame(frame);
        else done();
      });
    });
    const seconds = (performance.now() - start.at) / 1000;
    // The window's own updates: the frames in which v86 redrew part of the screen under it.
    const panel = body.closest('[data-testid="seamless-panel"]');
    const area = { x: parseFloat(panel.style.left), y: parseFloat(panel.style.top), width: body.width, height: body.height };
    const over = (r) => r.x < area.x + area.width && r.x + r.width > area.x && r.y < area.y + area.height && r.y + r.height > area.y;
    const windowFrames = new Set(window.benchMarks.damage.filter(over).map((r) => r.frame)).size;
    window.benchMarks.damage = undefined;
    return { panelFps: distinct / seconds, pageFps: frames / seconds, screenFps: (window.benchMarks.screenFrames - start.frames) / seconds, windowFps: windowFrames / seconds };
  });
  await type("pkill -f 'xterm -title fps'");
  process.stderr.write(`fps: panel ${result.panelFps.toFixed(1)}, v86 updates under the window ${result.windowFps.toFixed(1)}, v86 screen ${result.screenFps.toFixed(1)}, page frames ${result.pageFps.toFixed(1)}\n`);
  return result;
}

try {
  const page = await pageRun();
  const head = await headless();
  const summary = {
    rounds,
    ms: {
      "headless map->report": median(head.mapToReport),
      "headless exec->report": median(head.execToReport),
      "page map->event (seamless off)": median(page.seamlessOff.mapToEvent),
      "page map->event (seamless on)": median(page.seamlessOn.mapToEvent),
      "page map->panel (seamless on)": median(page.seamlessOn.mapToPanel),
    },
    fps: page.fps,
  };
  console.log(`\nSeamless windows (median of ${rounds}):`);
  for (const [name, ms] of Object.entries(summary.ms)) console.log(`  ${name.padEnd(32)} ${ms.toFixed(0).padStart(6)} ms`);
  // Both are counted from the serial line, itself a little late: a difference, not a ratio, says
  // what the page adds to the agent's own report (a ratio of two numbers near 0 says nothing).
  const added = summary.ms["page map->panel (seamless on)"] - summary.ms["headless map->report"];
  const worst = Math.max(...page.seamlessOn.mapToPanel.filter(Number.isFinite));
  console.log(`  page map->panel: ${added.toFixed(0)} ms after the headless report, the slowest round ${worst.toFixed(0)} ms after the map (goal: within 200 ms)`);
  console.log(
    `  a redrawn seamless window: ${page.fps.panelFps.toFixed(1)} distinct panel frames/s against v86's ${page.fps.windowFps.toFixed(1)} updates/s under it (${(page.fps.panelFps / page.fps.windowFps).toFixed(2)}x; v86's whole screen ${page.fps.screenFps.toFixed(1)}/s, the page ${page.fps.pageFps.toFixed(1)} frames/s)`,
  );
  const outDir = join(root, "test-results", "bench");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "seamless.json"), JSON.stringify({ ...summary, raw: { headless: head, page } }, null, 2));
} finally {
  rmSync(data, { recursive: true, force: true });
}
