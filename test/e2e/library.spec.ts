// The guest library in the page: an image dropped on the window becomes a library entry (its
// bytes uploaded to the host, kept in the data folder), selected and booted; the entry is still
// there after a reload, shows its family and RAM and whether it runs, and boots again from the
// list; Remove takes it out of the library (after asking). Noise adds nothing.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test, expect, cacheDir, builtInGuests } from "./fixtures.js";
import { dropFile } from "./drop.js";

test("a dropped image becomes a library entry that survives a reload and boots", async ({ page, served }) => {
  await page.goto(served.url);
  await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();
  const entries = page.getByTestId("library-entry");
  await expect(entries).toHaveCount(builtInGuests);
  const console = page.getByTestId("serial-console");
  const badge = page.getByTestId("guest-state");

  const noise = Buffer.alloc(200_000);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  await dropFile(page, "holiday-photos.img", noise);
  await expect(page.getByRole("status")).toContainText("holiday-photos.img: not a disk image or kernel this can boot");
  await expect(entries).toHaveCount(builtInGuests);

  await dropFile(page, "My Kernel.bin", readFileSync(join(cacheDir, "guests", "tiny", "vmlinuz")));
  await expect(page.getByRole("status")).toContainText("My Kernel.bin: Linux kernel");
  const entry = page.locator('[data-testid="library-entry"][data-guest="my-kernel"]');
  await expect(entry).toBeVisible();
  await expect(entry).toHaveClass(/selected/);
  await expect(entry).toContainText("Linux · 128 MiB");
  await expect(badge).toHaveText("booting");
  await expect(console).toContainText(/\[\s*\d+\.\d{6}\]/, { timeout: 90_000 });
  // The library says which guests run, the others not.
  await expect(entry.getByTestId("library-running")).toHaveText("running");
  await expect(page.getByTestId("library-running")).toHaveCount(1);
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped");
  await expect(page.getByTestId("library-running")).toHaveCount(0);
  // The browser's file is kept by the host as the guest's image; no upload is left behind.
  expect(existsSync(join(served.dataDir, "guests", "my-kernel", "image"))).toBe(true);
  expect(readdirSync(join(served.dataDir, "guests")).filter((n) => n.startsWith("."))).toEqual([]);

  await page.reload();
  await expect(entries).toHaveCount(builtInGuests + 1);
  await expect(entry).toContainText("Linux · 128 MiB");
  await entry.click();
  await expect(entry).toHaveClass(/selected/);
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(badge).toHaveText("booting");
  await expect(console).toContainText(/\[\s*\d+\.\d{6}\]/, { timeout: 90_000 });
  await expect
    .poll(() => readdirSync(join(served.dataDir, "logs")).filter((f) => f.startsWith("my-kernel-")).map((f) => readFileSync(join(served.dataDir, "logs", f), "utf8")).join(""), { timeout: 30_000 })
    .toContain("Linux version");
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(badge).toHaveText("stopped");

  const asked: string[] = [];
  page.on("dialog", (dialog) => {
    asked.push(dialog.message());
    void dialog.accept();
  });
  await page.getByRole("button", { name: "Remove" }).click();
  await expect(entry).toHaveCount(0);
  expect(asked).toEqual(["Remove My Kernel.bin from your guests? Its image file is kept."]);
  await expect(page.getByRole("status")).toContainText("My Kernel.bin: removed");
  expect(existsSync(join(served.dataDir, "guests", "my-kernel"))).toBe(false);
  await expect(entries).toHaveCount(builtInGuests);
});
