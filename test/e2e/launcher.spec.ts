// The app launcher in the page (web shell) with the desktop guest: once it has run, its apps
// (xterm, xcalc, xedit) are listed beside its settings, and still after it is stopped (the host
// remembers them); choosing xcalc launches it (read back in the guest: X has a Calculator
// window), and choosing it while the guest is off resumes the guest first. The guest's screen
// follows the page: its size becomes that of the area it is shown in (the agent's xrandr).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Locator, Page } from "@playwright/test";
import { test, expect, root } from "./fixtures.js";

const BOOT_MS = 240_000;

// A saved state resumes only into the same machine: its guest's files must not be rebuilt mid-test.
test.use({ ownCache: true });

/** Types a command into the guest's serial console and waits for `expected` in what it prints. */
async function run(page: Page, console: Locator, command: string, expected: string | RegExp, timeout = 30_000): Promise<void> {
  await console.click();
  await page.keyboard.type(`${command}\n`);
  await expect(console).toContainText(expected, { timeout });
}

/** How many Calculator windows X has, as the guest's own xwininfo says, checked against `expected`. */
async function calculators(page: Page, console: Locator, expected: number): Promise<void> {
  const mark = `calc${Date.now() % 100000}`;
  await run(page, console, `echo ${mark}=$(DISPLAY=:0 xwininfo -root -tree | grep -c '"Calculator"')`, new RegExp(`${mark}=${expected}\\b`));
}

test("the launcher lists the desktop guest's apps, remembers them while it is off, and launches xcalc (resuming the guest first)", async ({ page, served }) => {
  test.setTimeout(900_000);
  await page.goto(served.url);
  await page.getByRole("button", { name: /^Desktop/ }).click();
  const launcher = page.getByTestId("app-launcher");
  // Never run here: no apps to list yet, so no launcher.
  await expect(launcher).toHaveCount(0);
  const badge = page.getByTestId("guest-state");
  const console = page.getByTestId("serial-console");
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(badge).toHaveText("running", { timeout: BOOT_MS });

  const apps = launcher.getByTestId("launcher-app");
  for (const id of ["xcalc", "xedit"]) await expect(launcher.locator(`[data-app="${id}"]`)).toBeVisible({ timeout: BOOT_MS });
  await expect(apps.filter({ hasText: /xterm/i })).toHaveCount(1);
  const remembered = join(served.dataDir, "guests", "desktop", "apps.json");
  expect(existsSync(remembered)).toBe(true);
  expect(JSON.parse(readFileSync(remembered, "utf8")).apps.map((a: { id: string }) => a.id)).toEqual(expect.arrayContaining(["xcalc", "xedit"]));

  await run(page, console, "echo re''ady", "ready");
  await calculators(page, console, 0);
  const started = Date.now();
  await launcher.locator('[data-app="xcalc"]').click();
  await expect(launcher.getByRole("status")).toHaveCount(0, { timeout: 60_000 });
  const launchMs = Date.now() - started;
  await expect(page.getByTestId("launcher-error")).toHaveCount(0);
  await calculators(page, console, 1);

  // The screen follows the page: the guest's picture takes the area's size (its border aside).
  const canvas = page.getByTestId("guest-screen").locator("canvas");
  const area = page.locator(".screen-area").first();
  await expect
    .poll(async () => {
      const box = await area.evaluate((el) => ({ w: el.clientWidth, h: el.clientHeight }));
      const size = await canvas.evaluate((el) => ({ w: (el as HTMLCanvasElement).width, h: (el as HTMLCanvasElement).height }));
      return Math.abs(size.w - (box.w - 2)) < 8 && Math.abs(size.h - (box.h - 2)) < 2 && size.w !== 1024;
    }, { timeout: 60_000 })
    .toBe(true);
  await page.screenshot({ path: join(root, "test-results", "e2e", "launcher-running.png") });

  // Stopped: the remembered apps are still listed; choosing xcalc resumes the guest and launches it again.
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped", { timeout: 60_000 });
  await expect(launcher.locator('[data-app="xcalc"]')).toBeVisible();
  const resumed = Date.now();
  await launcher.locator('[data-app="xcalc"]').click();
  await expect(badge).toHaveText("running", { timeout: BOOT_MS });
  await expect(launcher.getByRole("status")).toHaveCount(0, { timeout: 120_000 });
  const resumeLaunchMs = Date.now() - resumed;
  await expect(page.getByTestId("launcher-error")).toHaveCount(0);
  await calculators(page, console, 2);
  process.stdout.write(`launcher: xcalc launched in ${launchMs} ms; from the stopped guest (resume, then launch) in ${resumeLaunchMs} ms\n`);
});
