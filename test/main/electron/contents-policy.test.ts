// The Electron shell's rules for its web contents, driven through a fake WebContents: every
// navigation event (top frame, subframe, server redirect) away from unmachine://app/ is
// refused, the app's own pages are not, and a packaged app has no DevTools. New windows: only
// the app page's seamless windows open, locked down and without a menu; everything else is
// refused. Also pins the wording of Electron 45's typings the window rules rely on.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appWebPreferences, lockContents, type NavigationEvent, type WindowOpenAnswer, type WindowOpenDetails } from "../../../main/electron/contents-policy.js";

type Listener = (event: NavigationEvent & { isMainFrame: boolean }) => void;
type CreatedListener = (window: { removeMenu(): void }) => void;

class FakeContents {
  readonly listeners = new Map<string, Listener[]>();
  devToolsClosed = 0;
  windowOpenHandler: ((details: WindowOpenDetails) => WindowOpenAnswer) | undefined;
  createdListeners: CreatedListener[] = [];
  url = "unmachine://app/index.html";

  on(event: string, listener: Listener | CreatedListener): this {
    if (event === "did-create-window") this.createdListeners.push(listener as CreatedListener);
    else this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener as Listener]);
    return this;
  }
  closeDevTools(): void {
    this.devToolsClosed++;
  }
  setWindowOpenHandler(handler: (details: WindowOpenDetails) => WindowOpenAnswer): void {
    this.windowOpenHandler = handler;
  }
  getURL(): string {
    return this.url;
  }
  /** Emits as Electron does, the details first (url, isMainFrame, preventDefault); says whether it was refused. */
  emit(event: string, details: { url?: string; isMainFrame?: boolean } = {}): boolean {
    let prevented = false;
    const eventObject = { url: details.url ?? "", isMainFrame: details.isMainFrame ?? true, preventDefault: () => void (prevented = true) };
    for (const listener of this.listeners.get(event) ?? []) listener(eventObject);
    return prevented;
  }
}

function locked(packaged = true): FakeContents {
  const contents = new FakeContents();
  lockContents(contents, { packaged });
  return contents;
}

const NAVIGATIONS = ["will-navigate", "will-redirect", "will-frame-navigate"];
const FOREIGN = ["https://example.com/", "file:///etc/passwd", "unmachine://media/tiny/bzimage", "unmachine://app.evil/index.html", "javascript:alert(1)", "about:blank"];

describe("lockContents: navigation", () => {
  for (const event of NAVIGATIONS) {
    it(`${event} away from the app is refused, in the top frame and in subframes`, () => {
      const contents = locked();
      for (const url of FOREIGN) {
        expect(contents.emit(event, { url, isMainFrame: true }), `${event} ${url}`).toBe(true);
        expect(contents.emit(event, { url, isMainFrame: false }), `${event} ${url} (subframe)`).toBe(true);
      }
    });

    it(`${event} within the app is let through`, () => {
      const contents = locked();
      expect(contents.emit(event, { url: "unmachine://app/index.html", isMainFrame: true })).toBe(false);
      expect(contents.emit(event, { url: "unmachine://app/index.html?guest=tiny#x", isMainFrame: false })).toBe(false);
    });
  }

  it("refuses webviews and new windows", () => {
    const contents = locked();
    expect(contents.emit("will-attach-webview")).toBe(true);
    expect(contents.windowOpenHandler?.({ url: "https://example.com/", frameName: "" })).toEqual({ action: "deny" });
  });
});

describe("DevTools", () => {
  it("are disabled in the web preferences of a packaged app, and enabled in development", () => {
    expect(appWebPreferences("/app/preload.cjs", { packaged: true }).devTools).toBe(false);
    expect(appWebPreferences("/app/preload.cjs", { packaged: false }).devTools).toBe(true);
  });

  it("keep the page sandboxed and isolated, with its preload", () => {
    for (const packaged of [true, false]) {
      expect(appWebPreferences("/app/preload.cjs", { packaged })).toMatchObject({
        preload: "/app/preload.cjs",
        sandbox: true,
        contextIsolation: true,
        nodeIntegration: false,
        webSecurity: true,
      });
    }
  });

  it("are never throttled in the background: the page runs the guests, minimized or hidden", () => {
    expect(appWebPreferences("/app/preload.cjs", { packaged: true }).backgroundThrottling).toBe(false);
    // Electron 45: throttling of a background page's timers and animations is on unless turned off here.
    const types = readFileSync(join(import.meta.dirname, "..", "..", "..", "node_modules", "electron", "electron.d.ts"), "utf8");
    expect(types).toMatch(/Whether to throttle animations and timers when the page becomes background\.[^]*?Defaults to `true`\.\s+\*\/\s+backgroundThrottling\?: boolean;/);
  });

  it("are closed again if they open anyway in a packaged app, and left open in development", () => {
    const packaged = locked(true);
    packaged.emit("devtools-opened");
    expect(packaged.devToolsClosed).toBe(1);
    const development = locked(false);
    development.emit("devtools-opened");
    expect(development.devToolsClosed).toBe(0);
  });
});

const SEAMLESS_URL = "unmachine://app/seamless-window.html";

describe("lockContents: seamless windows", () => {
  it("the app's page opens its seamless windows: a native frame in the taskbar, of the content's size, locked down", () => {
    for (const opener of ["unmachine://app/index.html", "unmachine://app/", "unmachine://app/index.html?guest=desktop"]) {
      const contents = locked(true);
      contents.url = opener;
      const answer = contents.windowOpenHandler?.({ url: SEAMLESS_URL, frameName: "unmachine-seamless-4194311" });
      expect(answer, opener).toMatchObject({
        action: "allow",
        overrideBrowserWindowOptions: {
          frame: true,
          useContentSize: true,
          skipTaskbar: false,
          fullscreenable: false,
          webPreferences: { sandbox: true, contextIsolation: true, nodeIntegration: false, webSecurity: true, webviewTag: false, devTools: false },
        },
      });
      const options = answer?.action === "allow" ? answer.overrideBrowserWindowOptions : undefined;
      expect(options?.minWidth).toBeGreaterThan(0);
      expect(options?.minHeight).toBeGreaterThan(0);
      expect(options?.webPreferences?.preload).toBeUndefined();
    }
  });

  it("refuses every other window: other pages or names, or a seamless window asked by anything but the app's page", () => {
    const deny = { action: "deny" };
    const contents = locked();
    const refused: WindowOpenDetails[] = [
      { url: SEAMLESS_URL, frameName: "" },
      { url: SEAMLESS_URL, frameName: "_blank" },
      { url: SEAMLESS_URL, frameName: "unmachine-seamless-" },
      { url: SEAMLESS_URL, frameName: "unmachine-seamless-12x" },
      { url: SEAMLESS_URL, frameName: "other-unmachine-seamless-12" },
      { url: `${SEAMLESS_URL}?x=1`, frameName: "unmachine-seamless-12" },
      { url: `${SEAMLESS_URL}#x`, frameName: "unmachine-seamless-12" },
      { url: "unmachine://app/index.html", frameName: "unmachine-seamless-12" },
      { url: "about:blank", frameName: "unmachine-seamless-12" },
      { url: "https://example.com/seamless-window.html", frameName: "unmachine-seamless-12" },
      { url: "unmachine://media/seamless-window.html", frameName: "unmachine-seamless-12" },
    ];
    for (const details of refused) expect(contents.windowOpenHandler?.(details), JSON.stringify(details)).toEqual(deny);
    for (const opener of [SEAMLESS_URL, "https://example.com/", "unmachine://app/other.html", "about:blank", ""]) {
      const other = locked();
      other.url = opener;
      expect(other.windowOpenHandler?.({ url: SEAMLESS_URL, frameName: "unmachine-seamless-12" }), opener).toEqual(deny);
    }
  });

  it("a seamless window has no menu (Alt, which shows it, is the guest's)", () => {
    const contents = locked();
    let removed = 0;
    for (const listener of contents.createdListeners) listener({ removeMenu: () => void removed++ });
    expect(removed).toBe(1);
  });

  it("relies on Electron 45: the handler's details and answer, did-create-window, web-contents-created, removeMenu", () => {
    const types = readFileSync(join(import.meta.dirname, "..", "..", "..", "node_modules", "electron", "electron.d.ts"), "utf8");
    expect(types).toMatch(/setWindowOpenHandler\(handler: \(details: HandlerDetails\) => WindowOpenHandlerResponse\): void;/);
    expect(types).toMatch(/interface HandlerDetails \{[^}]*?url: string;[^}]*?frameName: string;/);
    expect(types).toMatch(/interface WindowOpenHandlerResponse \{[^}]*?action: \('allow' \| 'deny'\);[^}]*?overrideBrowserWindowOptions\?: BrowserWindowConstructorOptions;/);
    // did-create-window comes after the handler allowed a window, and not when it denied one.
    expect(types).toMatch(/Emitted _after_ successful creation of a window via `window.open` in the\s+\* renderer\. Not emitted if the creation of the window is canceled from\s+\* `webContents.setWindowOpenHandler`\.\s+\*[^]*?on\(event: 'did-create-window', listener: \(window: BrowserWindow,/);
    // Every WebContents, a seamless window's too, passes web-contents-created, where main.ts locks it.
    expect(types).toMatch(/on\(event: 'web-contents-created', listener: \(event: Event,\s+webContents: WebContents\) => void\): this;/);
    expect(types).toMatch(/removeMenu\(\): void;/);
    expect(types).toMatch(/useContentSize\?: boolean;/);
  });
});
