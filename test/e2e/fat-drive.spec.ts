// A DOS-family guest in the page is offered its shared folder as a read-only drive: the settings
// panel says so (a drive letter, not /mnt/<name>), and the host builds the drive and serves it to
// the page as a disk. tiny's kernel and initrd, added with family dos, stand in for DOS.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, expect, root, cacheDir } from "./fixtures.js";

test("a DOS-family guest's shared folder is a read-only drive the guest reads in the page", async ({ page, served }) => {
  const tiny = join(cacheDir, "guests", "tiny");
  execFileSync(process.execPath, [join(root, "bin/unmachine.js"), "add", join(tiny, "vmlinuz"), "--initrd", join(tiny, "initrd.img"), "--prompt", "tiny:[^\\n]*# ", "--family", "dos", "--name", "like-dos"], {
    env: { ...process.env, UNMACHINE_DATA: served.dataDir, UNMACHINE_CACHE: cacheDir },
    stdio: "ignore",
  });
  mkdirSync(join(served.home, "Games"));
  writeFileSync(join(served.home, "Games", "HELLO.TXT"), "served from the host as a drive\n");

  await page.goto(served.url);
  const entry = page.locator('[data-testid="library-entry"][data-guest="like-dos"]');
  await entry.click();
  await expect(entry).toHaveClass(/selected/);
  await expect(page.getByTestId("shares-note")).toHaveText("No folders shared. A folder you add appears in the guest as a read-only drive (C:) at its next start.");
  await page.getByRole("button", { name: "Add folder…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Games/" }).click();
  await page.getByRole("button", { name: "Share this folder" }).click();
  const card = page.getByTestId("share").filter({ hasText: "Games" });
  await expect(card.getByTestId("share-mount")).toHaveText("In the guest: a read-only drive C: at its next start");

  await page.getByRole("button", { name: "Start", exact: true }).click();
  const console = page.getByTestId("serial-console");
  await expect(console).toContainText("tiny:/#", { timeout: 150_000 });
  await console.click();
  await page.keyboard.type("mkdir -p /d && mount -t vfat -o ro /dev/sda1 /d && cat /d/HELLO.TXT\n");
  await expect(console).toContainText("served from the host as a drive", { timeout: 30_000 });
  await page.getByRole("button", { name: "Stop" }).click();
});
