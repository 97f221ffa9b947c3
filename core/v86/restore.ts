// Resuming a saved state, for the page and the headless worker alike. A machine set up to
// resume gets no kernel, initrd or multiboot image (resumeOptions): the memory it restores
// holds the kernel that was running. It is restored once v86 has loaded and before it first
// runs (restoreFresh), and v86 then has nothing to clear but the firmware it wrote below 1 MiB.
//
// Why: v86's restore clears all of the guest's RAM before it writes the saved pages in
// (restore_state, then unpack_memory, then zero_memory over the whole RAM). RAM just set up is
// fresh from the WebAssembly allocator: zero, and not yet backed by the host. Clearing it
// touches every page of it for nothing; on a host where a page's first touch is dear that is
// most of a resume (128 MiB took 0.45 s here: 14 µs for each 4 KiB page). Each page stays
// untouched until the guest writes it, so a resumed guest also holds less of the host's RAM.
// A compressed state's pages are streamed straight to their places (state-format.ts), not
// decoded into a buffer of their own first.

import type { V86, V86Options } from "v86";
import { MiB } from "./options.js";
import { canReadState, readState } from "./state-format.js";
import { ownBuffer } from "../bytes.js";

/** What v86 writes into RAM while it sets a machine up without a kernel: its BIOS and VGA BIOS, below 1 MiB. */
export const SETUP_WRITES_END = 1 * MiB;

/** The boot images v86 copies into RAM at setup: a machine that resumes takes them from its state instead. */
export const BOOT_IMAGES: readonly ("bzimage" | "initrd" | "multiboot")[] = ["bzimage", "initrd", "multiboot"];

/** The options of a machine set up to resume a saved state: the same machine without its boot images. */
export function resumeOptions(options: V86Options): V86Options {
  const resumed = { ...options, autostart: false };
  for (const role of BOOT_IMAGES) delete resumed[role];
  delete resumed.initial_state; // restored by restoreFresh, once v86 has loaded
  return resumed;
}

/** The part of v86's CPU (emulator.v86.cpu) the restore uses; its typings do not list it. */
interface V86Cpu {
  zero_memory(address: number, length: number): void;
  /** The guest instructions run so far (a view of v86's memory): 0 until it first runs. */
  instruction_counter: { readonly [index: number]: number | undefined };
  wasm_memory: { readonly buffer: ArrayBuffer };
}

function cpuOf(emulator: V86): Partial<V86Cpu> | undefined {
  return (emulator as unknown as { v86?: { cpu?: Partial<V86Cpu> } }).v86?.cpu;
}

/** Whether `emulator` has loaded and never run: its RAM is as v86 set it up. */
export function isFresh(emulator: V86): boolean {
  const cpu = cpuOf(emulator);
  return typeof cpu?.zero_memory === "function" && cpu.instruction_counter?.[0] === 0;
}

/**
 * Restores `state` (v86's, zstd-compressed as it is kept, or raw: decoded ahead) into an
 * emulator. Into one set up with resumeOptions that has loaded and not yet run, only the RAM
 * v86 wrote at setup is cleared. The state is read straight into RAM (state-format.ts); one of
 * a format that reader does not know goes through v86's own restore. Throws what v86 throws,
 * or a StateFormatError, for a state it cannot use. `state` may be a view (of shared memory,
 * too). `prepare` is given v86's memory (a WebAssembly memory's buffer) before the restore writes it.
 */
export async function restoreFresh(emulator: V86, state: ArrayBuffer | Uint8Array, prepare?: (memory: ArrayBuffer) => void): Promise<void> {
  const cpu = cpuOf(emulator);
  const fresh = isFresh(emulator);
  const bytes = state instanceof Uint8Array ? state : new Uint8Array(state);
  if (canReadState(cpu) && readState(cpu, bytes, fresh ? SETUP_WRITES_END : Number.MAX_SAFE_INTEGER, prepare)) return;
  const memory = cpu?.wasm_memory?.buffer;
  if (prepare && memory) prepare(memory);
  if (!cpu || !fresh) {
    await emulator.restore_state(ownBuffer(bytes));
    return;
  }
  const clear = cpu.zero_memory!;
  // An own property (v86 binds its WebAssembly export to each CPU): put back as it was.
  cpu.zero_memory = (address: number, length: number): void => {
    const end = Math.min(address + length, SETUP_WRITES_END);
    if (end > address) clear(address, end - address);
  };
  try {
    await emulator.restore_state(ownBuffer(bytes));
  } finally {
    cpu.zero_memory = clear;
  }
}
