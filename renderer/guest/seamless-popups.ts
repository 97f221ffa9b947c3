// Seamless mode with a host window per guest window: each shown guest window (seamless.ts) gets
// a popup of this page (SEAMLESS_WINDOW_PAGE; Electron makes it a BrowserWindow under
// main/electron/contents-policy.ts) at the guest window's place and size, titled as it is,
// showing its live copy; the popup's pointer and keys go to the guest. Both ways: the user
// moving, resizing, focusing or closing a popup moves, resizes, raises or closes the guest's
// window, and the guest's changes move, resize, retitle, focus or close the popup.
// Place: the guest's screen sits at the top-left of the host screen's available area, and a
// popup's window (its host frame's corner) where the guest window's content is.
import { SEAMLESS_WINDOW_PAGE, seamlessWindowName, type GuestWindow, type WindowActionRequest } from "../../core/ipc/contract.js";
import { forwardKey, guestPoint, ScreenCopier, shownWindows, type CopyTarget } from "./seamless.js";

/** What of the guest's run the popups drive (GuestRun is one). */
export interface SeamlessGuest {
  windowAction(window: number, action: WindowActionRequest): Promise<void>;
  pointGuest(x: number, y: number, buttons: number, screen: { width: number; height: number }): void;
  wheelGuest(event: Pick<WheelEvent, "deltaY" | "deltaMode">): void;
  holdKeyboard(holder: string, held: boolean): void;
}

interface Geometry {
  x: number;
  y: number;
  width: number;
  height: number;
}

interface Popup {
  id: number;
  view: Window;
  /** The popup page's canvas, once it has loaded. */
  canvas: HTMLCanvasElement | undefined;
  /** The guest geometry the popup was last placed at. */
  placed: Geometry;
  /** What the user made of the popup, asked of the guest, until the guest shows it or the wait ends. */
  asked: (Geometry & { until: number }) | undefined;
  /** A change the user is making: sent once it holds still for HOLD_MS. */
  noticed: (Geometry & { since: number }) | undefined;
  /** Until then the popup's place and size follow our own moveTo/resizeTo, not the user. */
  settling: number;
  /**
   * The popup's place and size as the host settled it after our last placing (a host may shift
   * or round it, or keep it on screen): what the user's moves and resizes are seen against.
   */
  settled: Geometry | undefined;
  /** Closed by the page (the guest's window went): nothing to tell the guest. */
  ours: boolean;
  /** Since when the guest's list has not shown the window. */
  missing: number | undefined;
  detach(): void;
}

/**
 * How long a window stays out of the guest's list before its popup closes: a list read while
 * the guest's window manager reparents or maps a window may miss one for a moment, and a host
 * window closed and opened again is another window to the host (its place, its focus).
 */
const GONE_MS = 200;
/** How long a user's move or resize of a popup must hold before the guest is asked to follow. */
const HOLD_MS = 250;
/** How long after moveTo/resizeTo the popup's place is the host's doing, not the user's. */
const SETTLE_MS = 600;
/** How long a popup shows what the user asked before following the guest's list again. */
const ASK_WAIT_MS = 2000;
/** How long after the page focused a popup (restacking) its gaining focus is taken as ours, not the user's. */
const RESTACK_MS = 300;
/**
 * How long a user's raise of a window waits for the guest to focus it: meanwhile the guest's own
 * focus moves no host window, and keys typed into it are held for it.
 */
const RAISE_WAIT_MS = 2000;
/** Key events held at most while a window is being raised (a quick typist's two seconds). */
const HELD_KEYS = 256;
/** How long a guest window whose popup the user closed stays without a popup (it may refuse to close). */
const CLOSE_WAIT_MS = 3000;

const same = (a: Geometry, b: Geometry): boolean => a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
/** Within a pixel each way: the same place and size as a host may round them. */
const near = (a: Geometry, b: Geometry): boolean => Math.abs(a.x - b.x) <= 1 && Math.abs(a.y - b.y) <= 1 && Math.abs(a.width - b.width) <= 1 && Math.abs(a.height - b.height) <= 1;
const geometry = (w: GuestWindow): Geometry => ({ x: w.x, y: w.y, width: w.width, height: w.height });

export class SeamlessPopups {
  readonly #guest: SeamlessGuest;
  readonly #source: () => HTMLCanvasElement | null;
  readonly #problem: (message: string) => void;
  readonly #popups = new Map<number, Popup>();
  /** Guest windows whose popup the user closed: when. */
  readonly #closed = new Map<number, number>();
  /** Guest windows whose popup the browser refused to open: tried again by retry(). */
  readonly #blocked = new Set<number>();
  readonly #copier = new ScreenCopier();
  #windows: GuestWindow[] = [];
  #focused: number | undefined;
  /** The popups' order on the host as far as the page knows it (ids, bottom first): each comes forward as it is opened or focused. */
  #hostOrder: number[] = [];
  /** Popups the page itself focused (restacking): their next focus, until the time given, is ours, not the user's. */
  readonly #ourFocus = new Map<number, number>();
  /**
   * A window the user brought forward and the guest was asked to raise, until the guest focuses
   * it or RAISE_WAIT_MS pass: meanwhile the guest's older focus moves no host window.
   */
  #raising: { id: number; until: number } | undefined;
  /** Keys typed into the window being raised, for it once the guest has focused it (or the wait ends). */
  #heldKeys: KeyboardEvent[] = [];

  constructor(guest: SeamlessGuest, source: () => HTMLCanvasElement | null, problem: (message: string) => void) {
    this.#guest = guest;
    this.#source = source;
    this.#problem = problem;
  }

  /** How many shown windows have no popup because the browser refused to open one. */
  get blocked(): number {
    return this.#blocked.size;
  }

  /** Opens the popups the browser refused before: call it from a click, which lets a page open popups. */
  retry(): void {
    this.#blocked.clear();
    this.frame(this.#windows);
  }

  /** Brings one guest window's popup forward. */
  show(id: number): void {
    this.#popups.get(id)?.view.focus();
  }

  /**
   * The user brought window `id` forward: the guest raises it, once while it has not. A focus
   * asks unless it is focused and on top; a click or a key (`unfocused`) only unless it is
   * focused (the guest's window manager takes the click itself).
   */
  #raise(id: number, now: number, unfocused = false): void {
    this.#forward(id);
    const w = this.#windows.find((shown) => shown.id === id);
    if (!w || (w.focused && (unfocused || this.#windows.at(-1)?.id === id))) return;
    if (this.#raising?.id === id && now < this.#raising.until) return;
    if (this.#raising && this.#raising.id !== id) this.#releaseKeys(true);
    this.#raising = { id, until: now + RAISE_WAIT_MS };
    this.#act(id, { kind: "raise" });
  }

  /** The keys held for the window being raised go to the guest now (`deliver`), or nowhere. */
  #releaseKeys(deliver: boolean): void {
    const held = this.#heldKeys.splice(0);
    if (deliver) for (const event of held) forwardKey(event, document);
  }

  /** One frame: popups follow the guest's list (bottom of the stack first), the user's changes go to the guest, the copies are drawn. */
  frame(windows: readonly GuestWindow[]): void {
    const now = performance.now();
    const shown = shownWindows(windows);
    this.#windows = shown;
    const ids = new Set(shown.map((w) => w.id));
    for (const [id, at] of this.#closed) if (!ids.has(id) || now - at > CLOSE_WAIT_MS) this.#closed.delete(id);
    for (const id of this.#blocked) if (!ids.has(id)) this.#blocked.delete(id);
    for (const popup of [...this.#popups.values()]) {
      popup.missing = ids.has(popup.id) ? undefined : (popup.missing ?? now);
      if (popup.missing !== undefined && now - popup.missing >= GONE_MS) this.#close(popup);
      else if (popup.view.closed) this.#userClosed(popup, now);
    }
    for (const w of shown) {
      const popup = this.#popups.get(w.id) ?? this.#open(w, now);
      if (!popup) continue;
      this.#attach(popup, w);
      this.#follow(popup, w, now);
      this.#notice(popup, w, now);
    }
    this.#focus(shown, now);
    const targets: CopyTarget[] = [];
    for (const w of shown) {
      const context = this.#popups.get(w.id)?.canvas?.getContext("2d");
      if (context) targets.push({ window: w, context });
    }
    this.#copier.frame(this.#source(), targets);
  }

  /** Closes every popup (seamless mode ends, or the page goes). */
  dispose(): void {
    this.#releaseKeys(false);
    for (const popup of [...this.#popups.values()]) this.#close(popup);
    this.#copier.dispose();
  }

  #open(w: GuestWindow, now: number): Popup | undefined {
    if (this.#closed.has(w.id) || this.#blocked.has(w.id)) return undefined;
    const origin = screenOrigin();
    const features = `popup,left=${origin.x + w.x},top=${origin.y + w.y},width=${w.width},height=${w.height}`;
    const view = window.open(SEAMLESS_WINDOW_PAGE, seamlessWindowName(w.id), features);
    if (!view) {
      this.#blocked.add(w.id);
      return undefined;
    }
    const popup: Popup = { id: w.id, view, canvas: undefined, placed: geometry(w), asked: undefined, noticed: undefined, settling: now + SETTLE_MS, settled: undefined, ours: false, missing: undefined, detach: () => {} };
    this.#popups.set(w.id, popup);
    this.#forward(w.id);
    return popup;
  }

  #close(popup: Popup): void {
    popup.ours = true;
    popup.detach();
    this.#ourFocus.delete(popup.id);
    this.#popups.delete(popup.id);
    this.#hostOrder = this.#hostOrder.filter((id) => id !== popup.id);
    if (!popup.view.closed) popup.view.close();
  }

  /** The user closed a popup: the guest closes its window. */
  #userClosed(popup: Popup, now: number): void {
    popup.detach();
    this.#ourFocus.delete(popup.id);
    this.#popups.delete(popup.id);
    this.#hostOrder = this.#hostOrder.filter((id) => id !== popup.id);
    if (popup.ours) return;
    this.#closed.set(popup.id, now);
    this.#act(popup.id, { kind: "close" });
  }

  /** Once the popup's page has loaded: its canvas takes the pointer, its window the keys and focus. */
  #attach(popup: Popup, w: GuestWindow): void {
    let doc: Document;
    try {
      doc = popup.view.document;
    } catch {
      return;
    }
    if (doc.readyState !== "complete" || !doc.URL.includes(SEAMLESS_WINDOW_PAGE)) return;
    const canvas = doc.querySelector("canvas");
    if (!canvas || canvas === popup.canvas) return;
    popup.detach();
    popup.canvas = canvas;
    canvas.width = w.width;
    canvas.height = w.height;
    doc.title = w.title || "Guest window";
    const view = popup.view;
    const current = (): GuestWindow | undefined => this.#windows.find((shown) => shown.id === popup.id);
    const point = (event: MouseEvent): void => {
      const now = current();
      const screen = this.#source();
      if (!now || !screen) return;
      const { x, y } = guestPoint(now, event.clientX, event.clientY, { left: 0, top: 0, width: now.width, height: now.height });
      this.#guest.pointGuest(x, y, event.buttons, screen);
    };
    const holder = `window ${popup.id}`;
    // A click or a key in a popup whose guest window lost the guest's focus (its window
    // manager restarted, another app took it) raises it again: the popup may already be the
    // host's active window, so no focus event comes.
    const press = (event: PointerEvent): void => {
      canvas.setPointerCapture(event.pointerId);
      event.preventDefault();
      this.#guest.holdKeyboard(holder, true);
      this.#raise(popup.id, performance.now(), true);
      point(event);
    };
    const wheel = (event: WheelEvent): void => {
      event.preventDefault();
      point(event);
      this.#guest.wheelGuest(event);
    };
    // Keys typed into a window the guest has yet to focus would reach another of its windows:
    // they wait for the raise (RAISE_WAIT_MS at most), in order.
    const key = (event: KeyboardEvent): void => {
      event.preventDefault();
      if (event.type === "keydown") this.#raise(popup.id, performance.now(), true);
      if (this.#raising?.id === popup.id) {
        if (this.#heldKeys.length < HELD_KEYS) this.#heldKeys.push(event);
        return;
      }
      forwardKey(event, document);
    };
    const focus = (): void => {
      this.#guest.holdKeyboard(holder, true);
      const now = performance.now();
      const ours = this.#ourFocus.get(popup.id);
      this.#ourFocus.delete(popup.id);
      if (ours !== undefined && now < ours) return;
      this.#raise(popup.id, now);
    };
    const blur = (): void => this.#guest.holdKeyboard(holder, false);
    const noMenu = (event: Event): void => event.preventDefault();
    // Every listener goes with the popup's detach.
    const listening = new AbortController();
    const { signal } = listening;
    canvas.addEventListener("pointerdown", press, { signal });
    canvas.addEventListener("pointermove", point, { signal });
    canvas.addEventListener("pointerup", point, { signal });
    canvas.addEventListener("contextmenu", noMenu, { signal });
    canvas.addEventListener("wheel", wheel, { signal, passive: false });
    view.addEventListener("keydown", key, { signal });
    view.addEventListener("keyup", key, { signal });
    view.addEventListener("focus", focus, { signal });
    view.addEventListener("blur", blur, { signal });
    popup.detach = () => {
      listening.abort();
      this.#guest.holdKeyboard(holder, false);
    };
    if (doc.hasFocus()) focus();
  }

  /** The popup follows the guest's window: place, size and title (unless it shows what the user asked, for a while). */
  #follow(popup: Popup, w: GuestWindow, now: number): void {
    const want = geometry(w);
    if (popup.asked) {
      if (!same(popup.asked, want) && now < popup.asked.until) return;
      popup.asked = undefined;
    }
    if (!same(popup.placed, want)) {
      const view = popup.view;
      const origin = screenOrigin();
      if (want.x !== popup.placed.x || want.y !== popup.placed.y) view.moveTo(origin.x + want.x, origin.y + want.y);
      // By the content's difference: the host's frame around it is not counted.
      if (want.width !== popup.placed.width || want.height !== popup.placed.height) view.resizeBy(want.width - view.innerWidth, want.height - view.innerHeight);
      popup.placed = want;
      popup.noticed = undefined;
      popup.settling = now + SETTLE_MS;
      popup.settled = undefined;
    }
    if (popup.canvas && (popup.canvas.width !== w.width || popup.canvas.height !== w.height)) {
      popup.canvas.width = w.width;
      popup.canvas.height = w.height;
    }
    const title = w.title || "Guest window";
    if (popup.canvas && popup.view.document.title !== title) popup.view.document.title = title;
  }

  /** A popup the user moved or resized (it holds still a moment): the guest's window follows. */
  #notice(popup: Popup, w: GuestWindow, now: number): void {
    if (!popup.canvas) return;
    const seen = popupGeometry(popup.view);
    if (!seen) return;
    if (now < popup.settling) {
      // Our own placing has settled once the popup shows it (to a pixel: a host may round);
      // one the host shifted is taken as it stands once SETTLE_MS is over. Until then a change
      // is the host's, not the user's.
      if (!near(seen, popup.placed)) return;
      popup.settling = now;
      popup.settled = seen;
    }
    popup.settled ??= seen;
    const settled = popup.settled;
    if (same(seen, settled)) {
      popup.noticed = undefined;
      return;
    }
    if (!popup.noticed || !same(popup.noticed, seen)) {
      popup.noticed = { ...seen, since: now };
      return;
    }
    if (now - popup.noticed.since < HOLD_MS) return;
    popup.noticed = undefined;
    // The guest's window moves and resizes by as much as the user moved and resized its popup.
    const asked = {
      x: popup.placed.x + seen.x - settled.x,
      y: popup.placed.y + seen.y - settled.y,
      width: Math.max(1, popup.placed.width + seen.width - settled.width),
      height: Math.max(1, popup.placed.height + seen.height - settled.height),
    };
    if (seen.x !== settled.x || seen.y !== settled.y) this.#act(w.id, { kind: "move", x: asked.x, y: asked.y });
    if (seen.width !== settled.width || seen.height !== settled.height) this.#act(w.id, { kind: "resize", width: asked.width, height: asked.height });
    popup.placed = asked;
    popup.settled = seen;
    popup.asked = { ...asked, until: now + ASK_WAIT_MS };
  }

  /**
   * The guest's focus and stacking, on the host: the guest focusing another window brings its
   * popup forward; while one of the guest's popups is the host's active window, the popups are
   * stacked as the guest stacks its windows (each brought forward, bottom first, the focused one
   * last), without that raising anything in the guest again. Only on a change, and only while
   * the user is in this app (its page or one of its popups): the user's other host windows are
   * never pushed back by a guest that is not in use. While a window the user brought forward
   * waits for the guest to raise it, the guest's older order moves nothing.
   */
  #focus(shown: readonly GuestWindow[], now: number): void {
    const focused = shown.find((w) => w.focused)?.id;
    if (this.#raising && (focused === this.#raising.id || now >= this.#raising.until || !this.#popups.has(this.#raising.id))) {
      // The keys go to the window they were typed into, once the guest has focused it; to the
      // guest's focus when the wait ended; nowhere when the window went.
      this.#releaseKeys(this.#popups.has(this.#raising.id));
      this.#raising = undefined;
    }
    for (const [id, until] of this.#ourFocus) if (now >= until) this.#ourFocus.delete(id);
    if (this.#raising) return;
    const refocus = focused !== this.#focused;
    this.#focused = focused;
    const popup = focused === undefined ? undefined : this.#popups.get(focused);
    // The guest's order of the windows that have popups, against the host's as last known.
    // The focused window is brought forward last, so it ends on top and active whatever the
    // guest stacks above it: that is the order wanted on the host.
    const withPopups = shown.filter((w) => this.#popups.get(w.id)?.canvas).map((w) => w.id);
    const wanted = withPopups.filter((id) => id !== focused).concat(withPopups.filter((id) => id === focused));
    const host = this.#hostOrder.filter((id) => wanted.includes(id));
    const active = wanted.some((id) => this.#popups.get(id)!.view.document.hasFocus());
    if (active && wanted.length > 1 && wanted.join() !== host.join()) {
      for (const id of wanted) this.#focusOurs(id, now);
      this.#hostOrder = wanted;
      return;
    }
    if (refocus && popup?.canvas && !popup.view.document.hasFocus() && (active || document.hasFocus())) this.#focusOurs(popup.id, now);
  }

  /** The page brings a popup forward: its focus event is not the user's. */
  #focusOurs(id: number, now: number): void {
    this.#ourFocus.set(id, now + RESTACK_MS);
    this.#popups.get(id)!.view.focus();
    this.#forward(id);
  }

  /** A popup came forward on the host (the user's doing, or ours): the top of the host's order. */
  #forward(id: number): void {
    this.#hostOrder = this.#hostOrder.filter((other) => other !== id).concat(id);
  }

  #act(id: number, action: WindowActionRequest): void {
    const title = this.#windows.find((w) => w.id === id)?.title;
    this.#guest.windowAction(id, action).then(
      () => this.#problem(""),
      (error: unknown) => this.#problem(`${title || "the window"}: ${error instanceof Error ? error.message : String(error)}`),
    );
  }
}

/** Where the guest's screen's top-left sits on the host's screen: the top-left of the available area of the page's screen. */
function screenOrigin(): { x: number; y: number } {
  const available = window.screen as Screen & { availLeft?: number; availTop?: number };
  return { x: available.availLeft ?? 0, y: available.availTop ?? 0 };
}

/**
 * The popup as a place and size on the guest's screen: its place is the window's (the host's
 * frame stands where the guest's window manager's frame stood), its size its content's.
 */
function popupGeometry(view: Window): Geometry | undefined {
  if (view.closed || view.innerWidth <= 0 || view.innerHeight <= 0) return undefined;
  const origin = screenOrigin();
  return { x: view.screenX - origin.x, y: view.screenY - origin.y, width: view.innerWidth, height: view.innerHeight };
}
