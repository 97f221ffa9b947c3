// What the Electron shell allows its web contents: the page's web preferences (no DevTools in
// a packaged app), and the locks set on every WebContents: every navigation, redirect and
// subframe navigation stays within unmachine://app/, no webviews, no new windows. Electron
// types only, so it runs without Electron's runtime (main.ts applies it).

import type { WebPreferences } from "electron";
import { isAppUrl } from "./app-url.js";

/** What will-navigate, will-redirect and will-frame-navigate pass first (Electron's
 *  Event<WebContentsWill...EventParams>): the target URL and the way to refuse it. */
export interface NavigationEvent {
  readonly url: string;
  preventDefault(): void;
}

/** The part of Electron's WebContents the locks need (a WebContents is one). */
export interface LockableContents {
  on(event: "will-navigate", listener: (event: NavigationEvent) => void): unknown;
  on(event: "will-redirect", listener: (event: NavigationEvent) => void): unknown;
  on(event: "will-frame-navigate", listener: (event: NavigationEvent) => void): unknown;
  on(event: "devtools-opened", listener: () => void): unknown;
  on(event: "will-attach-webview", listener: (event: { preventDefault(): void }) => void): unknown;
  setWindowOpenHandler(handler: () => { action: "deny" }): void;
  closeDevTools(): void;
}

export interface ShellMode {
  /** app.isPackaged: an installed build rather than a development run. */
  packaged: boolean;
}

export function appWebPreferences(preload: string, mode: ShellMode): WebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    webSecurity: true,
    spellcheck: false,
    // Also makes openDevTools() a no-op; the default menu's Toggle Developer Tools does nothing.
    devTools: !mode.packaged,
  };
}

/** The one navigation check, whatever the frame (isMainFrame is deliberately not consulted). */
function refuseForeign(event: NavigationEvent): void {
  if (!isAppUrl(event.url)) event.preventDefault();
}

export function lockContents(contents: LockableContents, mode: ShellMode): void {
  // will-navigate: the top frame; will-frame-navigate: any frame; will-redirect: a server
  // redirect in any frame, which neither of the others sees.
  contents.on("will-navigate", refuseForeign);
  contents.on("will-frame-navigate", refuseForeign);
  contents.on("will-redirect", refuseForeign);
  contents.on("will-attach-webview", (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: "deny" }));
  // Contents made without appWebPreferences (none today) get no DevTools either.
  if (mode.packaged) contents.on("devtools-opened", () => contents.closeDevTools());
}
