// A clock for protocol tests: time moves only when the test says, and timers fire in order of
// their due time (ties in order of setting), so retransmission and idle timeouts are exact.

import type { TimerHandle, Timers } from "../../../core/net/timers.js";

interface Entry {
  at: number;
  order: number;
  callback: () => void;
  cancelled: boolean;
}

export class ManualTimers implements Timers {
  #now = 0;
  #order = 0;
  /** A binary heap by (due time, order of setting). */
  #heap: Entry[] = [];
  #live = 0;

  now(): number {
    return this.#now;
  }

  set(callback: () => void, ms: number): TimerHandle {
    const entry: Entry = { at: this.#now + Math.max(0, ms), order: this.#order++, callback, cancelled: false };
    this.#push(entry);
    this.#live++;
    return {
      cancel: () => {
        if (entry.cancelled) return;
        entry.cancelled = true;
        this.#live--;
      },
    };
  }

  get pending(): number {
    return this.#live;
  }

  static #before(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!ManualTimers.#before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): Entry | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && ManualTimers.#before(h[l]!, h[m]!)) m = l;
        if (r < h.length && ManualTimers.#before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }

  /** The next live entry, left in place. */
  #peek(): Entry | undefined {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop();
    return this.#heap[0];
  }

  #fire(): void {
    const e = this.#pop()!;
    this.#live--;
    e.cancelled = true;
    this.#now = e.at;
    e.callback();
  }

  /** Runs timers due up to now + ms, moving the clock as they fire. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (let e = this.#peek(); e && e.at <= end; e = this.#peek()) this.#fire();
    this.#now = end;
  }

  /** Runs timers in order until `done()` or nothing is left; fails past `limitMs` of clock. */
  runUntil(done: () => boolean, limitMs = 600_000): void {
    const end = this.#now + limitMs;
    while (!done()) {
      const e = this.#peek();
      if (!e) return;
      if (e.at > end) throw new Error(`clock passed ${limitMs} ms without finishing`);
      this.#fire();
    }
  }
}

/** A seeded generator (mulberry32): the same seed gives the same run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
