// The web shell in Debian's Chromium, as a user sees it: start `tiny` from the library, see
// its shell prompt on the screen and in the serial console, type into both, stop it, drop
// images on the window (a kernel boots; random bytes get a clear message), share folders (the
// home folder only once confirmed) and, once turned on, the clipboard.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, expect, root, cacheDir } from "./fixtures.js";
import { dropFile } from "./drop.js";

const cache = cacheDir;

test("starts tiny and shows its shell on the screen and in the serial console", async ({ page, served }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(served.url);
  await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();
  await expect(page.getByText(/MiB free of \d+ MiB/)).toBeVisible();

  // The page has no Node access.
  expect(await page.evaluate(() => [typeof (globalThis as { require?: unknown }).require, typeof (globalThis as { process?: unknown }).process])).toEqual(["undefined", "undefined"]);

  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(page.getByTestId("guest-state")).toHaveText("booting");
  await expect(page.getByTestId("guest-state")).toHaveText("running", { timeout: 120_000 });
  await expect(page.getByTestId("guest-ram")).toHaveText("RAM 128 MiB");

  const screen = page.getByTestId("guest-screen");
  const console = page.getByTestId("serial-console");
  await expect(screen).toContainText("tiny:/#");
  await expect(console).toContainText("tiny:/#");

  // Typed into the serial console, answered by the guest.
  await console.click();
  await page.keyboard.type("uname -m\n");
  await expect(console).toContainText("i686");

  // Typed on the focused screen, answered on the screen.
  await screen.click();
  // (Playwright types "$" without Shift, as the bare key; so only unshifted keys here.)
  await page.keyboard.type("expr 50 - 8\n");
  await expect(screen).toContainText(/expr 50 - 8\s+42\s+tiny:\/#/);

  await page.screenshot({ path: join(root, "test-results", "e2e", "web-shell-tiny.png") });

  // A CD inserted from the page while the guest runs, read by the guest.
  const cdDir = mkdtempSync(join(tmpdir(), "unmachine-cd-"));
  writeFileSync(join(cdDir, "readme.txt"), "inserted from the page\n");
  const iso = join(cdDir, "..", `${cdDir.split("/").pop()}.iso`);
  execFileSync("genisoimage", ["-quiet", "-J", "-r", "-o", iso, cdDir]);
  await page.getByLabel("Insert CD").setInputFiles(iso);
  await expect(page.getByRole("status")).toContainText("is in the CD drive");
  await console.click();
  await page.keyboard.type("mkdir -p /cd; mount -t iso9660 /dev/sr0 /cd; cat /cd/readme.txt\n");
  await expect(console).toContainText("inserted from the page");

  // The console reached the host through its pipe: the host's log has the guest's prompt.
  const logs = readdirSync(join(served.dataDir, "logs")).filter((f) => f.startsWith("tiny-"));
  expect(logs.length).toBeGreaterThan(0);
  expect(readFileSync(join(served.dataDir, "logs", logs[0]!), "utf8")).toContain("i686");

  await page.getByRole("button", { name: "Stop" }).click();
  await expect(page.getByTestId("guest-state")).toHaveText("stopped");
  expect(errors).toEqual([]);
});

test("a dropped kernel boots; dropped noise gets a clear message and nothing starts", async ({ page, served }) => {
  await page.goto(served.url);
  await expect(page.getByRole("button", { name: /Tiny Linux/ })).toBeVisible();

  const noise = Buffer.alloc(300_000);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  await dropFile(page, "holiday-photos.img", noise);
  await expect(page.getByRole("status")).toContainText("holiday-photos.img: not a disk image or kernel this can boot");
  await expect(page.getByTestId("guest-state")).toHaveText("stopped");

  await dropFile(page, "my-kernel", readFileSync(join(cache, "guests", "tiny", "vmlinuz")));
  await expect(page.getByRole("status")).toContainText("my-kernel: Linux kernel");
  // The kernel's log scrolls by on the console (timestamps), and reaches the host's log whole.
  await expect(page.getByTestId("serial-console")).toContainText(/\[\s*\d+\.\d{6}\]/, { timeout: 90_000 });
  await expect
    .poll(() => readdirSync(join(served.dataDir, "logs")).filter((f) => f.startsWith("my-kernel-")).map((f) => readFileSync(join(served.dataDir, "logs", f), "utf8")).join(""), { timeout: 30_000 })
    .toContain("Linux version");
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(page.getByTestId("guest-state")).toHaveText("stopped");
});

test("a folder shared from the page is listed by the guest, and its files come back; the clipboard is shared once turned on", async ({ page, context, served }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const projects = join(served.home, "Projects");
  mkdirSync(projects);
  writeFileSync(join(projects, "hello-from-host.txt"), "shared by the host\n");
  await page.goto(served.url);
  await page.getByRole("button", { name: "Add folder…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Projects/" }).click();
  await expect(page.getByTestId("browse-path")).toHaveText(projects);
  await page.getByRole("button", { name: "Share this folder" }).click();
  await expect(page.getByTestId("share")).toContainText("Projects");
  // The clipboard is not shared until the user says so; what was copied before the start stays.
  await page.evaluate(() => navigator.clipboard.writeText("copied before the start"));
  const sharing = page.getByLabel("Share the clipboard");
  await expect(sharing).not.toBeChecked();
  await sharing.check();
  await expect(sharing).toBeChecked();

  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(page.getByTestId("guest-state")).toHaveText("running", { timeout: 120_000 });
  const console = page.getByTestId("serial-console");
  await console.click();
  await page.keyboard.type("ls /mnt/Projects; cat /mnt/Projects/hello-from-host.txt; uname -r > /mnt/Projects/from-guest.txt\n");
  await expect(console).toContainText("hello-from-host.txt");
  await expect(console).toContainText("shared by the host");
  await expect.poll(() => (existsSync(join(projects, "from-guest.txt")) ? readFileSync(join(projects, "from-guest.txt"), "utf8") : "")).toMatch(/-686\n$/);

  // The clipboard, both ways, through the guest's agent; the text from before the start never arrives.
  await page.keyboard.type("cat /run/unmachine/clipboard; echo; echo clip''board-read\n");
  await expect(console).toContainText("clipboard-read");
  await expect(console).not.toContainText("before the start");
  await page.keyboard.type("printf 'copied in the guest' > /run/unmachine/clipboard\n");
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText()), { timeout: 20_000 }).toBe("copied in the guest");
  await page.evaluate(() => navigator.clipboard.writeText("copied on the host"));
  await page.waitForTimeout(1500);
  await page.keyboard.type("cat /run/unmachine/clipboard; echo\n");
  await expect(console).toContainText("copied on the hos");
  await page.getByRole("button", { name: "Stop" }).click();
});

test("sharing the home folder asks first, and is saved only once confirmed", async ({ page, served }) => {
  await page.goto(served.url);
  const share = async (): Promise<void> => {
    await page.getByRole("button", { name: "Add folder…" }).click();
    await expect(page.getByTestId("browse-path")).toHaveText(served.home);
    await page.getByRole("button", { name: "Share this folder" }).click();
  };
  const before = await page.getByTestId("share").count();
  await share();
  const dialog = page.getByRole("dialog", { name: "Share a sensitive folder?" });
  await expect(dialog.getByTestId("sensitive-reason")).toContainText(`${served.home} is your home folder`);
  await expect(dialog).toContainText("The guest could read every file in it that you can");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId("share")).toHaveCount(before);

  await share();
  await dialog.getByLabel("Read-only").uncheck();
  await expect(dialog).toContainText("and change or delete them");
  await page.screenshot({ path: join(root, "test-results", "e2e", "web-shell-sensitive-share.png") });
  await dialog.getByRole("button", { name: "Share anyway" }).click();
  await expect(page.getByTestId("share")).toHaveCount(before + 1);
  const added = page.getByTestId("share").last();
  await expect(added).toContainText("sensitive, shared as you confirmed");
  // Saved by the host with the confirmation, and still there after a reload.
  await page.reload();
  await expect(page.getByTestId("share").last()).toContainText("sensitive, shared as you confirmed");
  await page.getByTestId("share").last().getByRole("button", { name: /^Remove/ }).click();
  await expect(page.getByTestId("share")).toHaveCount(before);
});
