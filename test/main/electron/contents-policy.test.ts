// The Electron shell's rules for its web contents, driven through a fake WebContents: every
// navigation event (top frame, subframe, server redirect) away from unmachine://app/ is
// refused, the app's own pages are not, and a packaged app has no DevTools.
import { describe, expect, it } from "vitest";
import { appWebPreferences, lockContents, type NavigationEvent } from "../../../main/electron/contents-policy.js";

type Listener = (event: NavigationEvent & { isMainFrame: boolean }) => void;

class FakeContents {
  readonly listeners = new Map<string, Listener[]>();
  devToolsClosed = 0;
  windowOpenHandler: (() => unknown) | undefined;

  on(event: string, listener: Listener): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }
  closeDevTools(): void {
    this.devToolsClosed++;
  }
  setWindowOpenHandler(handler: () => unknown): void {
    this.windowOpenHandler = handler;
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
    expect(contents.windowOpenHandler?.()).toEqual({ action: "deny" });
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

  it("are closed again if they open anyway in a packaged app, and left open in development", () => {
    const packaged = locked(true);
    packaged.emit("devtools-opened");
    expect(packaged.devToolsClosed).toBe(1);
    const development = locked(false);
    development.emit("devtools-opened");
    expect(development.devToolsClosed).toBe(0);
  });
});
