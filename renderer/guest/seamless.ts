// The one account of a seamless window, whatever shows it (a panel on the page, SeamlessView;
// a window of its own, seamless-popups.ts): which guest windows are shown, where a pointer on a
// window's copy lands on the guest's screen, and the copy itself (each frame, only what v86
// redrew over each window: core/screen/damage.ts, watched by screen-damage.ts).
import type { GuestWindow } from "../../core/ipc/contract.js";
import { panelCopies, type Rect } from "../../core/screen/damage.js";
import { watchScreenDamage } from "./screen-damage.js";
import { inElectronShell } from "../bridge/index.js";

/** The guest windows seamless mode shows: mapped, not minimized, with an area. Bottom of the stack first. */
export function shownWindows(windows: readonly GuestWindow[]): GuestWindow[] {
  return windows.filter((w) => !w.minimized && w.width > 0 && w.height > 0);
}

/** Where a pointer at (clientX, clientY) over `box` (a window's copy, however scaled) is on the guest's screen. */
export function guestPoint(w: GuestWindow, clientX: number, clientY: number, box: { left: number; top: number; width: number; height: number }): { x: number; y: number } {
  return {
    x: w.x + ((clientX - box.left) * w.width) / Math.max(1, box.width),
    y: w.y + ((clientY - box.top) * w.height) / Math.max(1, box.height),
  };
}

/** One window's copy: its guest window and the 2D context of the canvas it shows in (on this page or another). */
export interface CopyTarget {
  window: GuestWindow;
  context: CanvasRenderingContext2D;
}

/**
 * Copies the guest's screen (v86's canvas) into each shown window's canvas, one frame at a time:
 * all of a window that is new, moved, resized or has a new canvas, otherwise only the damage
 * over it, and nothing while the screen is still.
 */
export class ScreenCopier {
  #watched: HTMLCanvasElement | undefined;
  #watch: { dispose(): void } | undefined;
  #damage: Rect[] = [];
  /** Each window's area at its last copy, by window id. */
  readonly #drawn = new Map<number, Rect>();
  #contexts = new Map<number, CanvasRenderingContext2D>();
  #size = { width: 0, height: 0 };

  /** The guest's screen size at the last frame. */
  get size(): { width: number; height: number } {
    return this.#size;
  }

  /** Copies this frame's changes from `screen` (v86's canvas, if it has one yet) into `targets`. */
  frame(screen: HTMLCanvasElement | null, targets: readonly CopyTarget[]): void {
    if (!screen) return;
    if (screen !== this.#watched) {
      this.#watch?.dispose();
      this.#watched = screen;
      this.#watch = watchScreenDamage(screen, (rect) => this.#damage.push(rect));
      this.#drawn.clear();
    }
    if (screen.width !== this.#size.width || screen.height !== this.#size.height) {
      this.#size = { width: screen.width, height: screen.height };
      this.#drawn.clear();
    }
    const contexts = new Map(targets.map((t) => [t.window.id, t.context] as const));
    // A window shown in another canvas than last frame's copies all of itself again.
    for (const [id, context] of contexts) if (this.#contexts.get(id) !== context) this.#drawn.delete(id);
    this.#contexts = contexts;
    const areas = targets.map((t) => t.window);
    for (const { id, rect } of panelCopies(areas, this.#damage, this.#drawn)) {
      const w = areas.find((a) => a.id === id);
      const context = contexts.get(id);
      if (!w || !context) continue;
      context.clearRect(rect.x - w.x, rect.y - w.y, rect.width, rect.height);
      context.drawImage(screen, rect.x, rect.y, rect.width, rect.height, rect.x - w.x, rect.y - w.y, rect.width, rect.height);
      this.#drawn.set(id, { x: w.x, y: w.y, width: w.width, height: w.height });
    }
    this.#damage = [];
  }

  dispose(): void {
    this.#watch?.dispose();
    this.#watch = undefined;
    this.#watched = undefined;
  }
}

/**
 * A key pressed in another window of this page (a guest window's own window): v86 listens for
 * keys on the page's window, so the same key is sent there, as the page would have seen it, from
 * the page's body (v86 reads the target's element name, which a window has not).
 */
export function forwardKey(event: KeyboardEvent, to: Document): void {
  const init: KeyboardEventInit = {
    key: event.key,
    code: event.code,
    location: event.location,
    repeat: event.repeat,
    shiftKey: event.shiftKey,
    ctrlKey: event.ctrlKey,
    altKey: event.altKey,
    metaKey: event.metaKey,
    keyCode: event.keyCode,
    which: event.which,
    bubbles: true,
    cancelable: true,
  };
  to.body.dispatchEvent(new KeyboardEvent(event.type, init));
}

/**
 * Whether seamless mode shows each guest window as a host window of its own: in the Electron
 * shell (its preload's API is on the page), and in the web shell when its address asks
 * (?seamless=windows); otherwise as panels on the page.
 */
export function ownWindows(): boolean {
  return inElectronShell() || new URLSearchParams(window.location.search).get("seamless") === "windows";
}
