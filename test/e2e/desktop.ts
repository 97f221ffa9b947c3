// What the specs that run the desktop guest in the page share: whether it is built, and typing a
// command into its serial console.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Locator, Page } from "@playwright/test";
import { expect, cacheDir } from "./fixtures.js";

/** Whether `unmachine build desktop` has run (the specs skip, saying so, when it has not). */
export const desktopBuilt = existsSync(join(cacheDir, "guests", "desktop", "root", "init"));

/** Types a command into the guest's serial console and waits for `expected` in what it prints. */
export async function serial(page: Page, console: Locator, command: string, expected: string | RegExp, timeout = 30_000): Promise<void> {
  await console.click();
  await page.keyboard.type(`${command}\n`);
  await expect(console).toContainText(expected, { timeout });
}

/**
 * Waits for the guest's screen to have left the 1024x768 it was built with (the page asks it for
 * its area's size as it starts), or to be `size`, and for X to have settled after the change:
 * no xrandr running, X answering within a second and the xterm framed by its window manager,
 * three seconds in a row. Until then the guest answers clicks and keys late, as a real X server
 * busy with a mode change does.
 */
export async function screenSettled(page: Page, console: Locator, size?: string): Promise<void> {
  const sized = size ? `= ${size}` : "!= 1024x768";
  const mark = `set${Date.now() % 100000}`;
  await serial(
    page,
    console,
    `n=0; while [ $n -lt 3 ]; do g=$(DISPLAY=:0 timeout 1 xwininfo -root 2>/dev/null | sed -n 's/^ *-geometry \\([0-9]*x[0-9]*\\).*/\\1/p'); ` +
      `if [ -n "$g" ] && [ "$g" ${sized} ] && ! pidof xrandr >/dev/null && [ "$(DISPLAY=:0 timeout 1 xwininfo -root -children 2>/dev/null | grep -c '"xterm"')" = 0 ]; then n=$((n+1)); else n=0; fi; sleep 1; done; echo ${mark}''-settled`,
    `${mark}-settled`,
    90_000,
  );
}
