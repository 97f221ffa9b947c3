// The library's actions in the page, without booting: "Add guest…" takes a file as a drop does
// (the new entry appears and is selected); a user guest's family, title and boot prompt are
// edited in the page, a bad value refused next to its field with nothing changed; Export…
// downloads the guest's disk with its changes as one flat image, its image left as it was.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test, expect, builtInGuests } from "./fixtures.js";
import { buildFatImage, materialize } from "../../core/fat/image.js";
import { fileFromBytes } from "../../core/fat/tree.js";
import { OverlayDisk } from "../../main/disk/overlay.js";

const sha = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

test("a guest is added with Add guest…, edited in the page and exported with its changes", async ({ page, served }) => {
  const image = Buffer.from(materialize(buildFatImage([fileFromBytes("IO.SYS", new Uint8Array(4), 0), fileFromBytes("COMMAND.COM", new Uint8Array(4), 0)])));
  await page.goto(served.url);
  const entries = page.getByTestId("library-entry");
  await expect(entries).toHaveCount(builtInGuests);

  const chooser = page.waitForEvent("filechooser");
  await page.getByRole("button", { name: "Add guest…" }).click();
  await (await chooser).setFiles({ name: "Games Disk.img", mimeType: "application/octet-stream", buffer: image });
  const entry = page.locator('[data-testid="library-entry"][data-guest="games-disk"]');
  await expect(entry).toBeVisible();
  await expect(entry).toHaveClass(/selected/);
  await expect(entry).toContainText("DOS · 64 MiB");
  await expect(page.getByRole("status")).toContainText("Games Disk.img: hard disk image");
  await expect(page.getByRole("status")).toContainText("added as games-disk");
  // Added, not booted: the user starts it when ready.
  await expect(page.getByTestId("guest-state")).toHaveText("stopped");

  const folder = join(served.dataDir, "guests", "games-disk");
  const profileBefore = readFileSync(join(folder, "guest.json"), "utf8");
  const edit = page.getByRole("group", { name: "Edit guest" });
  await edit.getByLabel("Boot prompt").fill("C:\\\\(");
  await edit.getByLabel("Boot prompt").press("Enter");
  await expect(edit.getByRole("alert")).toHaveText('prompt: "C:\\\\(" is not a valid regular expression');
  await edit.getByLabel("Title").fill("   ");
  await edit.getByLabel("Title").press("Enter");
  await expect(edit.getByRole("alert")).toHaveCount(2);
  await expect(edit.getByRole("alert").nth(0)).toHaveText(/^title: expected 1 to 80 characters/);
  expect(readFileSync(join(folder, "guest.json"), "utf8")).toBe(profileBefore);
  await expect(entry).toContainText("Games Disk.img");

  await edit.getByLabel("Title").fill("Games");
  await edit.getByLabel("Title").press("Enter");
  await expect(entry.locator(".name")).toHaveText("Games");
  await expect(edit.getByRole("alert")).toHaveCount(1);
  await edit.getByLabel("Family").selectOption({ label: "Windows 3.x" });
  await expect(entry).toContainText("Windows 3.x · 64 MiB");
  await edit.getByLabel("Boot prompt").fill("C:\\\\>");
  await edit.getByLabel("Boot prompt").press("Enter");
  await expect(edit.getByRole("alert")).toHaveCount(0);
  await page.reload();
  await expect(entry.locator(".name")).toHaveText("Games");
  await entry.click();
  await expect(page.getByRole("group", { name: "Edit guest" }).getByLabel("Boot prompt")).toHaveValue("C:\\\\>");
  await expect(page.getByRole("group", { name: "Edit guest" }).getByLabel("Family")).toHaveValue("win3x");

  // A change on the guest's disk, written as the host's disk service writes one.
  const base = join(folder, "image");
  const baseHash = sha(readFileSync(base));
  const disk = new OverlayDisk(base, join(folder, "hda.overlay"));
  disk.write(8192, Buffer.alloc(1024, 0xa5));
  disk.close();
  await page.reload();
  await expect(entry).toContainText("1 KiB changed");
  await entry.click();
  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Export…" }).click();
  const saved = await download;
  expect(saved.suggestedFilename()).toBe("games-disk.img");
  const exported = readFileSync(await saved.path());
  expect(exported.length).toBe(image.length);
  const expected = Buffer.from(image);
  expected.fill(0xa5, 8192, 9216);
  expect(sha(exported)).toBe(sha(expected));
  expect(sha(readFileSync(base))).toBe(baseHash);
  await expect(page.getByRole("status")).toContainText("games-disk.img: downloading");
});
