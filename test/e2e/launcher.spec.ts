// The app launcher in the page (web shell) with the desktop guest: once it has run, its apps
// (xterm, xcalc, xedit) are listed beside its settings, and still after it is stopped (the host
// remembers them); the guest's screen follows the page (its size becomes the area's, by the
// agent's xrandr). Choosing xcalc launches it (read back in the guest: X has a Calculator
// window), and choosing it while the guest is off resumes the guest first.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Locator, Page } from "@playwright/test";
import { test, expect, root } from "./fixtures.js";
import { serial as run } from "./desktop.js";

const BOOT_MS = 240_000;

// The built guests as they are (a private copy links the desktop's root folder, which its
// 9P server, resumed from the built state, does not follow): nothing may rebuild them mid-test.
test.use({ ownCache: false });
// Room for a guest screen within the sizes the guest takes (at least 640x480).
test.use({ viewport: { width: 1400, height: 1150 } });

/** How many Calculator windows X has, as the guest's own xwininfo says, checked against `expected`. */
async function calculators(page: Page, console: Locator, expected: number): Promise<void> {
  const mark = `calc${Date.now() % 100000}`;
  await run(page, console, `echo ${mark}=$(DISPLAY=:0 xwininfo -root -tree | grep -c '"Calculator"')`, new RegExp(`${mark}=${expected}(?!\\d)`));
}

/** Starts the desktop guest from the page and waits for its launcher to list its apps and for X. */
async function startDesktop(page: Page, url: string): Promise<{ launcher: Locator; badge: Locator; console: Locator }> {
  await page.goto(url);
  await page.getByRole("button", { name: /^Desktop/ }).click();
  const launcher = page.getByTestId("app-launcher");
  const badge = page.getByTestId("guest-state");
  const console = page.getByTestId("serial-console");
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(badge).toHaveText("running", { timeout: BOOT_MS });
  for (const id of ["debian-xterm", "xcalc", "xedit"]) await expect(launcher.locator(`[data-app="${id}"]`)).toBeVisible({ timeout: BOOT_MS });
  // Resumed from the state its build kept, the guest may still be starting X.
  await run(page, console, "until DISPLAY=:0 xwininfo -root >/dev/null 2>&1; do sleep 1; done; echo x''up", "xup", 120_000);
  return { launcher, badge, console };
}

test("the launcher lists the desktop guest's apps and remembers them while it is off; its screen follows the page", async ({ page, served }) => {
  test.setTimeout(600_000);
  await page.goto(served.url);
  await page.getByRole("button", { name: /^Desktop/ }).click();
  // Never run here: no apps to list yet, so no launcher.
  await expect(page.getByTestId("app-launcher")).toHaveCount(0);
  const { launcher, badge } = await startDesktop(page, served.url);
  const remembered = join(served.dataDir, "guests", "desktop", "apps.json");
  expect(existsSync(remembered)).toBe(true);
  expect(JSON.parse(readFileSync(remembered, "utf8")).apps.map((a: { id: string }) => a.id)).toEqual(expect.arrayContaining(["debian-xterm", "xcalc", "xedit"]));

  // The screen follows the page: the guest's picture takes the area's size (its border aside).
  const canvas = page.getByTestId("guest-screen").locator("canvas");
  const area = page.locator(".screen-area").first();
  const asked = Date.now();
  await expect
    .poll(async () => {
      const box = await area.evaluate((el) => ({ w: el.clientWidth, h: el.clientHeight }));
      const size = await canvas.evaluate((el) => ({ w: (el as HTMLCanvasElement).width, h: (el as HTMLCanvasElement).height }));
      return { follows: Math.abs(size.w - (box.w - 2)) < 8 && Math.abs(size.h - (box.h - 2)) < 2 && size.w !== 1024, area: box, screen: size };
    }, { timeout: 90_000 })
    .toMatchObject({ follows: true });
  const followMs = Date.now() - asked;
  await page.screenshot({ path: join(root, "test-results", "e2e", "launcher-running.png") });

  // Stopped: the remembered apps are still listed.
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped", { timeout: 60_000 });
  await expect(launcher.locator('[data-app="xcalc"]')).toBeVisible();
  process.stdout.write(`launcher: the screen followed the page ${followMs} ms after X was up\n`);
});

// Fails in this page for now: the agent answers "XCalc started (pid N) but showed no window
// within 30 s" (the same launch in the headless vm tests answers in about 4 s).
test("choosing xcalc launches it in the running guest, and resumes the stopped guest first", async ({ page, served }) => {
  test.setTimeout(900_000);
  const { launcher, badge, console } = await startDesktop(page, served.url);
  await calculators(page, console, 0);
  const started = Date.now();
  await launcher.locator('[data-app="xcalc"]').click();
  await expect(launcher.getByRole("status")).toHaveCount(0, { timeout: 60_000 });
  const launchMs = Date.now() - started;
  await expect(page.getByTestId("launcher-error")).toHaveCount(0);
  await calculators(page, console, 1);

  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped", { timeout: 60_000 });
  const resumed = Date.now();
  await launcher.locator('[data-app="xcalc"]').click();
  await expect(badge).toHaveText("running", { timeout: BOOT_MS });
  await expect(launcher.getByRole("status")).toHaveCount(0, { timeout: 120_000 });
  const resumeLaunchMs = Date.now() - resumed;
  await expect(page.getByTestId("launcher-error")).toHaveCount(0);
  await calculators(page, console, 2);
  process.stdout.write(`launcher: xcalc launched in ${launchMs} ms; from the stopped guest (resume, then launch) in ${resumeLaunchMs} ms\n`);
});
