// A speed cap in percent of one host core, for guests (DOS-era software) that run too fast.
// v86's loop runs the CPU in slices (do_tick: one main_loop slice, then next_tick(delay) to
// schedule the next). The cap times each slice and stretches the pause before the next one so
// the emulator is busy at most `percent` of the time. It never stops the emulator: v86's
// stop()/run() would tell every listener the emulator stopped. Time comes from the runtime.

import type { Disposable } from "../disposable.js";
import type { EmulatorLike } from "../guest/session.js";

/** The part of v86's inner loop (emulator.v86) the cap wraps; its typings do not list it. */
interface V86Loop {
  do_tick(): void;
  next_tick(delay: number): void;
}

/** How long the cap keeps account of busy time before it starts a new account. */
const BUDGET_WINDOW_MS = 1000;

export class SpeedCapError extends Error {
  override name = "SpeedCapError";
}

/** Checks a cap in percent of one host core: a whole number from 1 to 100 (100: no cap). */
export function checkCpuPercent(value: number, what = "the speed cap"): number {
  if (!Number.isInteger(value) || value < 1 || value > 100) throw new SpeedCapError(`${what} must be a whole percent from 1 to 100, got ${String(value)}`);
  return value;
}

/** The pause after a slice that kept the emulator busy `busyMs`, so busy time is `percent` of all. */
export function pauseAfter(busyMs: number, percent: number): number {
  return percent >= 100 ? 0 : (busyMs * (100 - percent)) / percent;
}

export interface SpeedCap extends Disposable {
  readonly percent: number;
  /** Changes the cap while the guest runs (100: none). */
  set(percent: number): void;
}

/**
 * Caps a V86 instance's speed to `percent` of one host core; `now` is a monotonic clock in ms.
 * Disposing it gives the emulator its full speed back.
 */
export function capSpeed(emulator: object, percent: number, now: () => number): SpeedCap {
  const loop = (emulator as { v86?: Partial<V86Loop> }).v86;
  if (typeof loop?.do_tick !== "function" || typeof loop.next_tick !== "function") {
    throw new SpeedCapError("this emulator build has no loop a speed cap can pace");
  }
  const inner = loop as V86Loop;
  const doTick = inner.do_tick;
  const nextTick = inner.next_tick;
  let cap = checkCpuPercent(percent);
  /** No slice starts before this time. */
  let resumeAt = 0;
  /**
   * The busy time of the window begun at `windowStart`: the next slice waits until busy time is
   * the cap's share of the window, so a wake-up the host makes late is made up by a shorter
   * next pause instead of lowering the guest's share.
   */
  let windowStart: number | undefined;
  let busy = 0;
  /** When the slice running now began (do_tick schedules the next one from inside it). */
  let sliceStart: number | undefined;
  let disposed = false;
  inner.do_tick = function (this: V86Loop) {
    sliceStart = now();
    try {
      doTick.call(this);
    } finally {
      sliceStart = undefined;
    }
  };
  // Also what an interrupt arriving while the guest idles calls: it cannot cut the pause short.
  inner.next_tick = function (this: V86Loop, delay: number) {
    const at = now();
    if (sliceStart !== undefined) {
      if (windowStart === undefined || at - windowStart > BUDGET_WINDOW_MS) {
        windowStart = sliceStart;
        busy = 0;
      }
      busy += at - sliceStart;
      resumeAt = windowStart + busy + pauseAfter(busy, cap);
    }
    nextTick.call(this, Math.max(delay, resumeAt - at));
  };
  return {
    get percent() {
      return cap;
    },
    set(value: number) {
      cap = checkCpuPercent(value);
      windowStart = undefined;
      if (cap >= 100) resumeAt = 0;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      // The instance's own properties go; v86's prototype methods show through again.
      delete (inner as Partial<V86Loop>).do_tick;
      delete (inner as Partial<V86Loop>).next_tick;
    },
  };
}

/**
 * A guest's speed cap for its whole run, whichever runtime it is in: set at boot from the plan
 * and changed live by the user. v86 makes its loop only once its WebAssembly is loaded, so a
 * cap asked for before then is applied on "emulator-loaded".
 */
export class SpeedControl implements Disposable {
  #percent: number;
  #cap: SpeedCap | undefined;
  readonly #emulator: Pick<EmulatorLike, "add_listener" | "remove_listener">;
  readonly #now: () => number;
  readonly #loaded = (): void => this.#apply();

  constructor(emulator: Pick<EmulatorLike, "add_listener" | "remove_listener">, now: () => number, percent = 100) {
    this.#emulator = emulator;
    this.#now = now;
    this.#percent = checkCpuPercent(percent);
    emulator.add_listener("emulator-loaded", this.#loaded);
    this.#apply();
  }

  get percent(): number {
    return this.#percent;
  }

  set(percent: number): void {
    this.#percent = checkCpuPercent(percent);
    this.#apply();
  }

  #apply(): void {
    if (this.#cap) this.#cap.set(this.#percent);
    else if (this.#percent < 100 && (this.#emulator as { v86?: unknown }).v86 !== undefined) this.#cap = capSpeed(this.#emulator, this.#percent, this.#now);
  }

  dispose(): void {
    this.#emulator.remove_listener("emulator-loaded", this.#loaded);
    this.#cap?.dispose();
    this.#cap = undefined;
  }
}
