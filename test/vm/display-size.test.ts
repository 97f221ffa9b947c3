// The desktop guest's screen following the host's view, for real in v86 (a Node worker): the
// host asks the agent for 800x600, then 1024x768 (agent message setDisplay); the guest's own
// xrandr and xwininfo -root read the new size back, and the agent's display report says it;
// the window list keeps the xterm where it is through the change, framed by its window manager
// all along, and the xterm keeps the focus (what was typed into it still goes there).
// Prints how long each change took, from the request to the agent's report. Skipped, with the
// reason in its title, when the desktop guest is not built (unmachine build desktop).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GuestLibrary } from "../../main/guests/library.js";
import { startDesktop, type RunningDesktop } from "../support/desktop.js";
import type { AgentSession } from "../../core/agent/session.js";
import type { Display } from "../../core/agent/messages.js";

const library = new GuestLibrary();
const problem = library.problem("desktop");
const title = problem === undefined ? "the desktop guest's screen size" : `the desktop guest's screen size (skipped: ${problem})`;

/** Resolves with the agent's display report once it is `width` x `height` (the current one included). */
function displayOf(agent: AgentSession, width: number, height: number, timeoutMs: number): Promise<Display> {
  return new Promise((resolve, reject) => {
    const now = agent.display;
    if (now?.width === width && now.height === height) {
      resolve(now);
      return;
    }
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`the agent did not report ${width}x${height} within ${timeoutMs} ms; the last: ${JSON.stringify(agent.display)}`));
    }, timeoutMs);
    const sub = agent.onDisplay((display) => {
      if (display.width !== width || display.height !== height) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(display);
    });
  });
}

/** The X screen's size as the guest's own tools say it: xrandr's current size and xwininfo's root geometry. */
async function guestSize(agent: AgentSession): Promise<{ xrandr: string; root: string }> {
  const xrandr = await agent.exec("DISPLAY=:0 xrandr | sed -n 's/.*current \\([0-9]*\\) x \\([0-9]*\\),.*/\\1x\\2/p'");
  const root = await agent.exec("DISPLAY=:0 xwininfo -root | sed -n 's/^ *-geometry \\([0-9]*x[0-9]*\\).*/\\1/p'");
  expect(xrandr.status, xrandr.output).toBe(0);
  expect(root.status, root.output).toBe(0);
  return { xrandr: xrandr.output.trim(), root: root.output.trim() };
}

/**
 * The colour of one pixel of the guest's screen as X has it (xwd -root), "rrggbb": what a user
 * sees there. The dump's header gives where its pixels start (XWD file format, X11R7).
 */
async function screenPixel(agent: AgentSession, x: number, y: number): Promise<string> {
  const header = await agent.exec("DISPLAY=:0 xwd -root -silent > /tmp/screen.xwd && od -An -tu1 -v -N 104 /tmp/screen.xwd");
  expect(header.status, header.output).toBe(0);
  const bytes = header.output.trim().split(/\s+/).map(Number);
  const field = (i: number): number => bytes[i * 4]! * 2 ** 24 + bytes[i * 4 + 1]! * 2 ** 16 + bytes[i * 4 + 2]! * 2 ** 8 + bytes[i * 4 + 3]!;
  const [size, bitsPerPixel, bytesPerLine, colours, byteOrder] = [field(0), field(11), field(12), field(19), field(7)];
  expect(bitsPerPixel, "a 32-bit screen").toBe(32);
  const at = size + colours * 12 + y * bytesPerLine + x * 4;
  const pixel = await agent.exec(`od -An -tx1 -v -j ${at} -N 4 /tmp/screen.xwd; rm -f /tmp/screen.xwd`);
  const [b0, b1, b2, b3] = pixel.output.trim().split(/\s+/);
  return byteOrder === 0 ? `${b2}${b1}${b0}` : `${b1}${b2}${b3}`;
}

describe.skipIf(problem !== undefined)(title, () => {
  let desktop: RunningDesktop;
  let agent: AgentSession;

  beforeAll(async () => {
    desktop = await startDesktop(library, "display-size", { windowShown: true });
    agent = desktop.agent;
  }, 400_000);
  afterAll(async () => {
    await desktop?.stop();
  });

  it("starts at 1024x768, as X reports it", { timeout: 60_000 }, async () => {
    await displayOf(agent, 1024, 768, 30_000);
    expect(await guestSize(agent)).toEqual({ xrandr: "1024x768", root: "1024x768" });
  });

  for (const [width, height] of [[800, 600], [1024, 768], [1000, 700]] as const) {
    it(`sets the screen to ${width}x${height} when the host asks`, { timeout: 120_000 }, async () => {
      // The list keeps the xterm, where it was, all through the change (a host window for it
      // would otherwise close, or jump, and come back).
      let xterm = agent.windows?.find((w) => w.className === "XTerm");
      expect(xterm, "the initial xterm is listed").toBeDefined();
      await agent.windowAction(xterm!.id, { kind: "raise" });
      await expect.poll(() => agent.windows?.find((w) => w.id === xterm!.id)?.focused, { timeout: 10_000 }).toBe(true);
      xterm = agent.windows!.find((w) => w.id === xterm!.id);
      const wrong: string[] = [];
      const watching = agent.onWindows((list) => {
        const now = list.find((w) => w.id === xterm!.id);
        if (!now || now.x !== xterm!.x || now.y !== xterm!.y) wrong.push(JSON.stringify(list.map((w) => [w.id, w.title, w.x, w.y])));
      });
      const started = Date.now();
      const reported = displayOf(agent, width, height, 60_000);
      expect(agent.setDisplaySize(width, height)).toBe(true);
      expect(await reported).toEqual({ type: "display", mode: "graphics", width, height });
      console.log(`display-size: ${width}x${height} reported by the agent ${Date.now() - started} ms after the request`);
      expect(await guestSize(agent)).toEqual({ xrandr: `${width}x${height}`, root: `${width}x${height}` });
      // Still framed a few seconds on (its frame is the child of the root, not the xterm itself).
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await expect.poll(async () => (await agent.exec("DISPLAY=:0 xwininfo -root -children | grep -c '\"xterm\"'")).output.trim(), { timeout: 30_000, interval: 500 }).toBe("0");
      // The desktop shows its colour again, beside the xterm: the new screen starts black.
      await expect.poll(() => screenPixel(agent, width - 10, Math.floor(height / 2)), { timeout: 20_000, interval: 1000 }).toBe("4e6a86");
      watching.dispose();
      expect(wrong).toEqual([]);
      await expect.poll(() => agent.windows?.find((w) => w.id === xterm!.id)?.focused, { timeout: 10_000 }).toBe(true);
    });
  }

  it("launches an app on the resized screen", { timeout: 120_000 }, async () => {
    const launched = await agent.launch("xcalc", 60_000);
    expect(agent.windows?.find((w) => w.id === launched.window)?.title).toBe("Calculator");
  });

  it("clamps a size the VGA cannot show", { timeout: 120_000 }, async () => {
    const reported = displayOf(agent, 640, 480, 60_000);
    expect(agent.setDisplaySize(320, 200)).toBe(true);
    await reported;
    expect(await guestSize(agent)).toEqual({ xrandr: "640x480", root: "640x480" });
  });
});
