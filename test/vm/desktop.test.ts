// The desktop guest booting for real in v86 (a Node worker), as the CLI plans and serves it:
// its root folder over 9P, X11 on the VGA with fluxbox and an xterm, asked through the serial shell.
// Skipped, with the reason in its title, when the desktop guest is not built
// (unmachine build desktop).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GuestLibrary } from "../../main/guests/library.js";
import { libraryPlan } from "../../main/guests/launch.js";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { hostServiceSet, type ServiceSet } from "../../main/host/services.js";

const library = new GuestLibrary();
const problem = library.problem("desktop");
const title = problem === undefined ? "the desktop guest" : `the desktop guest (skipped: ${problem})`;

/** One window of `xwininfo -root -tree`: its id, name, class and geometry. */
interface XWindow {
  id: string;
  name: string;
  className: string;
  width: number;
  height: number;
  x: number;
  y: number;
}

function windowsOf(tree: string): XWindow[] {
  const found: XWindow[] = [];
  const line = /^\s*(0x[0-9a-f]+) "([^"]*)": \("[^"]*" "([^"]*)"\)\s+(\d+)x(\d+)\+(-?\d+)\+(-?\d+)\s+\+(-?\d+)\+(-?\d+)/gm;
  for (const m of tree.matchAll(line)) {
    found.push({ id: m[1]!, name: m[2]!, className: m[3]!, width: Number(m[4]), height: Number(m[5]), x: Number(m[8]), y: Number(m[9]) });
  }
  return found;
}

describe.skipIf(problem !== undefined)(title, () => {
  let guest: HeadlessGuest;
  let services: ServiceSet;
  let root: string;
  const refused: string[] = [];
  let xterm: XWindow | undefined;
  let xtermLine = "";
  // Generous: X and its clients take the guest's whole CPU for a while after the xterm maps.
  const sh = (command: string, timeoutMs = 150_000): Promise<{ output: string; status: number }> => guest.exec(command, timeoutMs);

  beforeAll(async () => {
    root = library.resolve("desktop").root!;
    const plan = libraryPlan(library, "desktop", undefined, { net: false });
    services = hostServiceSet(plan, { onError: (message) => refused.push(message) });
    guest = new HeadlessGuest(plan, { services: services.attach });
    const started = Date.now();
    await guest.waitForShell(300_000);
    const shell = Date.now();
    // X, fluxbox and the xterm start beside the shell: wait in the guest for the xterm's window.
    const { output } = await sh(
      "i=0; until DISPLAY=:0 xwininfo -root -tree 2>/dev/null | grep -q '\"XTerm\")' || [ $i -ge 500 ]; do sleep 1; i=$((i+1)); done; DISPLAY=:0 xwininfo -root -tree | grep '\"XTerm\")'",
      600_000,
    );
    xterm = windowsOf(output).find((w) => w.className === "XTerm");
    xtermLine = output;
    console.log(`desktop: shell after ${((shell - started) / 1000).toFixed(1)} s, the xterm's window after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 700_000);
  afterAll(async () => {
    await guest?.stop();
    guest?.dispose();
    services?.dispose();
  });

  it("runs X11 on the VGA at 1024x768 in 24-bit colour", { timeout: 200_000 }, async () => {
    const { output, status } = await sh("DISPLAY=:0 xwininfo -root");
    expect(status).toBe(0);
    expect(output).toMatch(/Width: 1024\n/);
    expect(output).toMatch(/Height: 768\n/);
    expect(output).toMatch(/Depth: 24\n/);
    expect(refused).toEqual([]);
  });

  it("shows an xterm window with its geometry", () => {
    expect(xterm, `no XTerm window in xwininfo -root -tree: ${JSON.stringify(xtermLine)}`).toBeDefined();
    // 80x24 characters of a 6x13 font and its border: about 484x316, on the screen.
    expect(xterm!.width).toBeGreaterThanOrEqual(400);
    expect(xterm!.height).toBeGreaterThanOrEqual(250);
    expect(xterm!.x).toBeGreaterThanOrEqual(0);
    expect(xterm!.y).toBeGreaterThanOrEqual(0);
    expect(xterm!.x + xterm!.width).toBeLessThanOrEqual(1024);
    expect(xterm!.y + xterm!.height).toBeLessThanOrEqual(768);
  });

  it("runs a window manager (fluxbox) that X knows of", { timeout: 200_000 }, async () => {
    const { output } = await sh("pidof fluxbox && DISPLAY=:0 xprop -root _NET_SUPPORTING_WM_CHECK");
    expect(output).toMatch(/^\d+\n_NET_SUPPORTING_WM_CHECK\(WINDOW\): window id # 0x[0-9a-f]+\n$/);
  });

  it("keeps what the guest writes in its own memory, never in the built root folder", { timeout: 350_000 }, async () => {
    const r = await sh("echo changed > /etc/hostname && echo new > /usr/share/from-the-guest && cat /etc/hostname /usr/share/from-the-guest");
    expect(r).toEqual({ output: "changed\nnew\n", status: 0 });
    expect(existsSync(join(root, "usr", "share", "from-the-guest"))).toBe(false);
    expect((await sh("echo nope > /mnt/root/etc/hostname 2>&1; cat /mnt/root/etc/hostname")).output).toMatch(/Read-only file system\ndesktop\n$/);
  });
});

describe.skipIf(problem !== undefined)(`${title}: a user's first start`, () => {
  it("resumes to its desktop with the xterm's window already shown (its state was kept once a window showed)", () => {
    const data = mkdtempSync(join(tmpdir(), "unm-desktop-first-"));
    try {
      const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");
      // Run at once after the start: a cold boot would not have X up yet, let alone the xterm.
      const r = spawnSync(process.execPath, [bin, "run", "desktop", "--headless", "--exec", `DISPLAY=:0 xwininfo -root -tree | grep -c '"XTerm")'`], {
        encoding: "utf8",
        timeout: 300_000,
        env: { ...process.env, UNMACHINE_DATA: data },
      });
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("1\n");
      expect(r.status).toBe(0);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  }, 320_000);
});
