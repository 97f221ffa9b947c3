// What the page says about a guest's life, as a user sees it: a kernel that panics ends
// "failed" with the panic's reason (not a green "running"); a stopped guest's screen and
// console say it is off and take no typing; Restart is offered once stopped and marks where
// the new run begins; a boot says how long the last one took; leaving asks while a guest runs;
// a clipboard the browser refuses shows as not working.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test, expect, root, cacheDir } from "./fixtures.js";
import { dropFile } from "./drop.js";

// Boots cold: what a boot shows is what this file checks, and tiny's kept state would skip it.
test.use({ coldCache: true });

test("a kernel that panics shows failed with the panic's reason, and Restart marks a new run", async ({ page, served }) => {
  await page.goto(served.url);
  await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();
  const badge = page.getByTestId("guest-state");
  const console = page.getByTestId("serial-console");

  // A bare kernel, no initrd and no root: it can only panic.
  await dropFile(page, "bare-kernel", readFileSync(join(cacheDir, "guests", "tiny", "vmlinuz")));
  await expect(page.getByRole("status")).toContainText("bare-kernel: Linux kernel");
  await expect(badge).toHaveText("booting");
  await expect(page.getByTestId("boot-notice")).toContainText("The screen and the serial console are separate terminals");

  await expect(badge).toHaveText("failed", { timeout: 150_000 });
  const reason = page.getByTestId("guest-reason");
  await expect(reason).toContainText("the guest's kernel panicked: ");
  await expect(reason).toContainText(/Unable to mount root fs|No working init found/);
  await expect(badge).toHaveAttribute("title", /kernel panicked/);
  // The console keeps the panic, then a mark that the guest failed.
  await expect(console).toContainText("the guest failed: the guest's kernel panicked");
  const text = (await console.textContent()) ?? "";
  expect(text.indexOf("Kernel panic - not syncing")).toBeGreaterThanOrEqual(0);
  expect(text.indexOf("Kernel panic - not syncing")).toBeLessThan(text.indexOf("the guest failed"));
  await expect(page.getByTestId("screen-off")).toHaveText("The guest failed: it is off");
  await page.screenshot({ path: join(root, "test-results", "e2e", "guest-state-panic.png") });

  // Restart is offered for a failed guest; the old message goes, a mark starts the new run.
  const restart = page.getByRole("button", { name: "Restart" });
  await expect(restart).toBeEnabled();
  await restart.click();
  await expect(badge).toHaveText("booting");
  await expect(console).toContainText("── started again ──");
  await expect(page.getByRole("status")).toHaveCount(0);
  await expect(page.getByTestId("guest-reason")).toHaveCount(0);
  await expect(page.getByTestId("screen-off")).toHaveCount(0);
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped");
  await expect(console).toContainText("── stopped; the guest is off ──");
});

test("a stopped guest is off on screen and console; Restart says how long the last boot took; leaving asks first", async ({ page, served }) => {
  await page.goto(served.url);
  await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();
  const badge = page.getByTestId("guest-state");
  const screen = page.getByTestId("guest-screen");
  const console = page.getByTestId("serial-console");
  const restart = page.getByRole("button", { name: "Restart" });
  await expect(restart).toBeDisabled();

  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(badge).toHaveText("booting");
  const notice = page.getByTestId("boot-notice");
  await expect(notice).toContainText("Booting");
  await expect(page.getByTestId("boot-estimate")).toHaveText("The first boot of a guest can take a minute or so.");
  await expect(notice).toContainText("The screen and the serial console are separate terminals");
  await expect(badge).toHaveText("running", { timeout: 120_000 });
  await expect(notice).toHaveCount(0);
  await expect(console).toContainText("tiny:/#");
  await expect(page.getByTestId("console-off")).toHaveCount(0);

  // Closing the tab with the guest on asks first; dismissed, the guest goes on.
  const asked = new Promise<string>((resolve) => page.once("dialog", (dialog) => void dialog.dismiss().then(() => resolve(dialog.type()))));
  await screen.click();
  await page.close({ runBeforeUnload: true });
  expect(await asked).toBe("beforeunload");
  expect(page.isClosed()).toBe(false);
  await expect(badge).toHaveText("running");

  // Power off: off, with nothing kept (Stop would suspend it: suspend.spec.ts).
  await page.getByRole("button", { name: "Power off" }).click();
  await expect(badge).toHaveText("stopped");
  await expect(console).toContainText("── stopped; the guest is off ──");
  await expect(page.getByTestId("console-off")).toContainText("off: start the guest again to type here");
  await expect(page.getByTestId("screen-off")).toHaveText("The guest is off");
  await expect(screen.locator(".cursor")).toBeHidden();
  // Its clipboard was never shared, so the page never asked the browser for it.
  await expect(page.getByTestId("clipboard-state")).toHaveCount(0);
  // Typing into the console of a stopped guest goes nowhere.
  await console.click();
  await page.keyboard.type("echo typed-while-off\n");
  await expect(console).not.toContainText("typed-while-off");
  await page.screenshot({ path: join(root, "test-results", "e2e", "guest-state-stopped.png") });

  // Restart is offered once stopped; the new boot says how long the last one took.
  await expect(restart).toBeEnabled();
  await restart.click();
  await expect(badge).toHaveText("booting");
  await expect(console).toContainText("── started again ──");
  await expect(page.getByTestId("boot-estimate")).toHaveText(/^Its last boot took about \d+ s\.$/);
  await expect(page.getByTestId("console-off")).toHaveCount(0);
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped");
});

test("a clipboard the browser refuses to share shows as not working, not as a ticked box", async ({ page, context, served }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await page.goto(served.url);
  const sharing = page.getByLabel("Share the clipboard");
  await sharing.check();
  await expect(sharing).toBeChecked();
  await expect(page.getByTestId("clipboard-state")).toHaveCount(0);

  // The user blocks the clipboard in the site's settings (Chromium's own permission, in this context).
  const cdp = await context.newCDPSession(page);
  const { targetInfo } = await cdp.send("Target.getTargetInfo");
  await cdp.send("Browser.setPermission", {
    permission: { name: "clipboard-read" },
    setting: "denied",
    origin: new URL(served.url).origin,
    ...(targetInfo.browserContextId ? { browserContextId: targetInfo.browserContextId } : {}),
  });
  await page.reload();
  await expect(sharing).not.toBeChecked();
  await expect(sharing).toBeDisabled();
  await expect(page.getByTestId("clipboard-state")).toContainText("Not working: this browser refuses to share its clipboard");
});
