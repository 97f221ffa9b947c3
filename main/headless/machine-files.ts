// A machine described by host files (or in-memory bytes), as the headless worker loads it.

import { readFileSync } from "node:fs";
import type { V86Image } from "v86";
import type { MediaRole, NetDevice } from "../../core/guest/profile.js";
import type { MachineSpec } from "../../core/v86/options.js";

export type FileSource = string | Uint8Array;

export interface MachineSpecFiles {
  memory: number;
  cmdline?: string;
  acpi: boolean;
  net: NetDevice;
  bios: string;
  vgaBios: string;
  media: Partial<Record<MediaRole, FileSource>>;
  floppyFirst?: boolean;
  builtin9p?: boolean;
  /** Where the agent talks: virtio-console (default) or COM2 for guests without virtio. */
  agentPort?: "virtio" | "com2";
}

/** A file's bytes in an ArrayBuffer of their own (Node may hand back a slice of a shared pool). */
export function loadBuffer(source: FileSource): ArrayBuffer {
  const bytes = typeof source === "string" ? readFileSync(source) : source;
  // A large file read by Node owns its memory: hand it over instead of copying it.
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

export function loadMachine(files: MachineSpecFiles): MachineSpec {
  const image = (source: FileSource): V86Image => ({ buffer: loadBuffer(source) });
  const media: Partial<Record<MediaRole, V86Image>> = {};
  for (const [role, source] of Object.entries(files.media) as [MediaRole, FileSource][]) media[role] = image(source);
  const spec: MachineSpec = {
    memory: files.memory,
    acpi: files.acpi,
    net: files.net,
    bios: image(files.bios),
    vgaBios: image(files.vgaBios),
    media,
  };
  if (files.cmdline !== undefined) spec.cmdline = files.cmdline;
  if (files.floppyFirst) spec.floppyFirst = true;
  if (files.builtin9p) spec.builtin9p = true;
  return spec;
}
