// Seamless mode with a host window per guest window (what the Electron shell does), driven in
// the web shell with ?seamless=windows: the desktop guest's xterm gets a window of its own of
// the xterm's size, titled as it is, showing it (its pixels are not all the background); text
// typed into it reaches the xterm (read back on the serial console); the guest's screen takes
// the host screen's available size; moving and resizing its
// window moves and resizes the xterm; a window the guest maps gets a window, and loses it when
// the guest closes it; closing the xterm's window closes the xterm (the agent's list drops it).
// Skipped when the desktop guest is not built.
import type { Page } from "@playwright/test";
import { test, expect } from "./fixtures.js";
import { desktopBuilt, screenSettled, serial } from "./desktop.js";
import { clampDisplaySize } from "../../core/agent/display-size.js";

// Popups take the size window.open gives them, as in a browser, not the context's viewport.
test.use({ viewport: null });

/** How many of the popup canvas's pixels differ from its most common colour (its background). */
async function drawnPixels(popup: Page): Promise<number> {
  return popup.evaluate(() => {
    const canvas = document.querySelector("canvas")!;
    const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
    const counts = new Map<number, number>();
    for (let i = 0; i < data.length; i += 4) {
      const colour = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
      counts.set(colour, (counts.get(colour) ?? 0) + 1);
    }
    const background = Math.max(...counts.values());
    return data.length / 4 - background;
  });
}

/**
 * The open popup titled `title`, looked up afresh: when the guest's agent loses its X display for
 * a while (a loaded machine), the list it reports is empty, the popups close, and they open again
 * as new windows when it is back.
 */
async function titled(page: Page, title: string): Promise<Page | undefined> {
  for (const popup of page.context().pages()) if (popup !== page && !popup.isClosed() && (await popup.title().catch(() => "")) === title) return popup;
  return undefined;
}

test("the desktop guest's windows as windows of their own: size, title, content, typing, and closing both ways", async ({ page, served }) => {
  test.skip(!desktopBuilt, "the desktop guest is not built: run `unmachine build desktop`");
  // The page itself as wide as the other specs' (its library beside the tab).
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.goto(served.url);
  await page.goto(new URL("/?seamless=windows", page.url()).href);
  const entry = page.getByRole("button", { name: /^Desktop/ });
  await entry.click();
  await expect(entry).toHaveClass(/selected/);
  await page.getByRole("button", { name: "Start", exact: true }).click();
  const console = page.getByTestId("serial-console");
  await expect(page.getByTestId("guest-state")).toHaveText("running", { timeout: 150_000 });
  await serial(page, console, "echo re''ady", "ready");
  const toggle = page.getByTestId("seamless-toggle");
  await expect(toggle).toBeVisible({ timeout: 120_000 });

  await serial(page, console, "DISPLAY=:0 xwininfo -root -tree | grep '\"XTerm\")' | awk '{print \"geom=\" $(NF-1) $NF}'; echo list''ed", "listed");
  const geometry = /geom=(\d+)x(\d+)[+-]\d+[+-]\d+\+(-?\d+)\+(-?\d+)/.exec((await console.textContent()) ?? "");
  expect(geometry, "xwininfo lists the xterm").not.toBeNull();
  const [width, height, x, y] = geometry!.slice(1).map(Number) as [number, number, number, number];

  // Turning seamless mode on opens the xterm's own window, of its size and with its title.
  const opened = page.context().waitForEvent("page", { timeout: 10_000 });
  await toggle.check();
  const xterm = await opened;
  await xterm.waitForLoadState();
  await expect(page.getByTestId("seamless-windows")).toBeVisible();
  await expect(page.getByTestId("guest-screen")).not.toBeInViewport();
  expect(xterm.url()).toMatch(/\/seamless-window\.html$/);
  await expect(xterm).toHaveTitle(/xterm/, { timeout: 10_000 });
  const body = xterm.locator("canvas");
  await expect(body).toHaveAttribute("width", String(width));
  await expect(body).toHaveAttribute("height", String(height));
  // The window's content is the xterm's size (headless Chromium may round it by a pixel).
  const [innerWidth, innerHeight] = await xterm.evaluate(() => [window.innerWidth, window.innerHeight]);
  expect(Math.abs(innerWidth! - width)).toBeLessThanOrEqual(1);
  expect(Math.abs(innerHeight! - height)).toBeLessThanOrEqual(1);
  // It shows the xterm: its prompt, not only its background.
  await expect.poll(() => drawnPixels(xterm), { timeout: 20_000 }).toBeGreaterThan(50);

  // The guest's screen is now the host screen's available area (as the guest's screen can be):
  // its windows can go, and grow, wherever the host's can.
  const [availWidth, availHeight] = await page.evaluate(() => [screen.availWidth, screen.availHeight]);
  const hostSized = clampDisplaySize(availWidth!, availHeight!);
  await expect(async () => {
    await serial(page, console, "DISPLAY=:0 xwininfo -root | awk '/-geometry/ {print \"root=\" $2}'; echo roo''ted", "rooted", 5_000);
    expect([...((await console.textContent()) ?? "").matchAll(/root=(\d+x\d+)\+/g)].at(-1)?.[1]).toBe(`${hostSized.width}x${hostSized.height}`);
  }).toPass({ timeout: 60_000 }); // after the page area's size, asked before seamless mode, on a loaded host
  await screenSettled(page, console, `${hostSized.width}x${hostSized.height}`);

  // Typed into its window, a command reaches the xterm's shell: read back on the serial console.
  await body.click({ position: { x: width / 2, y: height / 2 } });
  // The click makes the xterm the guest's active window (X may still be busy with the new
  // screen size: it is asked again after).
  await expect(async () => {
    await serial(page, console, "a=$(DISPLAY=:0 xprop -root _NET_ACTIVE_WINDOW | awk '{print $NF}'); echo act''ive=$(DISPLAY=:0 xwininfo -root -tree | grep '\"XTerm\")' | grep -c \"^ *$a \")", /active=\d/, 5_000);
    expect([...((await console.textContent()) ?? "").matchAll(/active=(\d+)/g)].at(-1)?.[1]).toBe("1");
  }).toPass({ timeout: 30_000 });
  await xterm.keyboard.type("echo windows-ok ", { delay: 40 });
  await xterm.keyboard.press("Shift+Period");
  await xterm.keyboard.type(" /tmp/typed-window\n", { delay: 40 });
  await expect(async () => {
    await serial(page, console, "cat /tmp/typed-window; echo read''-back", "read-back", 5_000);
    await expect(console).toContainText("windows-ok", { timeout: 1_000 });
  }).toPass({ timeout: 40_000 });

  // Moving its window moves the xterm by as much: the guest's xwininfo shows it there.
  await xterm.evaluate(() => window.moveBy(40, 30));
  await expect(async () => {
    await serial(page, console, "DISPLAY=:0 xwininfo -root -tree | grep '\"XTerm\")' | awk '{print \"moved=\" $NF}'; echo mo''ved-listed", "moved-listed", 5_000);
    expect((await console.textContent()) ?? "").toContain(`moved=+${x + 40}+${y + 30}`);
  }).toPass({ timeout: 30_000 });

  // Resizing its window resizes the xterm (by whole character cells), and the window's canvas with it.
  await expect.poll(async () => (await titled(page, "xterm")) !== undefined, { timeout: 30_000 }).toBe(true);
  await (await titled(page, "xterm"))!.evaluate(() => window.resizeBy(80, 60));
  let sized = "";
  await expect(async () => {
    await serial(page, console, "DISPLAY=:0 xwininfo -root -tree | grep '\"XTerm\")' | awk '{print \"sized=\" $(NF-1)}'; echo si''zed-listed", "sized-listed", 5_000);
    sized = [...((await console.textContent()) ?? "").matchAll(/sized=(\d+)x\d+\+/g)].at(-1)?.[1] ?? "";
    expect(Number(sized)).toBeGreaterThan(width + 40);
  }).toPass({ timeout: 30_000 });
  await expect.poll(async () => (await titled(page, "xterm"))?.locator("canvas").getAttribute("width"), { timeout: 30_000 }).toBe(sized);

  // A window the guest maps gets a window (titled as the guest titles it); the guest closing it closes that window.
  await serial(page, console, "DISPLAY=:0 xterm -title probe -geometry 40x8+300+200 & echo start''ed", "started");
  await expect.poll(async () => (await titled(page, "probe")) !== undefined, { timeout: 60_000 }).toBe(true);
  const probe = (await titled(page, "probe"))!;
  const probeClosed = probe.waitForEvent("close", { timeout: 30_000 });
  await serial(page, console, "kill $!; echo kil''led", "killed");
  await probeClosed;
  expect(probe.isClosed()).toBe(true);

  // Closing the xterm's window closes the xterm: the agent's list drops it.
  const listed = page.getByTestId("seamless-window-show");
  await expect(listed).toHaveCount(1);
  await expect.poll(async () => (await titled(page, "xterm")) !== undefined, { timeout: 30_000 }).toBe(true);
  await (await titled(page, "xterm"))!.close();
  await expect(listed).toHaveCount(0, { timeout: 20_000 });
  await serial(page, console, "echo xterms=$(DISPLAY=:0 xwininfo -root -tree | grep -c '\"XTerm\")')", "xterms=0");
});
