// A speed cap in percent of one host core, for guests (DOS-era software) that run too fast.
// v86's loop runs the CPU in slices (do_tick: one main_loop slice, then next_tick(delay) to
// schedule the next). The cap counts the guest instructions of each slice and stretches the
// pause before the next one so the guest runs `percent` of the instructions it runs a busy ms
// at full speed: measured while it runs uncapped (FullSpeed), or by short bursts at full speed
// now and then while it is capped (BurstRates). A host runs a thread it keeps pausing slower
// per busy ms than one it lets run, so busy time alone is not the measure. It never stops the
// emulator: v86's stop()/run() would tell every listener the emulator stopped. Time comes from
// the runtime.

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
 * host thread woken from a pause runs slow for tens of ms (measured here, in 25 ms steps of
 * 300 ms bursts beside a guest running uncapped: 40-70 % of full speed in the first 25 ms,
 * full from 50 to 75 ms on; uncapped slices ran 104 K instructions a ms, a quarter's cap's 1 ms
 * slices 55-65 K). Measured over 60-100 ms of 100 ms bursts, a guest started at a quarter did
 * 0.16 to 0.27 of the work of an uncapped guest beside it; over 60-300 ms of 300 ms bursts,
 * 0.25 to 0.33. A longer burst is a longer pause after it (three times it at a quarter).
 */
const BURST_MS = 160;
const BURST_MEASURED_FROM_MS = 75;
/**
 * A capped guest is measured again this often, and sooner (BURST_RETRY_MS) while it has fewer
 * samples than the cap goes by (below), when a burst could not measure (the guest idled in it)
 * or its sample was not taken. While its samples disagree (the fastest more than SETTLED times
 * the slowest), it is measured again after twice as long each time, from BURST_RETRY_MS: a
 * guest resumed with its compiled code gone speeds up for a minute or more as v86 compiles it
 * again (a capped guest's bursts measured 63 K, then 80 K, then 148 K instructions a ms over a
 * minute), and a host other programs share changes speed as they come and go.
 */
const BURST_EVERY_MS = 20_000;
const BURST_RETRY_MS = 2_000;
const SETTLED = 1.5;
/**
 * One burst's rate swings by half on a shared host (measured here: 78 K to 178 K instructions a
 * ms within a minute of one loop), so the cap paces by the median of the last BURST_SAMPLES,
 * bursting every BURST_RETRY_MS until it has them. A burst is a sample only if the paced
 * slices' rate over SAMPLE_BUSY_MS of busy time before it and as much after it agree within
 * SAMPLE_AGREE: the guest's work did not change around it.
 */
const BURST_SAMPLES = 3;
const SAMPLE_BUSY_MS = 100;
const SAMPLE_AGREE = 0.25;
/**
 * The paced slices' rate this many times off the one the samples were taken at, over
 * STALE_SPANS spans of SAMPLE_BUSY_MS in a row: the guest's work changed, and the cap measures
 * again. One span is not enough: a shell between two runs of a loop dips for a span or two
 * (measured here: spans of 25-47 K in a loop whose samples were taken at 75 K), and each dip
 * threw away three good samples for one burst's.
 */
const WORK_CHANGED = 2;
const STALE_SPANS = 3;
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
  /** The full speed the cap paces by now: the median of its last bursts (BURST_SAMPLES), else measured uncapped before it was set. */
  readonly pacedRate: number | undefined;
}

/** Busy time and the instructions run in it. */
interface Work {
  busy: number;
  instructions: number;
}

const rateOf = (work: Work): number => work.instructions / work.busy;

/** A burst a capped guest runs at full speed to measure it: when it began, its measured part so far, all of it so far, and the paced rate before it. */
interface Burst extends Work {
  start: number;
  all: Work;
  before: number | undefined;
}

/** A burst's sample waiting for the paced slices after it: the burst's rate, the paced rate before it, and the work after it so far. */
interface Pending extends Work {
  full: number;
  before: number | undefined;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The paced slices' rate over the last SAMPLE_BUSY_MS or more of their busy time: two spans,
 * the one filling and the one before it.
 */
class RecentRate {
  #filling: Work = { busy: 0, instructions: 0 };
  #before: Work = { busy: 0, instructions: 0 };

  /** Adds a paced slice; returns the rate of a span it completed. */
  add(busy: number, instructions: number): number | undefined {
    this.#filling.busy += busy;
    this.#filling.instructions += instructions;
    if (this.#filling.busy < SAMPLE_BUSY_MS) return undefined;
    this.#before = this.#filling;
    this.#filling = { busy: 0, instructions: 0 };
    return rateOf(this.#before);
  }

  rate(): number | undefined {
    const busy = this.#filling.busy + this.#before.busy;
    return busy >= SAMPLE_BUSY_MS ? (this.#filling.instructions + this.#before.instructions) / busy : undefined;
  }

  clear(): void {
    this.#filling = { busy: 0, instructions: 0 };
    this.#before = { busy: 0, instructions: 0 };
  }
}

/**
 * The rates of the last bursts (BURST_SAMPLES), each with the paced slices' rate it was taken
 * at: when the guest's work changes several times over (WORK_CHANGED) for STALE_SPANS spans
 * in a row, they go stale.
 */
class BurstRates {
  #samples: { full: number; paced: number }[] = [];
  /** The guest's work changed since the samples: the next sample replaces them. */
  #stale = false;
  /** Spans in a row the paced rate has been WORK_CHANGED off the samples'. */
  #changed = 0;
  /** Samples in a row taken while the samples disagreed. */
  #unsettled = 0;

  get count(): number {
    return this.#stale ? 0 : this.#samples.length;
  }

  /** How long after a sample the next burst comes: soon while there are too few samples or they disagree. */
  next(): number {
    if (this.count < BURST_SAMPLES) return BURST_RETRY_MS;
    return this.#unsettled === 0 ? BURST_EVERY_MS : Math.min(BURST_EVERY_MS, BURST_RETRY_MS * 2 ** (this.#unsettled - 1));
  }

  /** The median of the samples, or none. */
  value(): number | undefined {
    return this.#samples.length === 0 ? undefined : median(this.#samples.map((s) => s.full));
  }

  /** Takes a burst's rate if the paced rates before and after it agree; says whether it did. */
  sample(full: number, before: number | undefined, after: number): boolean {
    if (before !== undefined && Math.abs(after - before) > SAMPLE_AGREE * Math.max(after, before)) return false;
    if (this.#stale) this.#samples = [];
    this.#stale = false;
    this.#changed = 0;
    this.#samples.push({ full, paced: before ?? after });
    if (this.#samples.length > BURST_SAMPLES) this.#samples.shift();
    const rates = this.#samples.map((s) => s.full);
    this.#unsettled = this.#samples.length < BURST_SAMPLES || Math.max(...rates) <= SETTLED * Math.min(...rates) ? 0 : this.#unsettled + 1;
    return true;
  }

  /** A span of paced slices ran at `rate`: the samples go stale when the guest's work changed (returns true then). */
  paced(rate: number): boolean {
    if (this.#stale || this.#samples.length === 0) return false;
    const at = median(this.#samples.map((s) => s.paced));
    this.#changed = rate <= at * WORK_CHANGED && rate * WORK_CHANGED >= at ? 0 : this.#changed + 1;
    if (this.#changed < STALE_SPANS) return false;
    this.#stale = true;
    return true;
  }

  clear(): void {
    this.#samples = [];
    this.#stale = false;
    this.#changed = 0;
    this.#unsettled = 0;
  }
}

/**
 * Caps a V86 instance's speed to `percent` of what it does on one whole host core; `now` is a
 * monotonic clock in ms. Where v86 counts the guest's instructions, the guest runs `percent` of
 * the instructions it runs a busy ms at full speed, so a busy loop in it does proportionally
 * less work. Full speed is the median of its last bursts (BurstRates: BURST_MS at full speed,
 * the pause after one repaying it), or until they are taken, what it ran uncapped in the
 * minute before the cap was set (FullSpeed). Without either, or without a count, the guest is
 * kept busy `percent` of the time, which gives it less than its share. It is busy at most
 * MAX_BUSY_SHARE times `percent` of the time. At 100 it only measures. Disposing it gives the
 * emulator its full speed back.
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
  const bursts = new BurstRates();
  const recent = new RecentRate();
  let cap = checkCpuPercent(percent);
  /** The full speed measured uncapped when the guest was last capped. */
  let uncapped: number | undefined;
  /** The full speed the cap paces by now. */
  const rate = (): number | undefined => bursts.value() ?? uncapped;
  /** When the next burst may begin (the guest capped and busy), the burst running now, and one waiting for its sample. */
  let burstAt = 0;
  let burst: Burst | undefined;
  let pending: Pending | undefined;
  /** No slice starts before this time. */
  let resumeAt = 0;
  /**
   * The account begun at `windowStart`: the busy time since, and the work done in it, in ms at
   * full speed. The next slice waits until the work is the cap's share of the window, so a
   * wake-up the host makes late is made up by a shorter next pause instead of lowering the
   * guest's share.
   */
  let windowStart: number | undefined;
  let busy = 0;
  let work = 0;
  /** When the slice running now began (do_tick schedules the next one from inside it), and the count then. */
  let sliceStart: number | undefined;
  let sliceCount = 0;
  let disposed = false;
  /**
   * The guest goes from uncapped to capped at `at`: paced by its full speed measured uncapped
   * if it was measured this last minute, and by bursts from BURST_EVERY_MS on; else it bursts
   * at once.
   */
  const capFrom = (at: number): void => {
    uncapped = full.rate(at);
    bursts.clear();
    recent.clear();
    burstAt = uncapped === undefined ? at : at + BURST_EVERY_MS;
    burst = undefined;
    pending = undefined;
  };
  /** Work in ms at full speed: by the full speed known, else its busy time (less than its share). */
  const workOf = (work: Work): number => {
    const speed = rate();
    return speed !== undefined ? work.instructions / speed : work.busy;
  };
  /** A paced slice the guest ran through: counted toward the samples. */
  const paced = (at: number, sliceBusy: number, sliceInstructions: number): void => {
    if (pending) {
      pending.busy += sliceBusy;
      pending.instructions += sliceInstructions;
      if (pending.busy < SAMPLE_BUSY_MS) return;
      const taken = bursts.sample(pending.full, pending.before, rateOf(pending));
      burstAt = at + (taken ? bursts.next() : BURST_RETRY_MS);
      pending = undefined;
      return;
    }
    const span = recent.add(sliceBusy, sliceInstructions);
    // Measured at once, on the new work alone: the spans that made the samples stale are the
    // paced rate before the burst.
    if (span !== undefined && bursts.paced(span)) burstAt = Math.min(burstAt, at);
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
      const idled = delay > 0;
      if (cap >= 100) {
        if (counter) full.add(at, sliceBusy, sliceInstructions, idled);
      } else {
        if (windowStart === undefined || at - windowStart > BUDGET_WINDOW_MS) {
          windowStart = sliceStart;
          busy = 0;
          work = 0;
        }
        busy += sliceBusy;
        if (burst) {
          burst.all.busy += sliceBusy;
          burst.all.instructions += sliceInstructions;
          if (idled) {
            // The guest idled: this burst says nothing of its speed.
            work += workOf(burst.all);
            burst = undefined;
            burstAt = at + BURST_RETRY_MS;
          } else {
            if (sliceStart - burst.start >= BURST_MEASURED_FROM_MS) {
              burst.busy += sliceBusy;
              burst.instructions += sliceInstructions;
            }
            if (at - burst.start >= BURST_MS) {
              if (burst.busy > 0) {
                pending = { full: rateOf(burst), before: burst.before, busy: 0, instructions: 0 };
                recent.clear();
                burstAt = Number.POSITIVE_INFINITY; // until the sample is taken
              } else burstAt = at + BURST_RETRY_MS;
              // The burst's work, repaid by the pause after it.
              work += workOf(burst.all);
              burst = undefined;
            }
          }
        } else {
          work += workOf({ busy: sliceBusy, instructions: sliceInstructions });
          if (counter && !idled) {
            if (at >= burstAt) burst = { start: at, busy: 0, instructions: 0, all: { busy: 0, instructions: 0 }, before: recent.rate() };
            else if (sliceBusy > 0) paced(at, sliceBusy, sliceInstructions);
          }
        }
        // Busy from its share of the time (a paused busy ms never runs more than a full-speed
        // one) to MAX_BUSY_SHARE times it, whatever the work: a full speed measured on faster
        // work (a kernel booting runs four times the instructions a ms of a shell's loop) would
        // otherwise hardly slow it, and one measured on slower work would all but stop it.
        const byWork = windowStart + (work * 100) / cap;
        resumeAt = Math.min(Math.max(byWork, windowStart + busy + pauseAfter(busy, Math.min(100, cap * MAX_BUSY_SHARE))), windowStart + busy + pauseAfter(busy, cap));
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
      return rate();
    },
    set(value: number) {
      const was = cap;
      cap = checkCpuPercent(value);
      if (was >= 100 && cap < 100) capFrom(now());
      windowStart = undefined;
      if (cap >= 100) {
        resumeAt = 0;
        burst = undefined;
        pending = undefined;
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
