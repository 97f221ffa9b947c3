// The Electron shell's decisions: a packaged app never runs a recipe (it would sit inside
// app.asar), closing the last window quits when no tray can bring it back, the tray menu follows
// the guests' readiness, and a build's progress reaches the page line by line.
import { describe, expect, it } from "vitest";
import type { BuildProgress } from "../../../core/ipc/contract.js";
import { buildAtStart, progressLines, quitWhenAllClosed, statusNotifierWatched, trayTemplate } from "../../../main/electron/shell-rules.js";

describe("buildAtStart", () => {
  it("builds in development only, and only a guest with a recipe", () => {
    expect(buildAtStart({ packaged: false, recipe: true })).toBe(true);
    expect(buildAtStart({ packaged: false, recipe: false })).toBe(false);
    expect(buildAtStart({ packaged: true, recipe: true })).toBe(false);
  });
});

describe("trays and quitting", () => {
  it("sees a tray only where a StatusNotifier watcher answers", () => {
    expect(statusNotifierWatched("(true,)\n")).toBe(true);
    for (const output of ["(false,)\n", "", undefined, "Error: Cannot autolaunch D-Bus"]) expect(statusNotifierWatched(output)).toBe(false);
  });

  it("quits when the last window closes if there is no tray", () => {
    expect(quitWhenAllClosed(false)).toBe(true);
    expect(quitWhenAllClosed(true)).toBe(false);
  });

  it("builds a menu that starts the guests that are ready", () => {
    const started: string[] = [];
    let shown = 0;
    const guest = (name: string, ready: boolean) => ({ name, title: name.toUpperCase(), description: "", memory: 64, family: "other" as const, builtIn: true, ready });
    const actions = { start: (g: string) => void started.push(g), show: () => void shown++ };
    const before = trayTemplate([guest("tiny", false)], actions);
    expect(before[0]).toMatchObject({ label: "Start TINY", enabled: false });
    const after = trayTemplate([guest("tiny", true), guest("dos", false)], actions);
    expect(after.map((i) => i.enabled)).toEqual([true, false, undefined, undefined, undefined]);
    after[0]!.click!();
    after[3]!.click!();
    expect(started).toEqual(["tiny"]);
    expect(shown).toBe(1);
    expect(after.at(-1)).toEqual({ label: "Quit", role: "quit" });
  });
});

describe("progressLines", () => {
  it("reports each complete line once, however the output is chunked", async () => {
    const seen: BuildProgress[] = [];
    const stream = progressLines("tiny", (p) => seen.push(p));
    for (const chunk of ["fetching lin", "ux-image...\r\n\n", "unpacking\nbuil", "ding initrd"]) stream.write(chunk);
    await new Promise<void>((resolve) => stream.end(resolve));
    expect(seen).toEqual(["fetching linux-image...", "unpacking", "building initrd"].map((line) => ({ guest: "tiny", state: "building", line })));
  });
});
