// What the Electron shell allows its web contents: the page's web preferences (no DevTools in
// a packaged app), and the locks set on every WebContents: every navigation, redirect and
// subframe navigation stays within unmachine://app/, no webviews, no new windows but one kind:
// the page's seamless windows (one per guest window, core/ipc/contract.ts), opened locked down
// and without a menu. Electron types only, so it runs without Electron's runtime (main.ts applies it).

import type { BrowserWindowConstructorOptions, WebPreferences } from "electron";
import { SEAMLESS_WINDOW_NAME, SEAMLESS_WINDOW_PAGE } from "../../core/ipc/contract.js";
import { APP_ORIGIN, isAppUrl } from "./app-url.js";

/** What will-navigate, will-redirect and will-frame-navigate pass first (Electron's
 *  Event<WebContentsWill...EventParams>): the target URL and the way to refuse it. */
export interface NavigationEvent {
  readonly url: string;
  preventDefault(): void;
}

/** What setWindowOpenHandler is told of a window.open (Electron's HandlerDetails, the part consulted). */
export interface WindowOpenDetails {
  readonly url: string;
  readonly frameName: string;
}

/** What the handler answers (Electron's WindowOpenHandlerResponse, the part used). */
export type WindowOpenAnswer = { action: "deny" } | { action: "allow"; overrideBrowserWindowOptions: BrowserWindowConstructorOptions };

/** The part of a BrowserWindow did-create-window hands over that the locks use. */
export interface CreatedWindow {
  removeMenu(): void;
}

/** The part of Electron's WebContents the locks need (a WebContents is one). */
export interface LockableContents {
  on(event: "will-navigate", listener: (event: NavigationEvent) => void): unknown;
  on(event: "will-redirect", listener: (event: NavigationEvent) => void): unknown;
  on(event: "will-frame-navigate", listener: (event: NavigationEvent) => void): unknown;
  on(event: "devtools-opened", listener: () => void): unknown;
  on(event: "will-attach-webview", listener: (event: { preventDefault(): void }) => void): unknown;
  on(event: "did-create-window", listener: (window: CreatedWindow) => void): unknown;
  setWindowOpenHandler(handler: (details: WindowOpenDetails) => WindowOpenAnswer): void;
  getURL(): string;
  closeDevTools(): void;
}

export interface ShellMode {
  /** app.isPackaged: an installed build rather than a development run. */
  packaged: boolean;
}

/**
 * The app's page: sandboxed and isolated, with its preload. It runs the guests: it is never
 * throttled in the background (a minimized or hidden window, its guests' windows in use on
 * their own), so a guest runs at its speed and its seamless windows stay live.
 */
export function appWebPreferences(preload: string, mode: ShellMode): WebPreferences {
  return {
    preload,
    backgroundThrottling: false,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    webSecurity: true,
    spellcheck: false,
    // Also makes openDevTools() a no-op; the default menu's Toggle Developer Tools does nothing.
    devTools: !mode.packaged,
  };
}

/**
 * A seamless window: the guest window's title on a native frame, so the host's window manager
 * moves, resizes, minimizes, closes and lists it (in the taskbar) as any window; its content is
 * the guest window's size (useContentSize); no menu, no full screen; the page's locks, without
 * a preload (its page runs no script: the opener draws into it and takes its input).
 */
export function seamlessWindowOptions(mode: ShellMode): BrowserWindowConstructorOptions {
  return {
    frame: true,
    useContentSize: true,
    skipTaskbar: false,
    autoHideMenuBar: true,
    fullscreenable: false,
    minWidth: 64,
    minHeight: 32,
    backgroundColor: "#000000",
    webPreferences: {
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      webviewTag: false,
      spellcheck: false,
      devTools: !mode.packaged,
    },
  };
}

/** The app's own page (unmachine://app/ or /index.html, any query): the only opener of seamless windows. */
function isAppPage(url: string): boolean {
  if (!isAppUrl(url)) return false;
  const path = new URL(url).pathname;
  return path === "/" || path === "/index.html";
}

/**
 * Every window.open is refused but a seamless window that the app's own page opens: exactly the
 * seamless page, no query or fragment, named with the seamless prefix and a window id.
 */
export function windowOpenAnswer(opener: string, details: WindowOpenDetails, mode: ShellMode): WindowOpenAnswer {
  const seamless = isAppPage(opener) && details.url === `${APP_ORIGIN}/${SEAMLESS_WINDOW_PAGE}` && SEAMLESS_WINDOW_NAME.test(details.frameName);
  return seamless ? { action: "allow", overrideBrowserWindowOptions: seamlessWindowOptions(mode) } : { action: "deny" };
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
  // A seamless window's own contents are locked as every WebContents is (main.ts's
  // web-contents-created): it cannot navigate away or open windows (its URL is not the page's).
  contents.setWindowOpenHandler((details) => windowOpenAnswer(contents.getURL(), details, mode));
  // The app's menu would show on Alt, a key the guest's apps use.
  contents.on("did-create-window", (window) => window.removeMenu());
  // Contents made without appWebPreferences (none today) get no DevTools either.
  if (mode.packaged) contents.on("devtools-opened", () => contents.closeDevTools());
}
