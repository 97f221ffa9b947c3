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
import { toDisposable, type Disposable } from "../disposable.js";

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

/**
 * How many instructions a resumed guest runs in v86's interpreter alone, its JIT held off
 * (interpretFirst). A resume wakes code that has gone cold: the agent, the kernel's paths to it,
 * a command's start. With its JIT on, v86 keeps books on each block it interprets (a hash-map
 * entry per page and per entry point, for code it may compile once a page has run 200,000
 * instructions' worth), and in the first instructions after a resume that bookkeeping took most
 * of the time. A command given with a headless resume (about 1.4 million instructions to its
 * answer) answered 84 ms after the restore with the JIT on, 55 with it held (medians of 8), and
 * 379 and 381 ms from the command held for 2 and 3 million, 412 not held (medians of 10). A shell
 * loop of 3,000 rounds given with the resume answered in 869, 904 and 957 ms held for 2, 4 and
 * 8 million, 934 not held, and 1,321 held for a second of time (medians of 5): past its first
 * few million instructions a guest wants its JIT.
 */
export const RESUME_INTERPRETED = 3_000_000;

/** Past this much time after a resume the JIT is on again, however few instructions an idle guest ran. */
const RESUME_INTERPRETED_MS = 2000;

/** The part of v86's CPU that sets its JIT's configuration (setting 0: disabled); its typings do not list it. */
interface JitConfig {
  set_jit_config(index: number, value: number): void;
  /** v86's WebAssembly instance: the setting is read from its exports. */
  wm?: { exports?: { get_jit_config?(index: number): number } };
}

/**
 * Holds a just-restored guest's JIT off for its first `instructions` (or RESUME_INTERPRETED_MS,
 * if that comes first): see RESUME_INTERPRETED. Disposing turns it on at once. A machine whose
 * JIT is off for good, or a v86 without the setting, is left as it is.
 */
export function interpretFirst(emulator: V86, instructions = RESUME_INTERPRETED): Disposable {
  const cpu = cpuOf(emulator) as Partial<JitConfig> | undefined;
  if (typeof cpu?.set_jit_config !== "function" || cpu.wm?.exports?.get_jit_config?.(0) !== 0) return toDisposable(() => {});
  const jit = cpu as JitConfig;
  const timers = globalThis as unknown as { setInterval(fn: () => void, ms: number): unknown; clearInterval(handle: unknown): void };
  const from = emulator.get_instruction_counter();
  const until = Date.now() + RESUME_INTERPRETED_MS;
  jit.set_jit_config(0, 1);
  const held = toDisposable(() => {
    timers.clearInterval(poll);
    jit.set_jit_config(0, 0);
  });
  // The counter is v86's 32 bits: what it ran is told modulo 2^32.
  const poll = timers.setInterval(() => {
    if ((emulator.get_instruction_counter() - from) >>> 0 >= instructions || Date.now() >= until) held.dispose();
  }, 5);
  return held;
}
