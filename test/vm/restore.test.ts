// A resume's RAM is the saved RAM, byte for byte: tiny's kept state restored into a machine set
// up to resume (resumeOptions, restoreFresh: only the firmware's first MiB cleared) holds the
// same RAM as v86's own restore into the machine as it boots (its kernel and initrd written
// into RAM at setup, all of RAM cleared first). The same quick restore into the booting
// machine leaves its kernel in RAM: what resumeOptions is for, and what this test would see.
// A state kept as compressState keeps it (its RAM's bitmap before its pages: state-format.ts)
// gives the same RAM, through the streaming restore and through v86's own; so does the raw state,
// read where it lies (in shared memory, as the host decodes it ahead: main/state/state-zstd.ts).

import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { V86, type V86Options } from "v86";
import { tinyPlan } from "../support/guests.js";
import { loadMachine } from "../../main/headless/machine-files.js";
import { buildV86Options } from "../../core/v86/options.js";
import { interpretFirst, restoreFresh, resumeOptions } from "../../core/v86/restore.js";
import { decodeState } from "../../main/state/state-zstd.js";
import { compressState } from "../../core/v86/state-codec.js";
import { putBitmapFirst } from "../../core/v86/state-format.js";
import { readStateFile } from "../../main/state/state-file.js";
import { builtStatePath } from "../../main/state/guest-states.js";
import { GuestLibrary } from "../../main/guests/library.js";
import { v86Dir } from "../../main/paths.js";

const plan = tinyPlan();

/** The tiny machine set up (not run), booting or resuming, with its devices (a 9P server that never answers). */
async function machine(resumes: boolean): Promise<V86> {
  const spec = loadMachine(plan.machine, resumes);
  spec.handle9p = () => {};
  const options: V86Options = { ...buildV86Options(spec), autostart: false, wasm_path: join(v86Dir, "v86.wasm") };
  const emulator = new V86(resumes ? resumeOptions(options) : options);
  await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
  return emulator;
}

/** SHA-256 of the guest's RAM and of its video memory (what the screen shows after a resume). */
function machineHash(emulator: V86): string {
  const cpu = (emulator as unknown as { v86: { cpu: { mem8: Uint8Array; devices: { vga: { svga_memory: Uint8Array; vga_memory: Uint8Array } } } } }).v86.cpu;
  const hash = createHash("sha256");
  // Views of v86's own (its constructor is bound): seen through plain Uint8Arrays.
  for (const bytes of [cpu.mem8, cpu.devices.vga.svga_memory, cpu.devices.vga.vga_memory]) hash.update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return hash.digest("hex");
}

/** v86's raw state, decompressed. */
async function raw(compressed: ArrayBuffer): Promise<Uint8Array> {
  const { Zstd } = await import("@hpcc-js/wasm-zstd");
  return (await Zstd.load()).decompress(new Uint8Array(compressed));
}

function kept(): ArrayBuffer {
  const path = builtStatePath(new GuestLibrary().resolve("tiny").media);
  if (!path) throw new Error("tiny has no kept state");
  return new Uint8Array(readStateFile(path).payload).buffer;
}

describe("restoring a saved state into a machine just set up", () => {
  it("gives the saved RAM exactly, as v86's own restore does", async () => {
    const reference = await machine(false);
    await reference.restore_state(kept());
    const expected = machineHash(reference);
    await reference.destroy();

    const resumed = await machine(true);
    await restoreFresh(resumed, kept());
    expect(machineHash(resumed)).toBe(expected);
    await resumed.destroy();

    // The check can fail: a machine that wrote its kernel into RAM at setup keeps it where the state has zeros.
    const booting = await machine(false);
    await restoreFresh(booting, kept());
    expect(machineHash(booting)).not.toBe(expected);
    await booting.destroy();
  });

  it("gives the same RAM from a state kept with its bitmap first, restored by v86 or streamed", async () => {
    const reference = await machine(false);
    await reference.restore_state(kept());
    const expected = machineHash(reference);
    // The same state as v86 writes it (RAM's pages before their bitmap), whatever layout the kept one has.
    const asV86Writes = new Uint8Array(await reference.save_state());
    await reference.destroy();
    const zstd = await (await import("@hpcc-js/wasm-zstd")).Zstd.load();
    const v86Order = zstd.compress(asV86Writes, 3);

    const state = asV86Writes.slice();
    const arranged = await compressState(state); // puts the bitmap first
    expect(Buffer.compare(state, asV86Writes)).not.toBe(0);
    expect(putBitmapFirst(state)).toBe(false); // already arranged
    expect(Buffer.compare(await raw(new Uint8Array(arranged).buffer), state)).toBe(0);

    for (const [what, bytes] of [
      ["bitmap first", arranged],
      ["as v86 writes it", v86Order],
    ] as const) {
      const streamed = await machine(true);
      await restoreFresh(streamed, new Uint8Array(bytes).buffer);
      expect(machineHash(streamed), `streamed, ${what}`).toBe(expected);
      await streamed.destroy();
    }

    const byV86 = await machine(false);
    await byV86.restore_state(new Uint8Array(arranged).buffer);
    expect(machineHash(byV86)).toBe(expected);
    await byV86.destroy();

    // Raw (decoded ahead): read where it lies, as the kept one is, or from shared memory as the host's libzstd gives it.
    const decoded = decodeState(arranged, 512 * 1024 * 1024);
    for (const [what, bytes] of [
      ["raw", state.slice()],
      ["raw, as v86 writes it", asV86Writes],
      ...(decoded ? ([["decoded by the host's libzstd, in shared memory", decoded]] as const) : []),
    ] as const) {
      const rawResumed = await machine(true);
      await restoreFresh(rawResumed, bytes);
      expect(machineHash(rawResumed), what).toBe(expected);
      await rawResumed.destroy();
    }
    expect(decoded, "this host has libzstd (Debian's libzstd1)").toBeDefined();
  });

  it("runs a resumed guest's first instructions with v86's JIT held off, then turns it on", async () => {
    const resumed = await machine(true);
    await restoreFresh(resumed, kept());
    const exports = (resumed as unknown as { v86: { cpu: { wm: { exports: { get_jit_config(index: number): number } } } } }).v86.cpu.wm.exports;
    const cpu = { get_jit_config: (index: number) => exports.get_jit_config(index) };
    expect(cpu.get_jit_config(0), "the JIT is on in a machine set up to resume").toBe(0);
    const from = resumed.get_instruction_counter();
    const held = interpretFirst(resumed, 50_000);
    expect(cpu.get_jit_config(0), "held off").toBe(1);
    const started = Date.now();
    await resumed.run();
    while (cpu.get_jit_config(0) === 1 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 5));
    expect(cpu.get_jit_config(0), "on again").toBe(0);
    // Turned on by the guest's instructions, not by the two seconds' cap.
    expect(resumed.get_instruction_counter() - from).toBeGreaterThanOrEqual(50_000);
    expect(Date.now() - started).toBeLessThan(1900);
    held.dispose();
    expect(cpu.get_jit_config(0)).toBe(0);
    await resumed.destroy();
  });
});
