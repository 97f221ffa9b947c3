// The host's wheel as the guest's notches (renderer/guest/wheel.ts). What a user would notice: a
// mouse notch that scrolls nothing or two pages, a trackpad that scrolls the guest wildly.
import { describe, expect, it } from "vitest";
import { wheelNotches } from "../../renderer/guest/wheel.js";

/** The notches a run of events turns, as the guest gets them. */
function turn(deltas: number[], mode = 0): number[] {
  let rest = 0;
  return deltas.map((delta) => {
    const step = wheelNotches(rest, delta, mode);
    rest = step.rest;
    return step.notches;
  });
}

describe("wheel notches", () => {
  it("a mouse notch is one notch, whatever the host counts it as", () => {
    for (const delta of [53, 100, 120]) {
      expect(turn([delta, delta, delta])).toEqual([1, 1, 1]);
      expect(turn([-delta])).toEqual([-1]);
    }
    expect(turn([3, -3], 1)).toEqual([1, -1]); // lines
  });

  it("a fast spin the host sends as one event turns as many notches", () => {
    expect(turn([300])).toEqual([3]);
    expect(turn([-1], 2)).toEqual([-8]); // a page
  });

  it("a trackpad's small steps add up: one notch a hundred pixels", () => {
    const steps = turn(Array.from({ length: 50 }, () => 4));
    expect(steps.reduce((a, b) => a + b, 0)).toBe(2);
    expect(steps.indexOf(1)).toBe(24);
  });

  it("turning back starts afresh, and nothing is no notch", () => {
    expect(turn([30, 30, -30, -30, -30, -30])).toEqual([0, 0, 0, 0, 0, -1]);
    expect(turn([0, Number.NaN])).toEqual([0, 0]);
  });
});
