// The Electron app, where its binary exists. The binary is downloaded by Electron's install
// script from outside the npm registry; where it is absent (as on machines that reach only the
// npm registry) or there is no display, these tests are skipped and say why. The app runs with
// folders of its own (Electron's user data under XDG_CONFIG_HOME, Unmachine's data), so neither
// the user's settings nor an open Unmachine (its single-instance lock) get in the way.
import { _electron as electron } from "@playwright/test";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, expect, root, cacheDir } from "./fixtures.js";
import { installedElectron, ELECTRON_ABSENT_REASON } from "../../main/electron-binary.js";

const binary = installedElectron();
const display = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
const skipped = !binary ? ELECTRON_ABSENT_REASON : !display ? "no display: run under xvfb-run to test the Electron window" : undefined;

/** What the host wrote to the console logs in the data folder. */
function hostLogs(dataDir: string): string {
  const dir = join(dataDir, "logs");
  try {
    return readdirSync(dir)
      .filter((f) => f.startsWith("tiny-"))
      .map((f) => readFileSync(join(dir, f), "utf8"))
      .join("");
  } catch {
    return "";
  }
}

test.describe("Electron app", () => {
  test.beforeEach(() => {
    // Skipped from inside a running test so the reason is printed, not only kept in the report.
    if (skipped) console.error(`Electron app test skipped: ${skipped}.`);
    test.skip(skipped !== undefined, skipped);
  });

  test("opens the sandboxed page, boots tiny, and its pipes keep carrying frames to the host", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "unmachine-electron-"));
    const dataDir = join(scratch, "data");
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
    Object.assign(env, {
      XDG_CONFIG_HOME: join(scratch, "config"),
      XDG_DATA_HOME: join(scratch, "share"),
      XDG_CACHE_HOME: join(scratch, "cache"),
      UNMACHINE_DATA: dataDir,
      UNMACHINE_CACHE: cacheDir,
    });
    const args = [root];
    if (process.getuid?.() === 0) args.unshift("--no-sandbox");
    const app = await electron.launch({ executablePath: binary!, args, env });
    try {
      const page = await app.firstWindow();
      await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();
      expect(await page.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe("undefined");
      // The sandbox holds: the page cannot reach Node, even through the preload's world.
      expect(await page.evaluate(() => Object.keys((window as unknown as { unmachine: object }).unmachine).sort())).toEqual(["invoke", "onBuild", "onStartGuest", "openPipe"]);
      await page.getByRole("button", { name: "Start", exact: true }).click();
      await expect(page.getByTestId("guest-state")).toHaveText("running", { timeout: 120_000 });
      await expect(page.getByTestId("guest-screen")).toContainText("tiny:/#");

      // Host side: the guest got its address from the host's DHCP (the net pipe), and says so on
      // the serial console, whose later frames reach the host's log (the console pipe).
      const serial = page.getByTestId("serial-console");
      await serial.click();
      await page.keyboard.type("ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; echo pipes-ok\n");
      await expect(serial).toContainText("pipes-ok");
      await expect.poll(() => hostLogs(dataDir), { timeout: 30_000 }).toContain("inet 10.0.2.15/24");
      expect(hostLogs(dataDir)).toContain("pipes-ok");
    } finally {
      await app.close();
    }
  });
});
