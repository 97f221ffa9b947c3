// The v86 option builder: one place turns a guest's plan into V86Options, for the page and
// for the headless worker alike. Images arrive already resolved (a buffer or a URL); the
// runtime adds what only it has (the screen container, the wasm loader).

import type { V86Image, V86Options } from "v86";
import type { MediaRole, NetDevice } from "../guest/profile.js";
import type { LaunchMachine, MediaSource } from "../guest/launch-plan.js";

export const MiB = 1024 * 1024;
/** Below this v86 places the initrd past the end of RAM and faults (measured: 64 fails, 80 works). */
export const KERNEL_BOOT_MIN_MEMORY = 80;
export const VGA_MEMORY_MiB = 8;

export interface MachineSpec {
  memory: number;
  cmdline?: string;
  acpi: boolean;
  net: NetDevice;
  bios: V86Image;
  vgaBios: V86Image;
  media: Partial<Record<MediaRole, V86Image>>;
  /** A saved state (zstd-compressed, as v86 restores it) to start from instead of booting. */
  initialState?: V86Image;
  /** Serves the guest's virtio-9p device (tag "host9p"): whole T-messages in, R-messages out. */
  handle9p?: (request: Uint8Array, reply: (response: Uint8Array) => void) => void;
  /** A virtio-console device for the guest agent (/dev/hvc0). */
  virtioConsole?: boolean;
  /** Boot from the floppy even with hard disks attached (a boot floppy plus a data drive). */
  floppyFirst?: boolean;
  /** v86's own in-memory 9P file system instead of the host's server (the benchmark's reference). */
  builtin9p?: boolean;
  /** A second serial port (COM2), where the agent of a guest without virtio talks. */
  com2?: boolean;
  /** A virtio-balloon device: the guest's RAM can shrink and grow while it runs (core/v86/balloon.ts). */
  balloon?: boolean;
  /** A speed cap in percent of one host core, applied by the runtime (core/v86/speed-cap.ts). */
  cpuPercent?: number;
}

// v86's BootOrder values (v86.d.ts): 0x213 = CD, hard disk, floppy; 0x321 = floppy first.
const BOOT_CD_HDD_FLOPPY = 0x213;
const BOOT_FLOPPY_HDD_CD = 0x321;

/** The RAM a machine really boots with, in MiB: a kernel gets at least KERNEL_BOOT_MIN_MEMORY. */
export function bootMemory(spec: Pick<MachineSpec, "memory" | "media">): number {
  const bootsKernel = spec.media.bzimage !== undefined || spec.media.multiboot !== undefined;
  return bootsKernel ? Math.max(spec.memory, KERNEL_BOOT_MIN_MEMORY) : spec.memory;
}

export function buildV86Options(spec: MachineSpec): V86Options {
  const { media } = spec;
  const memory = bootMemory(spec);
  const options: V86Options = {
    memory_size: memory * MiB,
    vga_memory_size: VGA_MEMORY_MiB * MiB,
    bios: spec.bios,
    vga_bios: spec.vgaBios,
    acpi: spec.acpi,
    autostart: true,
    disable_speaker: true,
    fastboot: true,
    boot_order: media.fda !== undefined && (spec.floppyFirst || (media.hda === undefined && media.cdrom === undefined)) ? BOOT_FLOPPY_HDD_CD : BOOT_CD_HDD_FLOPPY,
  };
  if (media.bzimage) options.bzimage = media.bzimage;
  if (media.initrd) options.initrd = media.initrd;
  if (media.multiboot) options.multiboot = media.multiboot;
  if (media.hda) options.hda = media.hda;
  if (media.hdb) options.hdb = media.hdb;
  if (media.fda) options.fda = media.fda;
  if (media.cdrom) options.cdrom = media.cdrom;
  if (spec.cmdline !== undefined) options.cmdline = spec.cmdline;
  if (spec.initialState) options.initial_state = spec.initialState;
  // Said explicitly: v86 gives a machine without net_device an NE2000. Its typings list only
  // the two cards, but the emulator makes a card only for "ne2k" or "virtio" (starter and cpu).
  options.net_device = { type: spec.net } as { type: "ne2k" | "virtio" };
  if (spec.handle9p) options.filesystem = { handle9p: spec.handle9p };
  else if (spec.builtin9p) options.filesystem = {};
  if (spec.virtioConsole) options.virtio_console = { type: "none" };
  if (spec.com2) options.uart1 = true; // v86 counts from 0: uart1 is COM2 (0x2F8)
  if (spec.balloon) options.virtio_balloon = true;
  return options;
}

/**
 * A launch plan's machine as a MachineSpec: `image` turns each MediaSource into what v86 reads
 * (the page fetches URLs, the worker reads files). The host's 9P hook is the runtime's to add.
 */
export function machineSpec(machine: LaunchMachine, image: (source: MediaSource) => V86Image): MachineSpec {
  const media: Partial<Record<MediaRole, V86Image>> = {};
  for (const [role, source] of Object.entries(machine.media) as [MediaRole, MediaSource][]) {
    media[role] = role === "bzimage" || role === "multiboot" ? wordAligned(image(source)) : image(source);
  }
  const spec: MachineSpec = {
    memory: machine.memory,
    acpi: machine.acpi,
    net: machine.net,
    bios: image(machine.firmware.bios),
    vgaBios: image(machine.firmware.vgaBios),
    media,
  };
  if (machine.cmdline !== undefined) spec.cmdline = machine.cmdline;
  if (machine.floppyFirst) spec.floppyFirst = true;
  if (machine.p9 === "builtin") spec.builtin9p = true;
  if (machine.agentPort === "virtio") spec.virtioConsole = true;
  if (machine.agentPort === "com2") spec.com2 = true;
  if (machine.balloon) spec.balloon = true;
  if (machine.cpuPercent !== undefined && machine.cpuPercent < 100) spec.cpuPercent = machine.cpuPercent;
  if (machine.initialState) spec.initialState = image(machine.initialState);
  return spec;
}

/**
 * A kernel in a buffer whose length is a multiple of 4: v86's kernel loaders view it as 16- and
 * 32-bit words, which JavaScript refuses for other lengths ("byte length of Uint16Array should be
 * a multiple of 2"). Zeros after the image are never read by the kernel. A URL is fetched by v86
 * as it is; the host serves kernels from files, which the headless path reads into buffers.
 */
export function wordAligned(image: V86Image): V86Image {
  if (!("buffer" in image) || image.buffer.byteLength % 4 === 0) return image;
  const padded = new Uint8Array(Math.ceil(image.buffer.byteLength / 4) * 4);
  padded.set(new Uint8Array(image.buffer));
  return { buffer: padded.buffer };
}
