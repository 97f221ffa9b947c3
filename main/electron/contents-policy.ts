// What the Electron shell allows its web contents: the page's web preferences, and the locks
// set on every WebContents (navigation only within unmachine://app/, no webviews, no new
// windows). Electron types only, so it runs without Electron's runtime (main.ts applies it).

import type { WebPreferences } from "electron";
import { isAppUrl } from "./app-url.js";

/** What Electron's navigation events pass first: the target URL and the way to refuse it. */
export interface NavigationEvent {
  readonly url: string;
  preventDefault(): void;
}

/** The part of Electron's WebContents the locks need (a WebContents is one). */
export interface LockableContents {
  on(event: "will-navigate", listener: (event: NavigationEvent) => void): unknown;
  on(event: "will-attach-webview", listener: (event: { preventDefault(): void }) => void): unknown;
  setWindowOpenHandler(handler: () => { action: "deny" }): void;
}

export interface ShellMode {
  /** app.isPackaged: an installed build rather than a development run. */
  packaged: boolean;
}

export function appWebPreferences(preload: string, _mode: ShellMode): WebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    webSecurity: true,
    spellcheck: false,
  };
}

function refuseForeign(event: NavigationEvent): void {
  if (!isAppUrl(event.url)) event.preventDefault();
}

export function lockContents(contents: LockableContents, _mode: ShellMode): void {
  contents.on("will-navigate", refuseForeign);
  contents.on("will-attach-webview", (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: "deny" }));
}
