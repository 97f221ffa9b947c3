// Several guests at once in the web shell, as a user runs them: tiny from the library and a
// disk image dropped beside it, each in its own tab with its own screen, console and status.
// Each console is answered by its own guest only; keys typed on one screen never reach the
// other; an error that is not a guest's own fails neither; choosing a running guest in the
// library brings its tab forward; stopping one guest leaves the other running.
import { join } from "node:path";
import { test, expect, root } from "./fixtures.js";
import { dropFile } from "./drop.js";
import { tinyBootDisk } from "./boot-disk.js";

test("two guests run at once in their own tabs, each answering its own console, the keyboard going to the one in front", async ({ page, served }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(served.url);
  await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();

  const tabs = page.getByRole("tab");
  const panels = page.getByTestId("guest-tab-panel");
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(tabs).toHaveCount(1);
  await expect(tabs.first()).toContainText("Tiny Linux");

  // The second guest: a disk image dropped on the page while the first boots, in a tab of its own.
  await dropFile(page, "second-disk.img", tinyBootDisk("unmachine.guest=second"));
  await expect(tabs).toHaveCount(2);
  await expect(tabs.nth(1)).toHaveAttribute("aria-selected", "true");
  await expect(tabs.nth(0)).toContainText("running", { timeout: 150_000 });
  await expect(tabs.nth(1)).toContainText("running", { timeout: 150_000 });
  const [first, second] = [panels.nth(0), panels.nth(1)];
  const [firstConsole, secondConsole] = [first.getByTestId("serial-console"), second.getByTestId("serial-console")];
  // "running" is told by a quiet spell for a dropped image; on a loaded host its prompt may come later.
  await expect(secondConsole).toContainText("tiny:/#", { timeout: 150_000 });
  // An error from elsewhere in the page (another guest's fault, say) fails neither guest.
  await page.evaluate(() => window.dispatchEvent(new ErrorEvent("error", { error: new Error("a fault elsewhere"), message: "a fault elsewhere" })));
  await expect(tabs.nth(0)).toContainText("running");
  await expect(tabs.nth(1)).toContainText("running");
  await page.screenshot({ path: join(root, "test-results", "e2e", "guests-two-tabs.png") });

  // Each console reaches its own guest: the second says how it was booted, a file made in the
  // first is not in the second.
  await secondConsole.click();
  await page.keyboard.type("cat /proc/cmdline; ls /tmp/made-in-first || echo not''-in-second\n");
  await expect(secondConsole).toContainText("unmachine.guest=second");
  await expect(secondConsole).toContainText("not-in-second");

  await tabs.nth(0).click();
  await expect(first).toBeVisible();
  await expect(second).toBeHidden();
  await page.screenshot({ path: join(root, "test-results", "e2e", "guests-first-tab.png") });
  await firstConsole.click();
  await page.keyboard.type("touch /tmp/made-in-first; cat /proc/cmdline; ls /tmp/made-in-first && echo in''-first\n");
  await expect(firstConsole).toContainText("in-first");
  await expect(firstConsole).not.toContainText("unmachine.guest=second");
  await expect(firstConsole).not.toContainText("not-in-second");

  // Keys typed on the first guest's screen reach it only; then the same for the second. (What
  // a guest prints is checked, as "first''screen" prints "firstscreen": the second guest's
  // screen also carries its agent's complaints, which may split the echo of what is typed.)
  const [firstScreen, secondScreen] = [first.getByTestId("guest-screen"), second.getByTestId("guest-screen")];
  await firstScreen.click();
  await page.keyboard.type("echo first''screen\n");
  await expect(firstScreen).toContainText("firstscreen");
  await tabs.nth(1).click();
  await secondScreen.click();
  await page.keyboard.type("echo second''screen\n");
  await expect(secondScreen).toContainText("secondscreen");
  await expect(secondScreen).not.toContainText("firstscreen");
  await expect(firstScreen).not.toContainText("secondscreen");
  await expect(firstScreen).not.toContainText("second''");

  // Choosing the running library guest brings its tab forward instead of starting it again.
  await page.getByRole("button", { name: /Tiny Linux/ }).click();
  await expect(tabs.nth(0)).toHaveAttribute("aria-selected", "true");
  await expect(page.getByRole("button", { name: "Start", exact: true })).toBeDisabled();
  await expect(tabs).toHaveCount(2);

  // A small window: the tabs and the guest in front still fit.
  await page.setViewportSize({ width: 800, height: 600 });
  await expect(tabs.nth(1)).toBeInViewport();
  await expect(page.getByRole("button", { name: "Stop" })).toBeInViewport();
  await page.screenshot({ path: join(root, "test-results", "e2e", "guests-800x600.png") });

  // Stopping the second leaves the first running and answering.
  await tabs.nth(1).click();
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(tabs.nth(1)).toContainText("stopped");
  await expect(tabs.nth(0)).toContainText("running");
  await page.getByRole("button", { name: "Close tab" }).click();
  await expect(tabs).toHaveCount(1);
  await expect(tabs.nth(0)).toHaveAttribute("aria-selected", "true");
  await firstConsole.click();
  await page.keyboard.type("echo still''-running\n");
  await expect(firstConsole).toContainText("still-running");
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(tabs.nth(0)).toContainText("stopped");
  expect(errors).toEqual([]);
});
