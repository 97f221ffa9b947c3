// Resuming into a machine just set up: its options leave the boot images out, and the restore
// clears only the RAM v86 wrote at setup (below 1 MiB), never a machine that has run. The
// real emulator's side is tested in test/vm/restore.test.ts.

import { afterEach, describe, expect, it, vi } from "vitest";
import type { V86, V86Options } from "v86";
import { MiB } from "../../../core/v86/options.js";
import { RESUME_INTERPRETED, SETUP_WRITES_END, interpretFirst, isFresh, restoreFresh, resumeOptions } from "../../../core/v86/restore.js";

/** An emulator as far as the restore sees it: v86's CPU with its clearing and its instruction count. */
function fakeEmulator(instructions: number, restore: (cpu: { zero_memory(address: number, length: number): void }) => void) {
  const cleared: [number, number][] = [];
  const clear = (address: number, length: number): void => void cleared.push([address, length]);
  const cpu = { zero_memory: clear, instruction_counter: new Uint32Array([instructions]) };
  const emulator = {
    v86: { cpu },
    restore_state: async () => restore(cpu),
  } as unknown as V86;
  return { emulator, cpu, cleared, clear };
}

describe("resumeOptions", () => {
  it("leaves out the boot images and the state, and does not start on its own", () => {
    const image = { buffer: new ArrayBuffer(8) };
    const options: V86Options = { memory_size: 128 * MiB, bzimage: image, initrd: image, multiboot: image, hda: image, cmdline: "quiet", initial_state: image, autostart: true };
    const resumed = resumeOptions(options);
    expect(resumed).toEqual({ memory_size: 128 * MiB, hda: image, cmdline: "quiet", autostart: false });
    expect(options.bzimage).toBe(image); // the caller's options are left as they were
  });
});

describe("restoreFresh", () => {
  it("clears only the RAM v86 wrote at setup in a machine that never ran, then puts v86's clearing back", async () => {
    const { emulator, cpu, cleared, clear } = fakeEmulator(0, (c) => c.zero_memory(0, 128 * MiB));
    expect(isFresh(emulator)).toBe(true);
    await restoreFresh(emulator, new ArrayBuffer(16));
    expect(cleared).toEqual([[0, SETUP_WRITES_END]]);
    expect(cpu.zero_memory).toBe(clear);
  });

  it("clears nothing above 1 MiB, and what v86 asks below it only that far", async () => {
    const { emulator, cleared } = fakeEmulator(0, (c) => {
      c.zero_memory(64 * MiB, 4096);
      c.zero_memory(0x9f000, 0x200000);
    });
    await restoreFresh(emulator, new ArrayBuffer(16));
    expect(cleared).toEqual([[0x9f000, SETUP_WRITES_END - 0x9f000]]);
  });

  it("leaves a machine that has run to v86's own restore, which clears all of its RAM", async () => {
    const { emulator, cleared } = fakeEmulator(1234, (c) => c.zero_memory(0, 128 * MiB));
    expect(isFresh(emulator)).toBe(false);
    await restoreFresh(emulator, new ArrayBuffer(16));
    expect(cleared).toEqual([[0, 128 * MiB]]);
  });

  it("puts v86's clearing back when the state is refused, and says why", async () => {
    const { emulator, cpu, clear } = fakeEmulator(0, () => {
      throw new Error("Invalid header: 0");
    });
    await expect(restoreFresh(emulator, new ArrayBuffer(16))).rejects.toThrow("Invalid header");
    expect(cpu.zero_memory).toBe(clear);
  });
});

/** A restored emulator as interpretFirst sees it: v86's JIT setting 0 (disabled) and its 32-bit instruction counter. */
function jitEmulator(disabled = 0, counter = 0) {
  const jit = [disabled, 0, 0, 0];
  const state = { counter, sets: [] as [number, number][] };
  const cpu = {
    set_jit_config: (index: number, value: number) => {
      state.sets.push([index, value]);
      jit[index] = value;
    },
    wm: { exports: { get_jit_config: (index: number) => jit[index]! } },
  };
  const emulator = { v86: { cpu }, get_instruction_counter: () => state.counter >>> 0 } as unknown as V86;
  return { emulator, state, jitOff: () => jit[0] === 1 };
}

describe("interpretFirst", () => {
  afterEach(() => vi.useRealTimers());

  it("holds the JIT off until the guest has run its first instructions, then turns it on once", () => {
    vi.useFakeTimers();
    const { emulator, state, jitOff } = jitEmulator(0, 5000);
    interpretFirst(emulator);
    expect(jitOff()).toBe(true);
    state.counter += RESUME_INTERPRETED - 1;
    vi.advanceTimersByTime(100);
    expect(jitOff()).toBe(true);
    state.counter += 1;
    vi.advanceTimersByTime(5);
    expect(jitOff()).toBe(false);
    vi.advanceTimersByTime(10_000);
    expect(state.sets).toEqual([
      [0, 1],
      [0, 0],
    ]);
  });

  it("counts across the counter's wrap at 2^32", () => {
    vi.useFakeTimers();
    const { emulator, state, jitOff } = jitEmulator(0, 2 ** 32 - 1000);
    interpretFirst(emulator, 5000);
    state.counter += 4000; // wrapped: 3,000 ahead of 0
    vi.advanceTimersByTime(5);
    expect(jitOff()).toBe(true);
    state.counter += 1000;
    vi.advanceTimersByTime(5);
    expect(jitOff()).toBe(false);
  });

  it("turns the JIT on after two seconds of an idle guest, or at once when disposed", () => {
    vi.useFakeTimers();
    const idle = jitEmulator();
    interpretFirst(idle.emulator);
    vi.advanceTimersByTime(1990);
    expect(idle.jitOff()).toBe(true);
    vi.advanceTimersByTime(20);
    expect(idle.jitOff()).toBe(false);

    const stopped = jitEmulator();
    const held = interpretFirst(stopped.emulator);
    held.dispose();
    held.dispose();
    expect(stopped.jitOff()).toBe(false);
    expect(stopped.state.sets).toEqual([
      [0, 1],
      [0, 0],
    ]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("leaves a machine whose JIT is off for good, and a v86 without the setting, as they are", () => {
    vi.useFakeTimers();
    const off = jitEmulator(1);
    interpretFirst(off.emulator).dispose();
    expect(off.jitOff()).toBe(true);
    expect(off.state.sets).toEqual([]);
    const other = { v86: { cpu: {} }, get_instruction_counter: () => 0 } as unknown as V86;
    expect(() => interpretFirst(other).dispose()).not.toThrow();
    expect(vi.getTimerCount()).toBe(0);
  });
});
