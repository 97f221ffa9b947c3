// The page's layout and controls as a user meets them in Chromium: settings in plain words
// next to their fields, the memory slider, the folder browser, a small window, the keyboard
// (release key, Tab order, names) and the drives; with screenshots compared to references/.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { test, expect, root } from "./fixtures.js";
import type { Page } from "@playwright/test";

async function open(page: Page, url: string): Promise<void> {
  await page.goto(url);
  // The guests and their settings are loaded (in the side panel, folded in a small window).
  await expect(page.getByRole("button", { name: "Start", exact: true })).toBeEnabled();
  await expect(page.getByRole("button", { name: "Add folder…", includeHidden: true })).toBeAttached();
}

/** Shares a folder of the home folder through the page's folder browser. */
async function shareFolder(page: Page, home: string, name: string): Promise<void> {
  mkdirSync(join(home, name), { recursive: true });
  await page.getByRole("button", { name: "Add folder…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: `${name}/` }).click();
  await expect(page.getByTestId("browse-path")).toHaveText(join(home, name));
  await page.getByRole("button", { name: "Share this folder" }).click();
  await expect(page.getByTestId("share").filter({ hasText: name })).toBeVisible();
}

test("settings: labelled fields, plain errors next to them, whole positive quotas, where the guest sees each share", async ({ page, served }) => {
  await open(page, served.url);
  await shareFolder(page, served.home, "Photos");
  const card = page.getByTestId("share").filter({ hasText: "Photos" });
  await expect(card.getByTestId("share-mount")).toHaveText("In the guest: /mnt/Photos");

  // Port forwards: labelled fields, an empty or out-of-range port told in words beside the field.
  const hostPort = page.getByLabel("Host port");
  const guestPort = page.getByLabel("Guest port");
  await expect(hostPort).toBeVisible();
  await expect(guestPort).toBeVisible();
  await hostPort.fill("");
  await page.getByRole("button", { name: "Forward", exact: true }).click();
  await expect(page.getByTestId("forward-error")).toHaveText("The host port must be a whole number from 1 to 65535.");
  await expect(hostPort).toHaveAccessibleDescription("The host port must be a whole number from 1 to 65535.");
  await hostPort.fill("8080");
  await guestPort.fill("70000");
  await page.getByRole("button", { name: "Forward", exact: true }).click();
  await expect(page.getByTestId("forward-error")).toHaveText("The guest port must be a whole number from 1 to 65535.");
  await guestPort.fill("80");
  await page.getByRole("button", { name: "Forward", exact: true }).click();
  await expect(page.getByTestId("forward")).toHaveText(/127\.0\.0\.1:8080 → guest :80/);
  await expect(page.getByTestId("forward-error")).toBeHidden();
  await page.getByRole("button", { name: "Forward", exact: true }).click();
  await expect(page.getByTestId("forward-error")).toHaveText("Host port 8080 is already forwarded: remove that forward first.");
  await expect(page.getByTestId("forward")).toHaveCount(1);
  await page.screenshot({ path: join(root, "test-results", "e2e", "page-ux-settings-error.png") });

  // Quotas: negative and fractional ones refused beside the field and not saved.
  const quota = card.getByRole("spinbutton", { name: "Quota in MiB" });
  for (const bad of ["-5", "1.5"]) {
    await quota.fill(bad);
    await quota.press("Enter");
    await quota.blur();
    await expect(card.getByTestId("quota-error")).toHaveText("The quota must be a whole number of MiB from 1 to 1048576. Leave it empty for no limit.");
    await expect(quota).toHaveAccessibleDescription(/whole number of MiB/);
  }
  await quota.fill("300");
  await quota.blur();
  await expect(card.getByTestId("quota-error")).toBeHidden();
  await expect(page.locator("body")).not.toContainText("settings:set");
  await expect(page.locator("body")).not.toContainText("argument");
  await page.reload();
  await expect(page.getByTestId("share").filter({ hasText: "Photos" }).getByRole("spinbutton", { name: "Quota in MiB" })).toHaveValue("300");
  await page.getByRole("button", { name: "Remove Photos" }).click();
  await page.getByRole("button", { name: "Remove forward 8080" }).click();
  await expect(page.getByTestId("forward")).toHaveCount(0);
});

test("the memory slider explains its range, goes as far as a guest may have, and is saved with the guest's settings", async ({ page, served }) => {
  await open(page, served.url);
  const slider = page.getByRole("slider", { name: /Memory/ });
  const total = Number(/of (\d+) MiB/.exec((await page.getByTestId("host-memory").textContent()) ?? "")?.[1]);
  const max = Math.min(2048, Math.floor(total / 16) * 16);
  await expect(slider).toHaveAttribute("aria-valuetext", "128 MiB");
  await expect(slider).toHaveAccessibleDescription(new RegExp(`80 to ${max} MiB`));
  await expect(page.getByTestId("memory-range")).toBeVisible();
  await slider.focus();
  await page.keyboard.press("End");
  await expect(slider).toHaveAttribute("aria-valuetext", `${max} MiB`);

  await page.keyboard.press("Home");
  for (let i = 0; i < 7; i++) await page.keyboard.press("ArrowRight");
  await expect(page.getByText("Memory 192 MiB")).toBeVisible();
  await page.reload();
  await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();
  await expect(page.getByRole("slider", { name: /Memory/ })).toHaveAttribute("aria-valuetext", "192 MiB");
  await expect(page.getByText("Memory 192 MiB")).toBeVisible();
});

test("the folder browser starts at home, shows files, takes a typed path, holds the focus and closes on Escape", async ({ page, served }) => {
  writeFileSync(join(served.home, "notes.txt"), "a file\n");
  mkdirSync(join(served.home, "Music", "Albums"), { recursive: true });
  await open(page, served.url);
  await page.getByRole("button", { name: "Add folder…" }).click();
  const dialog = page.getByRole("dialog", { name: "Choose a folder to share" });
  await expect(dialog.getByTestId("browse-path")).toHaveText(served.home);
  // A file is listed, but is no choice.
  await expect(dialog.getByTestId("browse-file").filter({ hasText: "notes.txt" })).toBeVisible();
  await expect(dialog.getByRole("button", { name: "notes.txt" })).toHaveCount(0);
  await expect(dialog.getByRole("button", { name: "Music/" })).toBeVisible();

  // The focus is in the dialog, and stays there.
  await expect(dialog.getByLabel("Folder")).toBeFocused();
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.closest("dialog") !== null)).toBe(true);
  }

  // A typed path is opened.
  await dialog.getByLabel("Folder").fill(join(served.home, "Music", "Albums"));
  await dialog.getByLabel("Folder").press("Enter");
  await expect(dialog.getByTestId("browse-path")).toHaveText(join(served.home, "Music", "Albums"));
  await dialog.getByLabel("Folder").fill(join(served.home, "no-such-folder"));
  await dialog.getByLabel("Folder").press("Enter");
  await expect(dialog.getByRole("alert")).toHaveText(`cannot list ${join(served.home, "no-such-folder")}: there is no such folder`);
  await dialog.getByLabel("Folder").fill(join(served.home, "notes.txt"));
  await dialog.getByLabel("Folder").press("Enter");
  await expect(dialog.getByRole("alert")).toContainText("notes.txt: it is a file, not a folder");
  await dialog.getByLabel("Folder").fill("Music");
  await dialog.getByLabel("Folder").press("Enter");
  await expect(dialog.getByRole("alert")).toHaveText("Type the folder's full path, starting with /.");
  await expect(dialog.getByTestId("browse-path")).toHaveText(join(served.home, "Music", "Albums"));
  await page.screenshot({ path: join(root, "test-results", "e2e", "page-ux-folder-browser.png") });

  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId("share")).toHaveCount(0);
});

test("every control is reached with Tab and has a name; the drives say which is which", async ({ page, served }) => {
  await open(page, served.url);
  const expected = await page.evaluate(() => {
    const controls = [...document.querySelectorAll<HTMLElement>("button, input, select, textarea, [tabindex='0']")].filter(
      (el) => !(el as HTMLButtonElement).disabled && el.offsetParent !== null && !el.hidden,
    );
    controls.forEach((el, i) => (el.dataset.control = String(i)));
    return controls.length;
  });
  expect(expected).toBeGreaterThan(8);
  const reached = new Set<string>();
  for (let i = 0; i < expected * 2 + 5; i++) {
    await page.keyboard.press("Tab");
    const focused = page.locator(":focus");
    const id = await focused.getAttribute("data-control").catch(() => null);
    if (id === null) continue;
    await expect(focused, `control ${await focused.evaluate((el) => el.outerHTML.slice(0, 120))}`).toHaveAccessibleName(/\S/);
    reached.add(id);
  }
  expect(reached.size).toBe(expected);
  await expect(page.getByRole("button", { name: "Eject floppy" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Eject CD" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Insert floppy…" })).toBeVisible();
  await expect(page.getByTestId("drive-cdrom")).toHaveText("no CD");
  await expect(page.getByTestId("keyboard-hint")).toContainText("Right Ctrl releases the keyboard");
});

test("a running guest: Right Ctrl releases the keyboard, drives show their image, what waits for the next start says so, and 800x600 shows screen and console whole", async ({ page, served }) => {
  await open(page, served.url);
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(page.getByTestId("guest-state")).toHaveText("running", { timeout: 120_000 });
  const screen = page.getByTestId("guest-screen");
  await expect(screen).toContainText("tiny:/#");

  // The memory slider still moves: tiny's RAM changes live through its balloon.
  await expect(page.getByRole("slider", { name: /Memory/ })).toBeEnabled();

  // Right Ctrl hands the keyboard back: the screen loses the focus, and the guest saw nothing.
  await screen.click();
  await expect(screen).toBeFocused();
  await page.keyboard.press("ControlRight");
  await expect(screen).not.toBeFocused();
  await page.keyboard.type("echo typed-after-release\n");
  await expect(screen).not.toContainText("typed-after-release");

  // The CD drive names what is in it, until ejected.
  const cdDir = mkdtempSync(join(tmpdir(), "unmachine-cd-"));
  writeFileSync(join(cdDir, "readme.txt"), "a CD\n");
  const iso = join(cdDir, "..", `${basename(cdDir)}-install.iso`);
  execFileSync("genisoimage", ["-quiet", "-J", "-r", "-o", iso, cdDir]);
  await page.getByLabel("Insert CD").setInputFiles(iso);
  await expect(page.getByTestId("drive-cdrom")).toHaveText(basename(iso));
  await expect(page.getByTestId("drive-fda")).toHaveText("no floppy");
  await page.getByRole("button", { name: "Eject CD" }).click();
  await expect(page.getByTestId("drive-cdrom")).toHaveText("no CD");

  // A setting changed while the guest runs is marked as waiting for its next start.
  const clipboard = page.getByRole("region", { name: "Clipboard" });
  await expect(clipboard.getByTestId("pending")).toHaveCount(0);
  await clipboard.getByLabel("Share the clipboard").check();
  await expect(clipboard.getByTestId("pending")).toHaveText("at next start");
  await clipboard.getByLabel("Share the clipboard").uncheck();
  await expect(clipboard.getByTestId("pending")).toHaveCount(0);

  // A small window: the panel folds into a toggle; the whole screen and the console fit.
  await page.setViewportSize({ width: 800, height: 600 });
  const inside = async (what: string, box: { x: number; y: number; width: number; height: number } | null): Promise<void> => {
    expect(box, what).not.toBeNull();
    expect(box!.x, what).toBeGreaterThanOrEqual(0);
    expect(box!.y, what).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width, what).toBeLessThanOrEqual(800);
    expect(box!.y + box!.height, what).toBeLessThanOrEqual(600);
  };
  await expect(page.getByRole("complementary", { name: "Guests and settings" })).toBeHidden();
  await expect(screen).toBeVisible();
  await expect.poll(async () => (await screen.boundingBox())?.width ?? 0).toBeGreaterThan(300);
  await inside("guest screen", await screen.boundingBox());
  await inside("serial console", await page.getByTestId("serial-console").boundingBox());
  await inside("Stop button", await page.getByRole("button", { name: "Stop" }).boundingBox());
  await page.screenshot({ path: join(root, "test-results", "e2e", "page-ux-800x600-running.png") });
  const toggle = page.getByRole("button", { name: /Guests & settings/ });
  await toggle.click();
  await expect(page.getByRole("complementary", { name: "Guests and settings" })).toBeVisible();
  await expect(toggle).toHaveAttribute("aria-expanded", "true");
  await page.keyboard.press("Escape");
  await expect(page.getByRole("complementary", { name: "Guests and settings" })).toBeHidden();

  await page.getByRole("button", { name: "Stop" }).click();
  await expect(page.getByTestId("guest-state")).toHaveText("stopped");
});

for (const [width, height] of [
  [1280, 800],
  [800, 600],
] as const) {
  test(`the stopped page at ${width}x${height} looks as its reference`, async ({ page, served }) => {
    await page.setViewportSize({ width, height });
    await open(page, served.url);
    await expect(page.getByTestId("guest-state")).toHaveText("stopped");
    await page.screenshot({ path: join(root, "test-results", "e2e", `page-ux-${width}x${height}.png`) });
    await expect(page).toHaveScreenshot(`page-${width}x${height}.png`, {
      maxDiffPixelRatio: 0.02,
      animations: "disabled",
      mask: [page.getByTestId("guest-screen"), page.getByTestId("serial-console"), page.getByTestId("host-memory")],
    });
    if (width < 900) {
      await page.getByRole("button", { name: /Guests & settings/ }).click();
      const panel = page.getByRole("complementary", { name: "Guests and settings" });
      await expect(panel.getByRole("button", { name: "Add folder…" })).toBeVisible();
      await expect(page.getByRole("button", { name: "Close the side panel" })).toBeFocused();
      await page.screenshot({ path: join(root, "test-results", "e2e", `page-ux-${width}x${height}-panel.png`) });
      await page.getByRole("button", { name: "Close the side panel" }).click();
      await expect(panel).toBeHidden();
    }
  });
}
