// The page's clipboard and the desktop guest's X clipboard, for real: with "Share the clipboard"
// on, a PNG copied in the guest (xclip) is an image on the page's clipboard, of its size and
// colour; a PNG copied on the host reaches the guest's X clients as image/png of its size; text
// selected in the guest (PRIMARY, how X's old apps copy) is the host's text. Skipped when the
// desktop guest is not built.
import { test, expect } from "./fixtures.js";
import { desktopBuilt, screenSettled, serial } from "./desktop.js";
import { solidPng } from "../support/png.js";

test("images both ways and a guest's selection reach the other side's clipboard", async ({ page, context, served }) => {
  test.skip(!desktopBuilt, "the desktop guest is not built: run `unmachine build desktop`");
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await page.goto(served.url);
  await page.getByRole("button", { name: /^Desktop/ }).click();
  await page.getByLabel("Share the clipboard").check();
  await page.getByRole("button", { name: "Start", exact: true }).click();
  const console = page.getByTestId("serial-console");
  await expect(page.getByTestId("guest-state")).toHaveText("running", { timeout: 150_000 });
  await screenSettled(page, console);

  // A PNG copied in the guest: an image of its size and colour on the host's clipboard.
  const fromGuest = Buffer.from(solidPng(40, 30, [200, 30, 90])).toString("base64");
  await serial(page, console, `echo ${fromGuest} | base64 -d > /tmp/copied.png && DISPLAY=:0 xclip -i -selection clipboard -t image/png /tmp/copied.png; echo co''pied`, "copied");
  const hostImage = async (): Promise<string> =>
    page.evaluate(async () => {
      const item = (await navigator.clipboard.read()).find((entry) => entry.types.includes("image/png"));
      if (!item) return "none";
      const bitmap = await createImageBitmap(await item.getType("image/png"));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext("2d")!;
      context.drawImage(bitmap, 0, 0);
      const [r, g, b] = context.getImageData(bitmap.width / 2, bitmap.height / 2, 1, 1).data;
      return `${bitmap.width}x${bitmap.height} rgb(${r},${g},${b})`;
    });
  await expect.poll(hostImage, { timeout: 30_000 }).toBe("40x30 rgb(200,30,90)");

  // A PNG copied on the host: the guest's X clients get image/png of its size (its IHDR).
  await page.evaluate(async (base64) => {
    const png = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    await navigator.clipboard.write([new ClipboardItem({ "image/png": new Blob([png], { type: "image/png" }) })]);
  }, Buffer.from(solidPng(64, 48, [20, 160, 60])).toString("base64"));
  await expect(async () => {
    const mark = `ihdr${Date.now() % 100000}`;
    await serial(page, console, `echo ${mark}=$(DISPLAY=:0 xclip -o -selection clipboard -t image/png 2>/dev/null | head -c 24 | tail -c 8 | od -An -tu1 | tr -s ' ' ','); echo ${mark}''-read`, `${mark}-read`, 10_000);
    expect((await console.textContent()) ?? "").toContain(`${mark}=,0,0,0,64,0,0,0,48`);
  }).toPass({ timeout: 40_000 });

  // Text selected in the guest (PRIMARY, as xterm and the text editor copy): the host's text.
  await serial(page, console, "printf 'selected in the guest' | DISPLAY=:0 xclip -i -selection primary; echo sel''ected", "selected");
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText()), { timeout: 30_000 }).toBe("selected in the guest");
  await page.getByRole("button", { name: "Stop" }).click();
});
