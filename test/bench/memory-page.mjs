// The page side of the memory bench: what Chromium (Debian's) gains, all its processes counted
// by proportional set size, for one tiny guest at its shell prompt: in the app's page (web
// shell, host services) and in a bare page that runs v86 on the same files with nothing else.
// Prints one JSON line: { app: bytes, bare: bytes }.
import { CHROMIUM } from "../support/chromium.mjs";
import { chromium } from "@playwright/test";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startWebShell, stopWebShell } from "./web-shell.mjs";

const root = resolve(import.meta.dirname, "../..");
const SETTLE_MS = 3000;
const { GuestLibrary } = await import(`${root}/dist/main/guests/library.js`);
const { profile, firmware, media } = new GuestLibrary().resolve("tiny");

/** The PSS of every process whose command line names `marker` (one browser's processes). */
function pss(marker) {
  let total = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)) continue;
      total += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))[1]) * 1024;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

async function browser() {
  const dir = mkdtempSync(join(tmpdir(), "unmachine-bench-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    ...CHROMIUM,
  });
  return { context, page: context.pages()[0] ?? (await context.newPage()), marker: dir };
}

async function settle() {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
}

async function appPage() {
  const { server, url } = await startWebShell({ UNMACHINE_DATA: mkdtempSync(join(tmpdir(), "unmachine-bench-")) });
  const { context, page, marker } = await browser();
  await page.goto(url);
  await page.getByRole("button", { name: "Start", exact: true }).waitFor();
  await settle();
  const before = pss(marker);
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await page.getByTestId("guest-state").filter({ hasText: "running" }).waitFor({ timeout: 300_000 });
  await settle();
  const grown = pss(marker) - before;
  await context.close();
  await stopWebShell(server);
  return grown;
}

async function barePage() {
  const { context, page, marker } = await browser();
  const files = {
    "/libv86.mjs": join(root, "node_modules/v86/build/libv86.mjs"),
    "/v86.wasm": join(root, "node_modules/v86/build/v86.wasm"),
    "/bios": firmware.bios,
    "/vgabios": firmware.vgaBios,
    "/bzimage": media.bzimage,
    "/initrd": media.initrd,
  };
  await page.route("http://bench.invalid/**", (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === "/") return route.fulfill({ contentType: "text/html", body: "<!doctype html><title>bare</title><div id=screen><div></div><canvas></canvas></div>" });
    const file = files[path];
    const type = path.endsWith(".mjs") ? "text/javascript" : path.endsWith(".wasm") ? "application/wasm" : "application/octet-stream";
    return file ? route.fulfill({ path: file, contentType: type }) : route.fulfill({ status: 404 });
  });
  await page.goto("http://bench.invalid/");
  await settle();
  const before = pss(marker);
  await page.evaluate(
    async ({ memory, cmdline, sizes }) => {
      const { V86 } = await import("/libv86.mjs");
      const image = async (url) => ({ url, size: sizes[url] });
      const emulator = new V86({
        wasm_path: "/v86.wasm",
        memory_size: memory * 1024 * 1024,
        vga_memory_size: 8 * 1024 * 1024,
        screen_container: document.getElementById("screen"),
        bios: await image("/bios"),
        vga_bios: await image("/vgabios"),
        bzimage: await image("/bzimage"),
        initrd: await image("/initrd"),
        cmdline,
        autostart: true,
        disable_speaker: true,
        fastboot: true,
        net_device: { type: "virtio" },
      });
      let tail = "";
      emulator.add_listener("serial0-output-byte", (byte) => {
        tail = (tail + String.fromCharCode(byte)).slice(-64);
        if (/tiny:[^\n]*# /.test(tail)) document.title = "ready";
      });
    },
    { memory: profile.memory, cmdline: profile.cmdline, sizes: Object.fromEntries(Object.entries(files).map(([url, path]) => [url, statSync(path).size])) },
  );
  await page.waitForFunction(() => document.title === "ready", undefined, { timeout: 300_000 });
  await settle();
  const grown = pss(marker) - before;
  await context.close();
  return grown;
}

const app = await appPage();
const bare = await barePage();
process.stdout.write(`${JSON.stringify({ app, bare })}\n`);
