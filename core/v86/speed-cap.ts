// A speed cap in percent of one host core, for guests (DOS-era software) that run too fast.
// v86's loop runs the CPU in slices (do_tick: one main_loop slice, then next_tick(delay) to
// schedule the next). The cap counts the guest instructions of each slice and stretches the
// pause before the next one so the guest runs `percent` of the instructions it runs a busy ms
// at full speed: measured while it runs uncapped (FullSpeed), or by a short burst at full speed
// now and then while it is capped. It never stops the emulator: v86's stop()/run() would tell
// every listener the emulator stopped. Time comes from the runtime.

import type { Disposable } from "../disposable.js";
import type { EmulatorLike } from "../guest/session.js";

/** The part of v86's inner loop (emulator.v86) the cap wraps; its typings do not list it. */
interface V86Loop {
  do_tick(): void;
  next_tick(delay: number): void;
  /** v86's count of the guest instructions it has run, wrapping at 2^32 (a view of its memory). */
  cpu?: { instruction_counter?: { readonly [index: number]: number | undefined } };
}

/** How long the cap keeps account of the guest's work before it starts a new account. */
const BUDGET_WINDOW_MS = 1000;
/**
 * At most this many times the cap's share of the time busy: a quarter's cap needed 1.4 to 1.8
 * times (the host runs a guest it pauses that much slower per busy ms).
 */
const MAX_BUSY_SHARE = 2.5;
/**
 * A capped guest's full speed is measured in a burst of this much busy time run without a
 * pause (the pause after it repays it, so the guest keeps its share), from this far into it: a
 * host thread woken from a pause runs slow for tens of ms (measured here: a third of full speed
 * in its first 3 ms, 70 % at 10-30 ms, full from about 60 ms on; uncapped slices ran 104 K
 * instructions a ms, a quarter's cap's 1 ms slices 55-65 K).
 */
const BURST_MS = 100;
const BURST_MEASURED_FROM_MS = 60;
/**
 * A capped guest is measured again this often, for the work it does now may run at quite
 * another speed (a kernel booting runs four times the instructions a ms of a shell's loop), and
 * sooner when a burst could not measure (the guest idled in it).
 */
const BURST_EVERY_MS = 20_000;
const BURST_RETRY_MS = 2_000;
/** FullSpeed measures in spans of this much busy time of slices the guest ran to their end, */
const SPAN_MS = 500;
/** and keeps the fastest of the last few of them, */
const SPANS = 4;
/** as long as the last was measured this recently when the cap is set: older, it guesses. */
const SPAN_FRESH_MS = 60_000;

/**
 * How many guest instructions a busy ms runs at full speed, measured while the guest runs
 * uncapped: of the slices the guest was busy through (v86 asked for no wait after them: a slice
 * it idled in says nothing of its speed), the fastest of the last SPANS spans of SPAN_MS busy.
 * Measured only uncapped: a host thread that sleeps most of the time runs slower per busy ms
 * when it runs (cold caches, a host core shared with other programs), by a third or more at a
 * quarter's cap, so busy time alone is no measure of the work a capped guest does. A guest idle
 * since (a minute at its prompt after booting) may run quite other work next: no rate then.
 */
export class FullSpeed {
  #spans: number[] = [];
  #lastSpanAt = Number.NEGATIVE_INFINITY;
  #busy = 0;
  #instructions = 0;

  /** A slice run uncapped, ending at `at`: `busyMs` long, `instructions` run, `idled` if the guest halted in it. */
  add(at: number, busyMs: number, instructions: number, idled: boolean): void {
    if (idled || busyMs <= 0) return;
    this.#busy += busyMs;
    this.#instructions += instructions;
    if (this.#busy < SPAN_MS) return;
    this.#spans.push(this.#instructions / this.#busy);
    if (this.#spans.length > SPANS) this.#spans.shift();
    this.#lastSpanAt = at;
    this.#busy = 0;
    this.#instructions = 0;
  }

  /** Instructions per busy ms at full speed, at time `at`, if measured recently enough. */
  rate(at: number): number | undefined {
    return at - this.#lastSpanAt <= SPAN_FRESH_MS ? Math.max(...this.#spans) : undefined;
  }
}

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
  /** The guest's full speed in instructions per busy ms, measured while it ran uncapped (this last minute). */
  readonly fullRate: number | undefined;
  /** The full speed the cap paces by now: measured uncapped before it was set, or by its last burst. */
  readonly pacedRate: number | undefined;
}

/** A burst a capped guest runs at full speed to measure it: when it began, and its measured part so far. */
interface Burst {
  start: number;
  busy: number;
  instructions: number;
}

/**
 * Caps a V86 instance's speed to `percent` of what it does on one whole host core; `now` is a
 * monotonic clock in ms. Where v86 counts the guest's instructions, the guest runs `percent` of
 * the instructions it runs a busy ms at full speed, so a busy loop in it does proportionally
 * less work. Full speed is what it ran uncapped in the minute before the cap was set
 * (FullSpeed); a guest capped from its start, or capped longer than BURST_EVERY_MS, is measured
 * by a burst (BURST_MS at full speed, the pause after it repaying it). Until a burst has
 * measured it, or without a count, the guest is kept busy `percent` of the time, which gives it
 * less than its share. It is busy at most MAX_BUSY_SHARE times `percent` of the time.
 * At 100 it only measures. Disposing it gives the emulator its full speed back.
 */
export function capSpeed(emulator: object, percent: number, now: () => number): SpeedCap {
  const loop = (emulator as { v86?: Partial<V86Loop> }).v86;
  if (typeof loop?.do_tick !== "function" || typeof loop.next_tick !== "function") {
    throw new SpeedCapError("this emulator build has no loop a speed cap can pace");
  }
  const inner = loop as V86Loop;
  const doTick = inner.do_tick;
  const nextTick = inner.next_tick;
  const counter = typeof inner.cpu?.instruction_counter?.[0] === "number" ? inner.cpu.instruction_counter : undefined;
  const count = (): number => (counter ? counter[0]! >>> 0 : 0);
  const full = new FullSpeed();
  let cap = checkCpuPercent(percent);
  /** The full speed the cap paces by: taken when the guest was last capped from uncapped, or measured by a burst since. */
  let rate: number | undefined;
  /** When the next burst may begin (the guest capped and busy), and the burst running now. */
  let burstAt = 0;
  let burst: Burst | undefined;
  /** No slice starts before this time. */
  let resumeAt = 0;
  /**
   * The account begun at `windowStart`: the busy time and the instructions since. The next
   * slice waits until they are the cap's share of the window, so a wake-up the host makes late
   * is made up by a shorter next pause instead of lowering the guest's share.
   */
  let windowStart: number | undefined;
  let busy = 0;
  let instructions = 0;
  /** When the slice running now began (do_tick schedules the next one from inside it), and the count then. */
  let sliceStart: number | undefined;
  let sliceCount = 0;
  let disposed = false;
  /** The guest goes from uncapped to capped at `at`: paced by its full speed measured uncapped, or by a burst at once. */
  const capFrom = (at: number): void => {
    rate = full.rate(at);
    burstAt = rate === undefined ? at : at + BURST_EVERY_MS;
    burst = undefined;
  };
  if (cap < 100) capFrom(now());
  inner.do_tick = function (this: V86Loop) {
    sliceStart = now();
    sliceCount = count();
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
      const sliceBusy = at - sliceStart;
      const sliceInstructions = (count() - sliceCount + 2 ** 32) % 2 ** 32;
      if (cap >= 100) {
        if (counter) full.add(at, sliceBusy, sliceInstructions, delay > 0);
      } else {
        if (burst) {
          if (delay > 0) {
            // The guest idled: this burst says nothing of its speed.
            burst = undefined;
            burstAt = at + BURST_RETRY_MS;
          } else {
            if (sliceStart - burst.start >= BURST_MEASURED_FROM_MS) {
              burst.busy += sliceBusy;
              burst.instructions += sliceInstructions;
            }
            if (at - burst.start >= BURST_MS) {
              if (burst.busy > 0) rate = burst.instructions / burst.busy;
              burst = undefined;
              burstAt = at + BURST_EVERY_MS;
            }
          }
        } else if (counter && delay <= 0 && at >= burstAt) {
          burst = { start: at, busy: 0, instructions: 0 };
        }
        if (windowStart === undefined || at - windowStart > BUDGET_WINDOW_MS) {
          windowStart = sliceStart;
          busy = 0;
          instructions = 0;
        }
        busy += sliceBusy;
        instructions += sliceInstructions;
        // Paced by instructions, the guest is still busy at most MAX_BUSY_SHARE times its share
        // of the time: a full speed measured on faster work (a kernel booting runs four times
        // the instructions a ms of a shell's loop) would otherwise hardly slow it.
        resumeAt =
          rate === undefined
            ? windowStart + busy + pauseAfter(busy, cap)
            : Math.max(windowStart + (instructions * 100) / (rate * cap), windowStart + busy + pauseAfter(busy, Math.min(100, cap * MAX_BUSY_SHARE)));
      }
    }
    nextTick.call(this, cap >= 100 || burst ? delay : Math.max(delay, resumeAt - at));
  };
  return {
    get percent() {
      return cap;
    },
    get fullRate() {
      return full.rate(now());
    },
    get pacedRate() {
      return rate;
    },
    set(value: number) {
      const was = cap;
      cap = checkCpuPercent(value);
      if (was >= 100 && cap < 100) capFrom(now());
      windowStart = undefined;
      if (cap >= 100) {
        resumeAt = 0;
        burst = undefined;
      }
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
 * and changed live by the user. v86 makes its loop only once its WebAssembly is loaded, so the
 * cap is put on then, at 100 too: uncapped, it measures the guest's full speed for later.
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
    else if ((this.#emulator as { v86?: unknown }).v86 !== undefined) {
      try {
        this.#cap = capSpeed(this.#emulator, this.#percent, this.#now);
      } catch (error) {
        if (this.#percent < 100) throw error; // uncapped, nothing is lost without the measuring
      }
    }
  }

  dispose(): void {
    this.#emulator.remove_listener("emulator-loaded", this.#loaded);
    this.#cap?.dispose();
    this.#cap = undefined;
  }
}
