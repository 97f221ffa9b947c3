// Resuming into a machine just set up: its options leave the boot images out, and the restore
// clears only the RAM v86 wrote at setup (below 1 MiB), never a machine that has run. The
// real emulator's side is tested in test/vm/restore.test.ts.

import { describe, expect, it } from "vitest";
import type { V86, V86Options } from "v86";
import { MiB } from "../../../core/v86/options.js";
import { SETUP_WRITES_END, isFresh, restoreFresh, resumeOptions } from "../../../core/v86/restore.js";

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
