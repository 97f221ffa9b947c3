// Host windows for a guest's windows (renderer/guest/seamless-popups.ts), against popups that
// behave as a browser's: moveTo/resizeBy take effect a moment later, a host may round a size
// by a pixel. What a user would notice: a move or resize of a window that the guest never
// follows, or a window that jumps back.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SeamlessPopups, type SeamlessGuest } from "../../renderer/guest/seamless-popups.js";
import type { GuestWindow, WindowActionRequest } from "../../core/ipc/contract.js";
import { xtermWindow } from "../support/windows.js";

/** A popup window as the page sees it: its place and content size, changed a frame after it is asked. */
class FakePopup {
  closed = false;
  screenX: number;
  screenY: number;
  innerWidth: number;
  innerHeight: number;
  readonly #canvasListeners = new Map<string, ((event: unknown) => void)[]>();
  readonly canvas = {
    width: 0,
    height: 0,
    getContext: () => null,
    addEventListener: (type: string, listener: (event: unknown) => void) => this.#canvasListeners.set(type, [...(this.#canvasListeners.get(type) ?? []), listener]),
    setPointerCapture: () => {},
  };
  /** Whether this popup is the host's active window. */
  active = false;
  readonly document = {
    readyState: "complete",
    URL: "http://127.0.0.1/seamless-window.html",
    title: "",
    querySelector: () => this.canvas,
    hasFocus: () => this.active,
  };
  readonly #listeners = new Map<string, (() => void)[]>();
  /** Changes asked of the popup, applied by settle() (a browser applies them asynchronously). */
  #pending: (() => void)[] = [];

  constructor(x: number, y: number, width: number, height: number, roundHeight: number) {
    [this.screenX, this.screenY, this.innerWidth, this.innerHeight] = [x, y, width, height + roundHeight];
  }
  moveTo(x: number, y: number): void {
    this.#pending.push(() => ([this.screenX, this.screenY] = [x, y]));
  }
  moveBy(dx: number, dy: number): void {
    this.#pending.push(() => ([this.screenX, this.screenY] = [this.screenX + dx, this.screenY + dy]));
  }
  resizeBy(dw: number, dh: number): void {
    this.#pending.push(() => ([this.innerWidth, this.innerHeight] = [this.innerWidth + dw, this.innerHeight + dh]));
  }
  settle(): void {
    for (const change of this.#pending.splice(0)) change();
  }
  /** Brought forward and made active, by the page or by the user: every popup's focus goes in `log`. */
  focus(log: number[] = focusLog): void {
    for (const other of opened) other.active = false;
    this.active = true;
    log.push(opened.indexOf(this));
    for (const listener of this.#listeners.get("focus") ?? []) listener();
  }
  /** The user presses a mouse button on the popup's content. */
  press(): void {
    const event = { pointerId: 1, clientX: 10, clientY: 10, buttons: 1, preventDefault: () => {} };
    for (const listener of this.#canvasListeners.get("pointerdown") ?? []) listener(event);
  }
  /** The user types `key` into the popup. */
  type(key: string): void {
    for (const type of ["keydown", "keyup"]) {
      const event = { type, key, code: `Key${key.toUpperCase()}`, preventDefault: () => {} };
      for (const listener of this.#listeners.get(type) ?? []) (listener as (event: unknown) => void)(event);
    }
  }
  /** The popup stops being the host's active window. */
  blur(): void {
    this.active = false;
    for (const listener of this.#listeners.get("blur") ?? []) listener();
  }
  close(): void {
    this.closed = true;
  }
  addEventListener(type: string, listener: () => void): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }
}

/** Every popup opened in a test, in order, and each focus() a popup took (as indexes into `opened`). */
let opened: FakePopup[] = [];
let focusLog: number[] = [];
/** Whether the app's own page is the host's active window. */
let pageActive = false;
/** The keys that reached the guest (the page's keyboard), in order, as "down a", "up a". */
let keys: string[] = [];

const xterm = (place: Partial<GuestWindow> = {}): GuestWindow => xtermWindow({ id: 7, pid: 120, className: "XTerm", ...place });

describe("seamless host windows", () => {
  let actions: WindowActionRequest[];
  let popups: SeamlessPopups;
  /** Who holds the guest's keyboard. */
  let holders: Set<string>;

  /** One animation frame `ms` after the last: the popups' pending changes land first. */
  const frame = (windows: GuestWindow[], ms = 16): void => {
    vi.advanceTimersByTime(ms);
    for (const popup of opened) popup.settle();
    popups.frame(windows);
  };
  const frames = (windows: GuestWindow[], ms: number): void => {
    for (let t = 0; t < ms; t += 16) frame(windows);
  };

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["performance"] });
    opened = [];
    focusLog = [];
    actions = [];
    holders = new Set();
    pageActive = false;
    keys = [];
    vi.stubGlobal("window", {
      screen: { availLeft: 0, availTop: 0 },
      open: (_url: string, _name: string, features: string) => {
        const f = Object.fromEntries(features.split(",").map((kv) => kv.split("=")));
        // This host rounds a window's content height down by a pixel, as headless Chromium does.
        const popup = new FakePopup(Number(f.left), Number(f.top), Number(f.width), Number(f.height), -1);
        opened.push(popup);
        return popup;
      },
    });
    vi.stubGlobal("document", { hasFocus: () => pageActive, body: { dispatchEvent: (event: { type: string; key: string }) => keys.push(`${event.type.slice(3)} ${event.key}`) } });
    vi.stubGlobal(
      "KeyboardEvent",
      class {
        readonly type: string;
        readonly key: string;
        constructor(type: string, init: { key: string }) {
          this.type = type;
          this.key = init.key;
        }
      },
    );
    const guest: SeamlessGuest = {
      windowAction: async (_id, action) => void actions.push(action),
      pointGuest: () => {},
      wheelGuest: () => {},
      holdKeyboard: (holder, held) => void (held ? holders.add(holder) : holders.delete(holder)),
    };
    popups = new SeamlessPopups(guest, () => null, () => {});
  });
  afterEach(() => {
    popups.dispose();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it("opens a window at the guest window's place and size, and asks nothing of the guest", () => {
    frames([xterm()], 1000);
    expect(opened).toHaveLength(1);
    expect([opened[0]!.screenX, opened[0]!.screenY, opened[0]!.innerWidth]).toEqual([45, 58, 484]);
    expect(actions).toEqual([]);
  });

  it("a user's move right after the guest moved the window reaches the guest", async () => {
    frames([xterm()], 1000);
    // The guest moves its window (its window manager re-placed it): the host window follows...
    frames([xterm({ x: 40, y: 40 })], 48);
    expect([opened[0]!.screenX, opened[0]!.screenY]).toEqual([40, 40]);
    // ...and the user moves it at once, well within the time a host may take to settle a window.
    opened[0]!.moveBy(40, 30);
    frames([xterm({ x: 40, y: 40 })], 600);
    await Promise.resolve();
    expect(actions).toEqual([{ kind: "move", x: 80, y: 70 }]);
  });

  it("a user's resize goes to the guest once it holds still, and the window keeps it while the guest follows", async () => {
    frames([xterm()], 1000);
    opened[0]!.resizeBy(80, 60);
    frames([xterm()], 400);
    await Promise.resolve();
    expect(actions).toEqual([{ kind: "resize", width: 564, height: 376 }]);
    // The guest gives whole character cells: 562x375. The window takes the guest's size.
    frames([xterm({ width: 562, height: 375 })], 2500);
    expect([opened[0]!.innerWidth, opened[0]!.innerHeight]).toEqual([562, 375]);
    expect(actions).toHaveLength(1);
  });

  describe("stacking", () => {
    const two = (top: "a" | "b"): GuestWindow[] => {
      const a = xterm({ id: 1, title: "a", focused: top === "a" });
      const b = xterm({ id: 2, title: "b", x: 300, y: 200, focused: top === "b" });
      return top === "a" ? [b, a] : [a, b];
    };
    /** Two windows, b focused in the guest, and the user in b's host window. */
    const inB = (settle = 400): void => {
      frames(two("b"), 1000);
      opened[1]!.focus();
      frames(two("b"), settle);
    };

    it("the guest raising another window while one of its windows is active restacks the host windows, without raising anything in the guest again", async () => {
      inB(100);
      await Promise.resolve();
      actions = [];
      focusLog = [];
      // The guest raises a (its app's doing): the host windows follow, b first, a on top and active.
      frames(two("a"), 100);
      await Promise.resolve();
      expect(focusLog).toEqual([1, 0]);
      expect(opened[0]!.active).toBe(true);
      expect(actions).toEqual([]);
    });

    it("a focused window the guest keeps below another (a dialog above it) is restacked once, not every frame", () => {
      inB(100);
      focusLog = [];
      const focusedBelow = [{ ...two("b")[0]!, focused: true }, { ...two("b")[1]!, focused: false }];
      frames(focusedBelow, 1000);
      expect(focusLog).toEqual([1, 0]);
    });

    it("a click on a host window raises its guest window once; it is not undone while the guest has yet to raise it (no window flickers back), nor restacked once the guest has", async () => {
      inB();
      focusLog = [];
      actions = [];
      opened[0]!.focus(); // the user clicks a's window
      await Promise.resolve();
      // The guest's list still says b is focused and on top for a while (it has not heard yet).
      frames(two("b"), 300);
      expect(focusLog).toEqual([0]);
      expect(opened[0]!.active).toBe(true);
      frames(two("a"), 400);
      expect(focusLog).toEqual([0]);
      expect(actions).toEqual([{ kind: "raise" }]);
    });

    it("a click on the active host window raises its guest window when the guest lost its focus", async () => {
      inB();
      actions = [];
      // The guest's window manager restarted: nothing is focused in the guest.
      const none = two("b").map((w) => ({ ...w, focused: false }));
      frames(none, 400);
      opened[1]!.press();
      opened[1]!.press();
      await Promise.resolve();
      expect(actions).toEqual([{ kind: "raise" }]);
      // Once the guest has it focused, clicks are the guest's own business.
      frames(two("b"), 400);
      opened[1]!.press();
      await Promise.resolve();
      expect(actions).toHaveLength(1);
    });

    it("keys typed into a window the guest has yet to focus wait for it, in order, and then go straight through", async () => {
      inB();
      actions = [];
      opened[0]!.focus(); // the user clicks a's window and types at once
      opened[0]!.type("l");
      opened[0]!.type("s");
      await Promise.resolve();
      expect(actions).toEqual([{ kind: "raise" }]);
      frames(two("b"), 200); // the guest has not focused a yet: b would get them
      expect(keys).toEqual([]);
      frames(two("a"), 16);
      expect(keys).toEqual(["down l", "up l", "down s", "up s"]);
      opened[0]!.type("x");
      expect(keys.slice(4)).toEqual(["down x", "up x"]);
    });

    it("held keys go to the guest's focus once the wait is over, and nowhere if the window went", () => {
      inB();
      opened[0]!.focus();
      opened[0]!.type("a");
      frames(two("b"), 2100); // the guest never focuses a
      expect(keys).toEqual(["down a", "up a"]);
      opened[0]!.focus();
      opened[0]!.type("q");
      frames(two("b"), 16);
      frames([two("b")[1]!], 400); // a's window closes in the guest
      expect(keys).toEqual(["down a", "up a"]);
    });

    it("the guest focusing a window brings its host window forward only while the user is in this app", () => {
      frames(two("b"), 1000);
      for (const popup of opened) popup.active = false;
      focusLog = [];
      // Another host app is active: the guest's focus change moves nothing.
      frames(two("a"), 400);
      expect(focusLog).toEqual([]);
      // The app's page is active: the guest's newly focused window comes forward.
      pageActive = true;
      frames(two("b"), 400);
      expect(focusLog).toEqual([1]);
    });

    it("the keyboard is the guest's while one of its host windows is active, whatever order focus and blur come in", () => {
      frames(two("b"), 1000);
      opened[1]!.focus();
      expect([...holders]).toEqual(["window 2"]);
      // Focus moves to a's window, and b's blur comes after a's focus.
      opened[0]!.focus();
      opened[1]!.blur();
      expect([...holders]).toEqual(["window 1"]);
      // a's window closes with the guest's window: nothing holds the keyboard.
      frames([two("b")[0]!.id === 1 ? two("b")[1]! : two("b")[0]!], 400);
      expect([...holders]).toEqual([]);
    });

    it("restacks nothing while the user is in another host app", () => {
      frames(two("b"), 1000);
      for (const popup of opened) popup.active = false;
      focusLog = [];
      frames([two("a")[0]!, { ...two("a")[1]!, focused: false }], 400);
      expect(focusLog).toEqual([]);
    });
  });

  it("the guest's own moves are not sent back to it", () => {
    frames([xterm()], 1000);
    for (const [x, y] of [[40, 40], [45, 58], [40, 40], [45, 58]] as const) frames([xterm({ x, y })], 300);
    frames([xterm()], 1000);
    expect(actions).toEqual([]);
  });
});
