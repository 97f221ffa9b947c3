// The speed cap paces v86's loop: after a slice, the next one waits long enough that the guest
// runs the cap's share of the instructions it runs a busy ms at full speed (the median of its
// last bursts while capped, or measured uncapped; before that is known, busy time is the cap's
// share of all time).
// Driven here with a fake loop shaped like v86's (do_tick runs a slice and schedules the next
// with next_tick).

import { describe, expect, it } from "vitest";
import { capSpeed, checkCpuPercent, FullSpeed, pauseAfter, SpeedControl } from "../../../core/v86/speed-cap.js";

/** A v86-shaped loop whose every slice is busy `sliceMs` on a manual clock and then asks for `delay`. */
function fakeEmulator(sliceMs: number, delay = 0) {
  let clock = 0;
  const scheduled: number[] = [];
  const loop = {
    do_tick(this: { next_tick(delay: number): void }) {
      clock += sliceMs;
      this.next_tick(delay);
    },
    next_tick(wait: number) {
      scheduled.push(wait);
    },
  };
  // The methods live on the prototype, as v86's do.
  const inner = Object.create(loop) as typeof loop;
  return { emulator: { v86: inner }, inner, scheduled, now: () => clock, advance: (ms: number) => (clock += ms) };
}

/** Runs the loop for `wallMs` of the clock, as v86's scheduler would; returns the busy share. */
function busyShare(fake: ReturnType<typeof fakeEmulator>, wallMs: number, sliceMs: number): number {
  let busy = 0;
  const start = fake.now();
  while (fake.now() - start < wallMs) {
    fake.inner.do_tick();
    busy += sliceMs;
    fake.advance(fake.scheduled.at(-1)!);
  }
  return busy / (fake.now() - start);
}

describe("speed cap", () => {
  it("keeps the emulator busy only the capped share of the time", () => {
    for (const percent of [10, 25, 50, 90]) {
      const fake = fakeEmulator(4);
      capSpeed(fake.emulator, percent, fake.now);
      expect(busyShare(fake, 10_000, 4)).toBeCloseTo(percent / 100, 2);
    }
  });

  it("holds its share when the host wakes it late (a loaded host's timers fire after their time)", () => {
    for (const percent of [10, 25, 40]) {
      const fake = fakeEmulator(4);
      capSpeed(fake.emulator, percent, fake.now);
      let busy = 0;
      const start = fake.now();
      while (fake.now() - start < 10_000) {
        fake.inner.do_tick();
        busy += 4;
        fake.advance(fake.scheduled.at(-1)! + 5); // every wake-up 5 ms late
      }
      expect(busy / (fake.now() - start)).toBeCloseTo(percent / 100, 2);
    }
  });

  it("is full speed uncapped, at 100 %, and again once disposed", () => {
    const fake = fakeEmulator(4);
    expect(busyShare(fake, 1000, 4)).toBe(1);
    const cap = capSpeed(fake.emulator, 25, fake.now);
    expect(busyShare(fake, 1000, 4)).toBeCloseTo(0.25, 2);
    cap.set(100);
    expect(busyShare(fake, 1000, 4)).toBe(1);
    cap.set(50);
    expect(busyShare(fake, 1000, 4)).toBeCloseTo(0.5, 2);
    cap.dispose();
    expect(Object.keys(fake.inner)).toEqual([]);
    expect(busyShare(fake, 1000, 4)).toBe(1);
  });

  it("keeps v86's own longer waits, and an interrupt while waiting does not cut the pause short", () => {
    const fake = fakeEmulator(4, 50);
    capSpeed(fake.emulator, 50, fake.now);
    fake.inner.do_tick();
    expect(fake.scheduled.at(-1)).toBe(50);
    const idle = fakeEmulator(10);
    capSpeed(idle.emulator, 20, idle.now);
    idle.inner.do_tick();
    expect(idle.scheduled.at(-1)).toBe(40);
    idle.advance(15);
    idle.inner.next_tick(0); // what v86 calls when a device wakes an idle CPU
    expect(idle.scheduled.at(-1)).toBe(25);
  });

  it("takes whole percents from 1 to 100", () => {
    expect(checkCpuPercent(25)).toBe(25);
    for (const bad of [0, 101, 12.5, Number.NaN]) expect(() => checkCpuPercent(bad, "--cpu")).toThrow(/--cpu must be a whole percent from 1 to 100/);
    expect(pauseAfter(10, 100)).toBe(0);
    expect(pauseAfter(10, 25)).toBe(30);
  });

  it("says so when the emulator has no loop it can pace", () => {
    expect(() => capSpeed({}, 25, () => 0)).toThrow(/no loop a speed cap can pace/);
  });
});

/**
 * A v86-shaped loop that counts instructions: every slice is busy 2 ms and runs `perMs(ms)`
 * instructions a ms, `ms` being how long the loop has run without a pause (a host runs a thread
 * it woke from a pause slower for a while), as v86's instruction_counter (a Uint32Array) counts
 * them. `idles()` says whether v86 asks for a wait after a slice (the guest halted).
 */
function countingEmulator(perMs: (runningMs: number) => number, idles: () => boolean = () => false) {
  let clock = 0;
  let lastEnd = 0;
  let runStart = 0;
  let longestRun = 0;
  const counter = new Uint32Array([2 ** 32 - 1000]); // wraps soon
  const scheduled: number[] = [];
  const loop = {
    cpu: { instruction_counter: counter },
    do_tick(this: { next_tick(delay: number): void }) {
      if (clock > lastEnd) runStart = clock; // any pause makes the host run it slow again
      counter[0] = counter[0]! + 2 * perMs(clock - runStart);
      clock += 2;
      lastEnd = clock;
      longestRun = Math.max(longestRun, clock - runStart);
      this.next_tick(idles() ? 1 : 0);
    },
    next_tick(wait: number) {
      scheduled.push(wait);
    },
  };
  const inner = Object.create(loop) as typeof loop;
  /** Runs the loop for `wallMs`; returns the instructions run a ms. */
  const run = (wallMs: number): number => {
    const [start, first] = [clock, counter[0]!];
    while (clock - start < wallMs) {
      inner.do_tick();
      clock += scheduled.at(-1)!;
    }
    return ((counter[0]! - first + 2 ** 32) % 2 ** 32) / (clock - start);
  };
  /** The longest the loop has run without a pause since the last call. */
  const longest = (): number => {
    const ms = longestRun;
    longestRun = 0;
    return ms;
  };
  return { emulator: { v86: inner }, now: () => clock, run, longest, idle: (ms: number) => (clock += ms) };
}

/** 100 instructions a busy ms at full speed; 60 for the first 40 ms after a pause. */
const warming = (runningMs: number): number => (runningMs < 40 ? 60 : 100);

/** A guest capped at 25 % from its start, its three samples taken (full speed 100 after `perMs`'s first 40 ms). */
function cappedWithSamples(perMs: (runningMs: number) => number) {
  const fake = countingEmulator(perMs);
  const cap = capSpeed(fake.emulator, 25, fake.now);
  fake.run(8000);
  expect(cap.pacedRate).toBe(100);
  return { fake, cap };
}

/** Runs the loop until its next burst has ended (a run of 100 ms or more); returns how long that took. */
function untilBurst(fake: ReturnType<typeof countingEmulator>): number {
  fake.longest();
  let waited = 0;
  for (; fake.longest() < 100 && waited < 30_000; waited += 20) fake.run(20);
  return waited;
}

describe("speed cap by instructions", () => {
  it("runs the capped share of the instructions the guest ran uncapped, though a paused host runs it slower", () => {
    const fake = countingEmulator(warming);
    const cap = capSpeed(fake.emulator, 100, fake.now);
    expect(fake.run(2000)).toBeGreaterThan(98); // slow only in its first 40 ms
    expect(cap.fullRate).toBeCloseTo(100, 5);
    for (const percent of [25, 50, 10]) {
      cap.set(percent);
      fake.run(1000); // settles into the new cap
      expect(fake.run(5000) / 100).toBeCloseTo(percent / 100, 2);
    }
    cap.set(100);
    expect(fake.run(1000)).toBeGreaterThan(97);
  });

  it("measures a guest capped from its start by a burst at full speed, and then runs its share", () => {
    const fake = countingEmulator(warming);
    const cap = capSpeed(fake.emulator, 25, fake.now);
    expect(cap.pacedRate).toBeUndefined();
    fake.run(1500); // the burst, the pause that repays it, and the paced slices that take its sample
    // Measured from 75 ms into the burst, where the host runs at full speed.
    expect(cap.pacedRate).toBe(100);
    // Its share over a minute, with the bursts of every 20 s in it repaid by the pauses after them.
    expect(fake.run(60_000) / 100).toBeCloseTo(0.25, 2);
    expect(cap.fullRate).toBeUndefined();
  });

  it("runs at full speed for at most a burst's 160 ms: every 2 s until it has three samples, then every 20 s", () => {
    const fake = countingEmulator(warming);
    const cap = capSpeed(fake.emulator, 25, fake.now);
    fake.run(1500);
    expect(fake.longest()).toBeGreaterThanOrEqual(160);
    expect(fake.longest()).toBe(0);
    for (let sample = 2; sample <= 3; sample++) {
      fake.run(2500);
      expect(fake.longest()).toBeLessThanOrEqual(162);
    }
    expect(cap.pacedRate).toBe(100);
    fake.run(500);
    fake.longest();
    fake.run(18_000);
    expect(fake.longest()).toBeLessThan(10); // paced in slices, no burst before its 20 s
    fake.run(2500);
    expect(fake.longest()).toBeLessThanOrEqual(162);
    cap.set(100);
    fake.run(100);
    expect(fake.longest()).toBeGreaterThan(99);
  });

  it("measures again every 20 s, for the guest's work changes speed (a kernel booting, then a shell's loop)", () => {
    let full = 400;
    const fake = countingEmulator((ms) => (ms < 40 ? full * 0.6 : full));
    const cap = capSpeed(fake.emulator, 100, fake.now);
    fake.run(2000);
    expect(cap.fullRate).toBeCloseTo(400, 5);
    full = 100;
    cap.set(25);
    fake.run(1000);
    // Until measured again, the speed measured on the faster work lets it run busy at most 2.5
    // times its share of the time.
    expect(fake.run(5000)).toBeCloseTo(60 * 0.25 * 2.5, 0);
    fake.run(15_000);
    expect(cap.pacedRate).toBe(100);
    expect(fake.run(10_000) / 100).toBeCloseTo(0.25, 2);
  });

  it("measures anew at once when the guest's work changes several times over (a kernel booting, then a shell's loop)", () => {
    let full = 100;
    const { fake, cap } = cappedWithSamples((ms) => (ms < 40 ? full * 0.6 : full));
    full = 400;
    fake.run(6000);
    expect(cap.pacedRate).toBeCloseTo(400, 5);
    expect(fake.run(10_000) / 400).toBeCloseTo(0.25, 2);
  });

  it("keeps its samples through a dip of a span or two (a shell between two runs of a loop)", () => {
    let paced = 60;
    const { fake, cap } = cappedWithSamples((ms) => (ms < 40 ? paced : 100));
    fake.longest();
    paced = 20; // a third of the samples' paced rate, for one span of 100 ms busy
    fake.run(400);
    paced = 60;
    fake.run(5000);
    expect(fake.longest()).toBeLessThan(10); // no burst: the samples held
    expect(cap.pacedRate).toBe(100);
  });

  it("measures again within seconds while its bursts disagree (v86 compiling a resumed guest's code again), then every 20 s", () => {
    let full = 100;
    // Full speed rises by 60 %, and the paced slices' with it: not the change of work that makes the samples stale.
    const { fake, cap } = cappedWithSamples((ms) => (ms < 40 ? full * 0.6 : full));
    full = 160;
    const waited = untilBurst(fake);
    expect(waited).toBeGreaterThan(10_000); // the first burst after the change, 20 s after the third
    fake.run(4500); // its sample disagrees: another burst 2 s after it
    expect(cap.pacedRate).toBe(160);
    fake.run(6000); // and another 4 s after that, which settles them
    fake.longest();
    fake.run(15_000);
    expect(fake.longest()).toBeLessThan(10);
    expect(fake.run(10_000) / 160).toBeCloseTo(0.25, 2);
  });

  it("paces by the median of its last three bursts, so one a busy host slowed does not decide it", () => {
    let slowBurst = false;
    // A host busy elsewhere runs one burst at half speed.
    const { fake, cap } = cappedWithSamples((ms) => (ms < 40 ? 60 : slowBurst ? 50 : 100));
    slowBurst = true; // until the next burst, 20 s after the third
    const waited = untilBurst(fake);
    fake.run(500); // its sample taken
    slowBurst = false;
    expect(waited).toBeGreaterThan(10_000);
    expect(cap.pacedRate).toBe(100);
    expect(fake.run(10_000) / 100).toBeCloseTo(0.25, 2);
  });

  it("stays busy at least its share of the time when a burst measured it far too slow (a slice the host stalled)", () => {
    let stall = true;
    // The first burst's slices run at a hundredth of full speed: a host busy elsewhere.
    const fake = countingEmulator((ms) => (ms < 40 ? 60 : stall ? 1 : 100));
    const cap = capSpeed(fake.emulator, 25, fake.now);
    fake.run(1200); // the burst, and the paced slices after it that take its sample
    stall = false;
    expect(cap.pacedRate).toBe(1);
    // Paced by that rate it would run once a minute; it runs its share of the time (its slices at 60).
    expect(fake.run(1000) / 60).toBeCloseTo(0.25, 2);
  });

  it("takes no sample when the guest's speed changed around the burst, and measures again soon", () => {
    let paced = 60;
    const { fake, cap } = cappedWithSamples((ms) => (ms < 40 ? paced : 100));
    // Slower paced slices up to the next burst, 20 s after the third, and the usual ones after it.
    paced = 40;
    const waited = untilBurst(fake);
    paced = 60;
    expect(waited).toBeGreaterThan(10_000);
    fake.run(200);
    fake.longest(); // the burst's end
    fake.run(2400); // not taken: another burst within 2 s
    expect(fake.longest()).toBeGreaterThanOrEqual(100);
    expect(cap.pacedRate).toBe(100);
  });

  it("keeps the busy share of the time for a guest that idles (nothing to measure) or has no count", () => {
    let halts = true;
    const fake = countingEmulator(warming, () => halts);
    const cap = capSpeed(fake.emulator, 25, fake.now);
    fake.run(5000);
    expect(cap.pacedRate).toBeUndefined();
    halts = false;
    fake.run(2500); // the next burst comes 2 s after the last one the guest idled in
    expect(cap.pacedRate).toBe(100);
    const plain = fakeEmulator(4);
    capSpeed(plain.emulator, 25, plain.now);
    expect(busyShare(plain, 10_000, 4)).toBeCloseTo(0.25, 2);
  });
});

describe("FullSpeed", () => {
  it("is the fastest of its last spans of busy slices, leaving out slices the guest idled in", () => {
    const full = new FullSpeed();
    let at = 0;
    const add = (times: number, instructions: number, idled = false): void => {
      for (let i = 0; i < times; i++) full.add((at += 2), 2, instructions, idled);
    };
    expect(full.rate(at)).toBeUndefined();
    add(100, 200); // 200 ms: not a span yet
    expect(full.rate(at)).toBeUndefined();
    add(150, 200);
    expect(full.rate(at)).toBe(100);
    add(1000, 2, true); // idling: no measure of speed
    expect(full.rate(at)).toBe(100);
    add(250, 300);
    expect(full.rate(at)).toBe(150);
    // Three more spans of 50 still keep the 150 span; a fourth pushes it out.
    add(3 * 250, 100);
    expect(full.rate(at)).toBe(150);
    add(250, 100);
    expect(full.rate(at)).toBe(50);
    // A minute later (the guest idle at its prompt), its next work may be any other.
    expect(full.rate(at + 60_000)).toBe(50);
    expect(full.rate(at + 60_001)).toBeUndefined();
  });

  it("is not taken when the guest was capped after a minute idle: a burst measures it", () => {
    const fake = countingEmulator(warming);
    const cap = capSpeed(fake.emulator, 100, fake.now);
    fake.run(2000);
    fake.idle(61_000);
    cap.set(25);
    expect(cap.pacedRate).toBeUndefined();
    fake.run(1500);
    expect(cap.pacedRate).toBe(100);
    expect(fake.run(20_000) / 100).toBeCloseTo(0.25, 2);
  });
});

describe("SpeedControl", () => {
  it("applies a cap asked for before v86 has made its loop once it is loaded, and follows changes", () => {
    const fake = fakeEmulator(4);
    const listeners = new Map<string, () => void>();
    const emulator: { v86?: unknown; add_listener(e: string, l: (value: never) => void): void; remove_listener(e: string): void } = {
      add_listener: (event, listener) => listeners.set(event, listener as () => void),
      remove_listener: (event) => listeners.delete(event),
    };
    const control = new SpeedControl(emulator, fake.now, 25);
    emulator.v86 = fake.inner;
    expect(busyShare(fake, 1000, 4)).toBe(1);
    listeners.get("emulator-loaded")!();
    expect(busyShare(fake, 1000, 4)).toBeCloseTo(0.25, 2);
    control.set(50);
    expect(busyShare(fake, 1000, 4)).toBeCloseTo(0.5, 2);
    control.dispose();
    expect(listeners.size).toBe(0);
    expect(busyShare(fake, 1000, 4)).toBe(1);
  });
});
