// Disposables: owners dispose what they hold in reverse order, exactly once, and one failing
// disposable does not keep the others alive.

import { describe, expect, it } from "vitest";
import { DisposableStore, Emitter, toDisposable } from "../../core/disposable.js";

describe("toDisposable", () => {
  it("runs its function once however often it is disposed", () => {
    let runs = 0;
    const d = toDisposable(() => runs++);
    d.dispose();
    d.dispose();
    expect(runs).toBe(1);
  });
});

describe("DisposableStore", () => {
  it("disposes its items in reverse order, once", () => {
    const order: number[] = [];
    const store = new DisposableStore();
    for (const n of [1, 2, 3]) store.add(toDisposable(() => order.push(n)));
    store.dispose();
    store.dispose();
    expect(order).toEqual([3, 2, 1]);
    expect(store.disposed).toBe(true);
  });

  it("disposes an item added after it is disposed right away", () => {
    const store = new DisposableStore();
    store.dispose();
    let disposed = false;
    store.add(toDisposable(() => (disposed = true)));
    expect(disposed).toBe(true);
  });

  it("disposes every item even when some throw, then reports the failures", () => {
    const order: string[] = [];
    const one = new DisposableStore();
    one.add(toDisposable(() => order.push("a")));
    one.add(toDisposable(() => { throw new Error("b failed"); }));
    one.add(toDisposable(() => order.push("c")));
    expect(() => one.dispose()).toThrow("b failed");
    expect(order).toEqual(["c", "a"]);

    const two = new DisposableStore();
    two.add(toDisposable(() => { throw new Error("x"); }));
    two.add(toDisposable(() => { throw new Error("y"); }));
    expect(() => two.dispose()).toThrow(AggregateError);
  });
});

describe("Emitter", () => {
  it("delivers to its listeners until each unsubscribes", () => {
    const emitter = new Emitter<number>();
    const seen: string[] = [];
    const a = emitter.event((n) => seen.push(`a${n}`));
    emitter.event((n) => seen.push(`b${n}`));
    emitter.fire(1);
    a.dispose();
    emitter.fire(2);
    expect(seen).toEqual(["a1", "b1", "b2"]);
    expect(emitter.size).toBe(1);
    emitter.dispose();
    emitter.fire(3);
    expect(seen).toEqual(["a1", "b1", "b2"]);
  });

  it("lets a listener unsubscribe itself while the event fires", () => {
    const emitter = new Emitter<void>();
    const seen: string[] = [];
    const first = emitter.event(() => {
      seen.push("first");
      first.dispose();
    });
    emitter.event(() => seen.push("second"));
    emitter.fire();
    emitter.fire();
    expect(seen).toEqual(["first", "second", "second"]);
  });
});
