// A launch plan's machine as the headless worker loads it: each medium from a host file or
// from bytes in hand (a URL is the page's and is refused here). The same conversion the page
// uses (core/v86/options.ts machineSpec), with Node's way of reading bytes.

import { readFileSync } from "node:fs";
import type { LaunchMachine, MediaSource } from "../../core/guest/launch-plan.js";
import { machineSpec, type MachineSpec } from "../../core/v86/options.js";
import { SERVED_PLACEHOLDER } from "../../core/disk/served-disk.js";
import { BOOT_IMAGES } from "../../core/v86/restore.js";
import { ownBuffer } from "../../core/bytes.js";

/** A medium's bytes in an ArrayBuffer of their own (Node may hand back a slice of a shared pool). */
export function loadBuffer(source: MediaSource): ArrayBuffer {
  if (source.kind === "url") throw new Error(`${source.url}: a headless guest reads media from files, not URLs`);
  if (source.kind === "served" || source.kind === "disk") throw new Error("a served disk is read through the host's disk service, not loaded whole");
  if (source.kind === "fat") throw new Error(`${source.drive.from}: a FAT drive is built by the host (buildFatDrives) before the guest starts`);
  const bytes = source.kind === "file" ? readFileSync(source.path) : source.bytes;
  // A large file read by Node owns its memory: handed over instead of copied.
  return ownBuffer(bytes);
}

/**
 * The machine with its media loaded. One that `resumes` a saved state does not read its boot
 * images: the RAM it restores holds its kernel, and resumeOptions leaves them out of v86's
 * options (they stay in the spec as empty buffers, which still size its RAM: bootMemory).
 */
export function loadMachine(machine: LaunchMachine, resumes = false): MachineSpec {
  const skipped = new Set(Object.entries(machine.media).filter(([role]) => resumes && (BOOT_IMAGES as readonly string[]).includes(role)).map(([, source]) => source));
  // A served disk is read block by block through the disk service (withServedDisks), never loaded.
  return machineSpec(machine, (source) => (source.kind === "served" ? SERVED_PLACEHOLDER : skipped.has(source) ? { buffer: new ArrayBuffer(0) } : { buffer: loadBuffer(source) }));
}
