// The desktop guest's screen following the host's view, for real in v86 (a Node worker): the
// host asks the agent for 800x600, then 1024x768 (agent message setDisplay); the guest's own
// xrandr and xwininfo -root read the new size back, and the agent's display report says it;
// the window list keeps the xterm where it is while the window manager restarts for it, and the
// xterm has the focus again after (what was typed into it still goes there).
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
      // Its window manager (jwm) restarts on a new screen size, letting go of its windows for a
      // few seconds: the list meanwhile keeps the xterm, where it was (a host window for it
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
      // jwm frames it again (its frame is a child of the root, not the xterm itself), after it has had the time to restart.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await expect.poll(async () => (await agent.exec("DISPLAY=:0 xwininfo -root -children | grep -c '\"xterm\"'")).output.trim(), { timeout: 30_000, interval: 500 }).toBe("0");
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
