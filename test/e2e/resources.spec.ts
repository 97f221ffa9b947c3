// The host's RAM and a guest's resources in the page, as a user sees them: the RAM bar shows
// the running guest's share, a warning appears before the slider would overcommit the host,
// and a RAM change reaches the running guest through its balloon (its MemTotal drops).
// The host here has GBs free, so the host's figures are made those of a smaller host: its
// "host:info" answer on the page's command socket says 1600 MiB free.
import type { Page } from "@playwright/test";
import { test, expect } from "./fixtures.js";

const FREE_MiB = 1600;

/** Makes the page see a host with FREE_MiB free; every other command and pipe goes through as it is. */
async function smallerHost(page: Page): Promise<void> {
  await page.routeWebSocket(/\/rpc/, (ws) => {
    const server = ws.connectToServer();
    const infoIds = new Set<number>();
    ws.onMessage((message) => {
      const request = JSON.parse(String(message)) as { id: number; name: string };
      if (request.name === "host:info") infoIds.add(request.id);
      server.send(message);
    });
    server.onMessage((message) => {
      const reply = JSON.parse(String(message)) as { id?: number; value?: { freeMemoryMiB?: number } };
      if (reply.id !== undefined && infoIds.delete(reply.id) && reply.value) reply.value.freeMemoryMiB = FREE_MiB;
      ws.send(JSON.stringify(reply));
    });
  });
}

/** The guest's MemTotal in kB, from a command typed on its screen (unshifted keys only). */
async function memTotal(page: Page): Promise<number> {
  const screen = page.getByTestId("guest-screen");
  const shown = async (): Promise<number[]> => [...((await screen.textContent()) ?? "").matchAll(/MemTotal:\s+(\d+) kB/g)].map((m) => Number(m[1]));
  const before = (await shown()).length;
  await screen.click();
  await page.keyboard.type("grep -i memtotal /proc/meminfo\n");
  await expect.poll(async () => (await shown()).length).toBeGreaterThan(before);
  return (await shown()).at(-1)!;
}

test("the RAM bar shows the running guest, warns before the slider overcommits the host, and the guest's RAM follows the slider live", async ({ page, served }) => {
  await smallerHost(page);
  await page.goto(served.url);
  await expect(page.getByRole("button", { name: "Start", exact: true })).toBeEnabled();
  const bar = page.getByTestId("ram-bar");
  await expect(bar.getByTestId("host-memory")).toHaveText(new RegExp(`Host: ${FREE_MiB} MiB free of \\d+ MiB`));
  await expect(page.getByTestId("ram-running")).toBeHidden();

  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(page.getByTestId("guest-state")).toHaveText("running", { timeout: 150_000 });
  await expect(page.getByTestId("ram-running")).toHaveText("Running: tiny 128 MiB");
  await expect(bar.getByTestId("ram-share-tiny")).toBeVisible();
  await expect(page.getByTestId("overcommit-warning")).toBeHidden();
  const full = await memTotal(page);

  // Dragging the slider towards the top shows the warning before anything is saved.
  const slider = page.getByRole("slider", { name: /Memory/ });
  await slider.focus();
  await page.keyboard.press("End");
  const warning = page.getByTestId("overcommit-warning");
  await expect(warning).toBeVisible();
  await expect(warning).toContainText(/^tiny with \d+ MiB would leave this computer \d+ MiB free of \d+ MiB/);
  await expect(bar.getByTestId("ram-share-tiny")).toHaveClass(/over/);

  // Back down to 96 MiB: no warning, and the running guest gives 32 MiB back at once.
  await page.getByRole("spinbutton", { name: "Memory in MiB" }).fill("96");
  await page.getByRole("spinbutton", { name: "Memory in MiB" }).press("Enter");
  await expect(warning).toBeHidden();
  await expect(page.getByTestId("memory-note")).toHaveText("The guest has 96 MiB now, changed while it runs.");
  await expect(page.getByTestId("guest-ram")).toHaveText("RAM 96 MiB");
  await expect.poll(() => memTotal(page), { timeout: 10_000 }).toBe(full - 32 * 1024);
});
