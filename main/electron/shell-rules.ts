// The Electron shell's decisions, free of Electron's runtime so they are tested without it:
// whether the default guest is built at start (never in a packaged app: its recipe sits inside
// app.asar, which a spawned shell cannot read, and its files are bundled), whether a tray can
// be seen (Linux shows one only where a StatusNotifier host runs), the tray's menu (the library,
// each guest's state from the host's sessions), a build's progress split into lines for the page,
// and a closing window that lets its page save its guests first.

import { Writable } from "node:stream";
import type { MenuItemConstructorOptions } from "electron";
import type { BuildProgress, GuestSummary, LauncherApp, SessionInfo } from "../../core/ipc/contract.js";

export interface BuildSituation {
  /** app.isPackaged */
  packaged: boolean;
  /** The guest has a build recipe. */
  recipe: boolean;
}

/** Whether to run the guest's recipe at start; in development it is quick when nothing changed. */
export function buildAtStart(situation: BuildSituation): boolean {
  return !situation.packaged && situation.recipe;
}

/**
 * What `gdbus call ... NameHasOwner org.kde.StatusNotifierWatcher` printed, read as whether a
 * tray icon will be seen. GNOME without the AppIndicator extension has no watcher; the answer
 * is "(true,)" where one runs. Anything else (no gdbus, no session bus) counts as no tray.
 */
export function statusNotifierWatched(gdbusOutput: string | undefined): boolean {
  return gdbusOutput?.trim() === "(true,)";
}

/** With no tray to reopen it, closing the last window quits the app. */
export function quitWhenAllClosed(trayShown: boolean): boolean {
  return !trayShown;
}

export interface TrayActions {
  /** Starts the guest in the page, or brings its tab forward where it runs; then launches `app`, if given. */
  open(guest: string, app?: string): void;
  show(): void;
}

/**
 * A tray menu item: only what Electron 45 documents for every platform (its `sublabel` is
 * macOS-only, so a guest's state goes in its label). Typed from Electron's own options.
 */
export type TrayItem = Pick<MenuItemConstructorOptions, "label" | "enabled" | "type" | "role"> & { click?: () => void; submenu?: TrayItem[] };

export type TrayGuestState = "running" | "starting" | "stopped";

/** Each guest's state as the host's sessions tell it: any session of it on makes it on. */
export function guestStates(sessions: readonly SessionInfo[]): Map<string, TrayGuestState> {
  const states = new Map<string, TrayGuestState>();
  for (const s of sessions) {
    if (s.state === "running") states.set(s.guest, "running");
    else if (s.state === "booting" && states.get(s.guest) !== "running") states.set(s.guest, "starting");
  }
  return states;
}

/**
 * The tray's menu: the library with each guest's state; choosing a guest starts it, or brings
 * it forward where it runs. A guest with remembered apps has them in a submenu, under it. Rebuilt whenever a guest starts or stops (Linux shows a changed
 * menu only when it is set again).
 */
export function trayTemplate(guests: GuestSummary[], states: ReadonlyMap<string, TrayGuestState>, actions: TrayActions, apps: ReadonlyMap<string, readonly LauncherApp[]> = new Map()): TrayItem[] {
  return [
    ...guests.map((g): TrayItem => {
      const state = states.get(g.name) ?? "stopped";
      const on = state !== "stopped";
      const label = `${g.title} — ${on || g.ready ? state : "not built"}`;
      const launchable = g.ready || on ? (apps.get(g.name) ?? []) : [];
      if (launchable.length === 0) return { label, enabled: on || g.ready, click: () => actions.open(g.name) };
      return { label, submenu: trayApps(g, launchable, actions) };
    }),
    { type: "separator" as const },
    { label: "Show Unmachine", click: () => actions.show() },
    { label: "Quit", role: "quit" as const },
  ];
}

/**
 * A guest's submenu: the guest itself, then the apps it last reported (guests/apps-store.ts);
 * choosing one starts (resumes) the guest if it is off and launches the app in it.
 */
function trayApps(guest: GuestSummary, apps: readonly LauncherApp[], actions: TrayActions): TrayItem[] {
  return [
    { label: `Open ${guest.title}`, click: () => actions.open(guest.name) },
    { type: "separator" as const },
    ...apps.map((app): TrayItem => ({ label: app.name, click: () => actions.open(guest.name, app.id) })),
  ];
}

/** A stream that hands each complete line written to it (a build recipe's stderr) to `report`. */
export function progressLines(guest: string, report: (progress: BuildProgress) => void): Writable {
  let pending = "";
  const emit = (line: string): void => {
    const text = line.replace(/\r$/, "").trim();
    if (text) report({ guest, state: "building", line: text });
  };
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) emit(line);
      done();
    },
    final(done) {
      emit(pending);
      pending = "";
      done();
    },
  });
}

/** How long a closing window waits for its page to save its guests before it closes anyway. */
export const SUSPEND_WAIT_MS = 15_000;

/** What suspendOnClose needs of a BrowserWindow. */
export interface ClosingWindow {
  on(event: "close", listener: (event: { preventDefault(): void }) => void): unknown;
  /** Closes without emitting "close" again (Electron 45: BrowserWindow.destroy). */
  destroy(): void;
  isDestroyed(): boolean;
}

/**
 * Closing the window saves its guests first: Electron 45 emits "close" before the page unloads,
 * and preventDefault cancels that close; the page is asked to suspend its guests (`suspend`),
 * and then (or after `waitMs`, a page that does not answer) the window is destroyed, which
 * emits no "close" again.
 */
export function suspendOnClose(window: ClosingWindow, suspend: () => Promise<void>, waitMs = SUSPEND_WAIT_MS): void {
  let closing = false;
  window.on("close", (event) => {
    event.preventDefault();
    if (closing) return;
    closing = true;
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, waitMs));
    void Promise.race([suspend().catch(() => {}), timeout]).then(() => {
      if (!window.isDestroyed()) window.destroy();
    });
  });
}
