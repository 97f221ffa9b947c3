// The Electron shell's decisions: a packaged app never runs a recipe (it would sit inside
// app.asar), closing the last window quits when no tray can bring it back, the tray menu lists
// the library with each guest's state, a build's progress reaches the page line by line, and a
// closing window waits for its page to save its guests.
import { describe, expect, it } from "vitest";
import type { BuildProgress } from "../../../core/ipc/contract.js";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildAtStart, guestStates, progressLines, quitWhenAllClosed, statusNotifierWatched, suspendOnClose, trayTemplate, type ClosingWindow } from "../../../main/electron/shell-rules.js";

const root = resolve(import.meta.dirname, "../../..");

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

  it("lists the library with each guest's state in labels, which Electron 45 shows on every platform; choosing one opens it, running or not", () => {
    // The state goes in the label, not the sublabel Electron 45 documents as macOS-only.
    const types = readFileSync(join(root, "node_modules", "electron", "electron.d.ts"), "utf8");
    const options = types.slice(types.indexOf("interface MenuItemConstructorOptions"));
    expect(options).toMatch(/@platform darwin\s*\*\/\s*sublabel\?: string;/);
    // The label carries no doc comment, so no platform limit.
    const lines = options.split("\n");
    const label = lines.findIndex((line) => line.trim() === "label?: string;");
    expect(label).toBeGreaterThan(0);
    expect(lines[label - 1]).not.toContain("*/");
    const [item] = trayTemplate([{ name: "tiny", title: "Tiny", description: "", memory: 64, family: "other", builtIn: true, ready: true }], new Map(), { open: () => {}, show: () => {} });
    expect(Object.keys(item!).sort()).toEqual(["click", "enabled", "label"]);

    const opened: string[] = [];
    let shown = 0;
    const guest = (name: string, ready: boolean) => ({ name, title: name.toUpperCase(), description: "", memory: 64, family: "other" as const, builtIn: true, ready });
    const actions = { open: (g: string) => void opened.push(g), show: () => void shown++ };
    const before = trayTemplate([guest("tiny", false)], new Map(), actions);
    expect(before[0]).toMatchObject({ label: "TINY — not built", enabled: false });
    const states = guestStates([
      { id: "1", guest: "tiny", state: "running" },
      { id: "2", guest: "dos", state: "booting" },
    ]);
    const after = trayTemplate([guest("dos", true), guest("tiny", true), guest("win", true), guest("old", false)], states, actions);
    expect(after.map((i) => i.label)).toEqual(["DOS — starting", "TINY — running", "WIN — stopped", "OLD — not built", undefined, "Show Unmachine", "Quit"]);
    expect(after.map((i) => i.enabled)).toEqual([true, true, true, false, undefined, undefined, undefined]);
    after[1]!.click!();
    after[2]!.click!();
    after[5]!.click!();
    expect(opened).toEqual(["tiny", "win"]);
    expect(shown).toBe(1);
    expect(after.at(-1)).toEqual({ label: "Quit", role: "quit" });
  });

  it("lists each guest's remembered apps under it; choosing one starts the guest and launches the app", () => {
    const guest = (name: string, ready: boolean) => ({ name, title: name.toUpperCase(), description: "", memory: 64, family: "other" as const, builtIn: true, ready });
    const opened: [string, string | undefined][] = [];
    const actions = { open: (g: string, app?: string) => void opened.push([g, app]), show: () => {} };
    const apps = new Map([
      ["desktop", [{ id: "xterm", name: "XTerm" }, { id: "xcalc", name: "Calculator", icon: "iVBORw0KGgo=" }]],
      ["old", [{ id: "edit", name: "Edit" }]],
    ]);
    const menu = trayTemplate([guest("desktop", true), guest("tiny", true), guest("old", false)], guestStates([{ id: "1", guest: "desktop", state: "running" }]), actions, apps);
    expect(menu[0]).toEqual({ label: "DESKTOP — running", submenu: expect.any(Array) });
    const submenu = menu[0]!.submenu!;
    expect(submenu.map((i) => i.label)).toEqual(["Open DESKTOP", undefined, "XTerm", "Calculator"]);
    expect(submenu[1]).toEqual({ type: "separator" });
    // A guest with no apps, or one not built (whatever it remembered), stays a plain item.
    expect(menu[1]).toMatchObject({ label: "TINY — stopped", enabled: true });
    expect(menu[2]).toMatchObject({ label: "OLD — not built", enabled: false });
    expect(menu[2]).not.toHaveProperty("submenu");
    submenu[3]!.click!();
    submenu[0]!.click!();
    menu[1]!.click!();
    expect(opened).toEqual([["desktop", "xcalc"], ["desktop", undefined], ["tiny", undefined]]);
  });

  it("counts a guest running once any of its sessions runs, and stopped once none is on", () => {
    const states = guestStates([
      { id: "1", guest: "tiny", state: "running" },
      { id: "2", guest: "tiny", state: "booting" },
      { id: "3", guest: "dos", state: "failed" },
    ]);
    expect(states.get("tiny")).toBe("running");
    expect(states.has("dos")).toBe(false);
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

/** A window as Electron 45 documents it: "close" may be prevented; destroy() closes without another "close". */
function closingWindow(): ClosingWindow & { close(): boolean; destroyed: boolean } {
  let listener: ((event: { preventDefault(): void }) => void) | undefined;
  const win = {
    destroyed: false,
    on: (_event: "close", l: (event: { preventDefault(): void }) => void) => (listener = l),
    destroy: () => void (win.destroyed = true),
    isDestroyed: () => win.destroyed,
    /** Emits "close"; whether the window would close (not prevented). */
    close: (): boolean => {
      let prevented = false;
      listener?.({ preventDefault: () => (prevented = true) });
      return !prevented;
    },
  };
  return win;
}

describe("closing the window", () => {
  it("relies on Electron 45: close is emitted before the page unloads and preventDefault cancels it; destroy emits no close", () => {
    const types = readFileSync(join(root, "node_modules", "electron", "electron.d.ts"), "utf8");
    expect(types).toMatch(/Emitted when the window is going to be closed\. It's emitted before the\s*\*\s*`beforeunload` and `unload` event of the DOM\. Calling `event\.preventDefault\(\)`\s*\*\s*will cancel the close\./);
    expect(types).toMatch(/Force closing the window, the `unload` and `beforeunload` event won't be emitted\s*\*\s*for the web page, and `close` event will also not be emitted for this window/);
  });

  it("waits for the page to save its guests, then closes; a second close meanwhile changes nothing", async () => {
    const win = closingWindow();
    let saved: () => void = () => {};
    let asked = 0;
    suspendOnClose(win, () => {
      asked++;
      return new Promise<void>((resolve) => (saved = resolve));
    });
    expect(win.close()).toBe(false);
    expect(win.close()).toBe(false);
    await new Promise((r) => setTimeout(r, 10));
    expect(asked).toBe(1);
    expect(win.destroyed).toBe(false);
    saved();
    await new Promise((r) => setTimeout(r, 10));
    expect(win.destroyed).toBe(true);
  });

  it("closes anyway when the page does not answer in time", async () => {
    const win = closingWindow();
    suspendOnClose(win, () => new Promise<void>(() => {}), 30);
    win.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(win.destroyed).toBe(false);
    await new Promise((r) => setTimeout(r, 40));
    expect(win.destroyed).toBe(true);
  });
});
