// The Electron shell's decisions, free of Electron's runtime so they are tested without it:
// whether the default guest is built at start (never in a packaged app: its recipe sits inside
// app.asar, which a spawned shell cannot read, and its files are bundled), whether a tray can
// be seen (Linux shows one only where a StatusNotifier host runs), the tray's menu, and a
// build's progress split into lines for the page.

import { Writable } from "node:stream";
import type { BuildProgress, GuestSummary } from "../../core/ipc/contract.js";

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
  start(guest: string): void;
  show(): void;
}

export interface TrayItem {
  label?: string;
  enabled?: boolean;
  type?: "separator";
  role?: "quit";
  click?: () => void;
}

/** The tray's menu for the guests as they are now (Linux needs it set again to change it). */
export function trayTemplate(guests: GuestSummary[], actions: TrayActions): TrayItem[] {
  return [
    ...guests.map((g) => ({ label: `Start ${g.title}`, enabled: g.ready, click: () => actions.start(g.name) })),
    { type: "separator" as const },
    { label: "Show Unmachine", click: () => actions.show() },
    { label: "Quit", role: "quit" as const },
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
