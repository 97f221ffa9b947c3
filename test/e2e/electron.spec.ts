// The Electron app, where its binary exists. The binary is downloaded by Electron's install
// script from outside the npm registry; where it is absent (as on machines that reach only the
// npm registry) or there is no display, these tests are skipped and say why.
import { _electron as electron } from "@playwright/test";
import { test, expect, root } from "./fixtures.js";
import { installedElectron, ELECTRON_ABSENT_REASON } from "../../main/electron-binary.js";

const binary = installedElectron();
const display = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);

test.describe("Electron app", () => {
  test.skip(!binary, ELECTRON_ABSENT_REASON);
  test.skip(!display, "no display: run under xvfb-run to test the Electron window");

  test("opens the sandboxed page and boots tiny from the library", async () => {
    const args = [root];
    if (process.getuid?.() === 0) args.unshift("--no-sandbox");
    const app = await electron.launch({ executablePath: binary!, args });
    const page = await app.firstWindow();
    await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();
    expect(await page.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe("undefined");
    // The sandbox holds: the page cannot reach Node, even through the preload's world.
    expect(await page.evaluate(() => Object.keys((window as unknown as { unmachine: object }).unmachine).sort())).toEqual(["invoke", "onStartGuest", "openPipe"]);
    await page.getByRole("button", { name: "Start", exact: true }).click();
    await expect(page.getByTestId("guest-state")).toHaveText("running", { timeout: 120_000 });
    await expect(page.getByTestId("guest-screen")).toContainText("tiny:/#");
    await app.close();
  });
});
