// Instant-on in the page: Stop suspends a library guest (its state saved with the host) and Start
// resumes it, its shell answering within a second of the click with what it had in /tmp (keys
// typed at once are kept for it); Power off discards the state, so the next start boots; a
// damaged saved state is set aside with one line and the guest boots; one the host finds whole
// but the emulator refuses is set aside with one line and the guest starts afresh; a snapshot
// saved and restored brings back a file's earlier content; a page just opened has fetched the
// state its Start resumes before the click.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Locator, Page } from "@playwright/test";
import { test, expect, root } from "./fixtures.js";
import { compressState } from "../../core/v86/state-codec.js";
import { decodeStateFile, encodeStateFile, stateHeader } from "../../main/state/state-file.js";

const BOOT_MS = 150_000;

// A saved state resumes only into the same machine: its guest's files must not be rebuilt mid-test.
test.use({ ownCache: true });

/** Types a command into the guest's serial console and waits for `expected` in what it prints. */
async function run(page: Page, console: Locator, command: string, expected: string | RegExp, timeout = 20_000): Promise<void> {
  await console.click();
  await page.keyboard.type(`${command}\n`);
  await expect(console).toContainText(expected, { timeout });
}

async function bootTiny(page: Page, url: string): Promise<{ badge: Locator; console: Locator }> {
  await page.goto(url);
  await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();
  const badge = page.getByTestId("guest-state");
  const console = page.getByTestId("serial-console");
  await page.getByRole("button", { name: "Start", exact: true }).click();
  // A cold boot, or the state `unmachine build` kept (the prompt was printed before it was saved).
  await expect(badge).toHaveText("running", { timeout: BOOT_MS });
  await run(page, console, "echo re''ady", "ready");
  return { badge, console };
}

/** How the page's last start had its saved state: decoded ahead, or to decode then (its "unmachine:start:state" mark). */
function startedFrom(page: Page): Promise<unknown> {
  return page.evaluate(() => (performance.getEntriesByName("unmachine:start:state").at(-1) as PerformanceMark | undefined)?.detail);
}

test("Stop then Start resumes tiny: its shell answers with its /tmp kept, without booting again; a snapshot brings back a file's earlier content; Power off boots it afresh", async ({ page, served }) => {
  test.setTimeout(600_000);
  const { badge, console } = await bootTiny(page, served.url);
  await run(page, console, "echo kept-across > /tmp/kept; echo wr''itten", "written");

  const stop = Date.now();
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped");
  const stopMs = Date.now() - stop;
  await expect(console).toContainText(/suspended in \d+\.\d s; Start resumes it/);
  expect(readFileSync(join(served.dataDir, "guests", "tiny", "suspend.state")).subarray(0, 8).toString()).toBe("UNMSTATE");

  // The page resumes from the state it has just saved (the host's is the same, by its checksum), not from a download of it.
  const downloads: string[] = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname.startsWith("/state/") && request.method() === "GET") downloads.push(request.url());
  });
  const start = Date.now();
  await page.getByRole("button", { name: "Start", exact: true }).click();
  // Typed as soon as the console takes keys, while it resumes: the page keeps them and gives them to the guest as it runs.
  await expect(console).toHaveAttribute("aria-disabled", "false");
  await console.click();
  await page.keyboard.type("cat /tmp/kept; echo ans''wered\n");
  // Running as soon as it is restored (no prompt is printed again).
  await expect(badge).toHaveText("running", { timeout: 10_000 });
  const runningMs = Date.now() - start;
  await expect(page.getByTestId("boot-notice")).toHaveCount(0);
  await expect(console).toContainText("answered", { timeout: 10_000 });
  const startMs = Date.now() - start;
  await expect(console).toContainText("kept-across");
  await expect(badge).toHaveText("running");
  expect(downloads).toEqual([]);
  // The state its Stop saved, kept decoded too: the Start read it as it lay.
  expect(await startedFrom(page)).toEqual({ decoded: true });
  test.info().annotations.push({ type: "timing", description: `stop ${stopMs} ms, start to running ${runningMs} ms, to a shell answer ${startMs} ms` });
  process.stdout.write(`suspend: stop ${stopMs} ms, start to running ${runningMs} ms, to a shell answer ${startMs} ms\n`);
  // How fast is the benchmark's to say (npm run bench: resume.js); here, that it resumed at all.

  // A snapshot, then a change, then the snapshot restored: the file as it was.
  await run(page, console, "echo before > /tmp/f; echo sa''ved", "saved");
  await page.getByLabel("Snapshot name").fill("before-change");
  await page.getByRole("button", { name: "Save snapshot" }).click();
  await expect(page.getByTestId("snapshot")).toHaveText(/before-change/);
  await expect(badge).toHaveText("running");
  await run(page, console, "echo after > /tmp/f; cat /tmp/f; echo chan''ged", "changed");
  await page.screenshot({ path: join(root, "test-results", "e2e", "suspend-snapshots.png") });
  await page.getByRole("button", { name: "Restore before-change" }).click();
  // The running guest stops first (the badge may still say "running" for a moment): its line, then the snapshot running.
  await expect(console).toContainText("stopped to restore the snapshot before-change");
  await expect(page.getByRole("button", { name: "Restore before-change" })).toBeEnabled({ timeout: 20_000 });
  await expect(badge).toHaveText("running", { timeout: 20_000 });
  await run(page, console, "cat /tmp/f; echo rest''ored", "restored");
  expect(downloads).toHaveLength(1); // the snapshot's state is not what the page saved: it is fetched
  const text = (await console.textContent()) ?? "";
  const last = text.slice(text.lastIndexOf("cat /tmp/f; echo rest"));
  expect(last).toContain("before");
  expect(last).not.toContain("after");

  // Power off: its state is discarded, the next start is afresh (a boot, or the built state) and /tmp is empty.
  await page.getByRole("button", { name: "Power off" }).click();
  await expect(badge).toHaveText("stopped");
  expect(existsSync(join(served.dataDir, "guests", "tiny", "suspend.state"))).toBe(false);
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(badge).toHaveText("running", { timeout: BOOT_MS });
  await expect(page.getByTestId("state-notice")).toHaveCount(0);
  await run(page, console, "ls /tmp/kept || echo no''-file", "no-file");
});

test("a page just opened fetches and decodes the state its Start resumes before the click: the Start downloads and decodes nothing", async ({ page, served }) => {
  test.setTimeout(600_000);
  const { badge, console } = await bootTiny(page, served.url);
  await run(page, console, "echo fetched-ahead > /tmp/ahead; echo wr''itten", "written");
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped");
  const saved = decodeStateFile(readFileSync(join(served.dataDir, "guests", "tiny", "suspend.state"))).payload;

  // A new page: it holds nothing of the state its last Stop saved.
  const downloads: { url: string; bytes: number }[] = [];
  page.on("response", (response) => {
    if (new URL(response.url()).pathname.startsWith("/state/") && response.request().method() === "GET") void response.body().then((b) => downloads.push({ url: response.url(), bytes: b.length }), () => {});
  });
  await page.reload();
  await expect(page.getByRole("button", { name: "Start", exact: true })).toBeEnabled();
  await expect.poll(() => downloads.length, { timeout: 20_000 }).toBe(1);
  expect(downloads[0]!.bytes).toBe(saved.length);
  await page.waitForLoadState("networkidle");

  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(console).toHaveAttribute("aria-disabled", "false");
  await console.click();
  await page.keyboard.type("cat /tmp/ahead; echo ans''wered\n");
  await expect(console).toContainText("answered", { timeout: 20_000 });
  await expect(console).toContainText("fetched-ahead");
  await expect(badge).toHaveText("running");
  expect(downloads).toHaveLength(1);
  // It had decoded the state ahead too: the Start read it as it lay, with nothing to decode.
  expect(await startedFrom(page)).toEqual({ decoded: true });
});

test("a damaged saved state is set aside with one line, and the guest boots", async ({ page, served }) => {
  test.setTimeout(600_000);
  const { badge, console } = await bootTiny(page, served.url);
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped");
  const path = join(served.dataDir, "guests", "tiny", "suspend.state");
  const bytes = readFileSync(path);
  bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
  writeFileSync(path, bytes);

  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(page.getByTestId("state-notice")).toHaveText("tiny: its saved state cannot be used (damaged: its contents do not match their checksum); it starts cold");
  await expect(page.getByTestId("boot-notice")).toContainText("Booting");
  await expect(badge).toHaveText("running", { timeout: BOOT_MS });
  await expect(console).toContainText("tiny:/#");
  expect(readFileSync(`${path}.unusable`).length).toBe(bytes.length);
});

test("a saved state the emulator refuses is set aside with one line, and the guest starts afresh", async ({ page, served }) => {
  test.setTimeout(600_000);
  const { badge, console } = await bootTiny(page, served.url);
  await run(page, console, "echo only-before > /tmp/refused; echo wr''itten", "written");
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped");
  // Whole to the host (its header and checksum match), not a state to the emulator.
  const path = join(served.dataDir, "guests", "tiny", "suspend.state");
  const { header } = decodeStateFile(readFileSync(path));
  const payload = await compressState(new Uint8Array(64 * 1024).fill(0x55));
  writeFileSync(path, encodeStateFile({ ...stateHeader(header, payload), host: header.host }, payload), { mode: 0o600 });

  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(page.getByTestId("state-notice")).toHaveText(/^tiny: its saved state cannot be used \(the emulator could not restore it: its header starts 0x55555555, where a v86 state starts 0x86768676\); it starts afresh$/i, { timeout: 30_000 });
  await expect(badge).toHaveText("running", { timeout: BOOT_MS });
  await run(page, console, "ls /tmp/refused || echo no''-file", "no-file");
  expect(existsSync(path)).toBe(false);
  expect(decodeStateFile(readFileSync(`${path}.unusable`)).payload).toEqual(payload);
});
