// Turning a machine spec into v86 options: the memory, boot order, media and network a guest
// boots with.

import { describe, expect, it } from "vitest";
import type { V86Image } from "v86";
import { KERNEL_BOOT_MIN_MEMORY, MiB, VGA_MEMORY_MiB, buildV86Options, machineSpec, wordAligned, type MachineSpec } from "../../../core/v86/options.js";
import type { LaunchMachine, MediaSource } from "../../../core/guest/launch-plan.js";

function image(size: number): V86Image {
  return { buffer: new ArrayBuffer(size) };
}

function spec(overrides: Partial<MachineSpec>): MachineSpec {
  return {
    memory: 128,
    acpi: false,
    net: "none",
    bios: image(1),
    vgaBios: image(2),
    media: {},
    ...overrides,
  };
}

const BOOT_CD_HDD_FLOPPY = 0x213;
const BOOT_FLOPPY_HDD_CD = 0x321;

describe("buildV86Options", () => {
  it("raises the memory of a kernel boot to the minimum v86 needs for kernel and initrd", () => {
    const media = { bzimage: image(3), initrd: image(4) };
    expect(buildV86Options(spec({ memory: 64, media })).memory_size).toBe(KERNEL_BOOT_MIN_MEMORY * MiB);
    expect(KERNEL_BOOT_MIN_MEMORY).toBeGreaterThanOrEqual(80);
    expect(buildV86Options(spec({ memory: 32, media: { multiboot: image(3) } })).memory_size).toBe(KERNEL_BOOT_MIN_MEMORY * MiB);
    expect(buildV86Options(spec({ memory: 256, media })).memory_size).toBe(256 * MiB);
  });

  it("keeps a small memory size for a disk boot", () => {
    expect(buildV86Options(spec({ memory: 16, media: { fda: image(5) } })).memory_size).toBe(16 * MiB);
    expect(buildV86Options(spec({ memory: 32, media: { hda: image(5) } })).memory_size).toBe(32 * MiB);
  });

  it("gives VGA its memory and passes the firmware through", () => {
    const s = spec({ media: { hda: image(5) } });
    const options = buildV86Options(s);
    expect(options.vga_memory_size).toBe(VGA_MEMORY_MiB * MiB);
    expect(options.bios).toBe(s.bios);
    expect(options.vga_bios).toBe(s.vgaBios);
    expect(options.autostart).toBe(true);
  });

  it("boots a floppy-only machine from the floppy first", () => {
    expect(buildV86Options(spec({ media: { fda: image(5) } })).boot_order).toBe(BOOT_FLOPPY_HDD_CD);
  });

  it("boots from the CD first when there is a CD, with or without a floppy", () => {
    expect(buildV86Options(spec({ media: { cdrom: image(5) } })).boot_order).toBe(BOOT_CD_HDD_FLOPPY);
    expect(buildV86Options(spec({ media: { cdrom: image(5), fda: image(6) } })).boot_order).toBe(BOOT_CD_HDD_FLOPPY);
  });

  it("does not boot from a floppy ahead of a hard disk", () => {
    expect(buildV86Options(spec({ media: { hda: image(5), fda: image(6) } })).boot_order).toBe(BOOT_CD_HDD_FLOPPY);
  });

  it("puts each medium in its drive and nothing in the others", () => {
    const media = { bzimage: image(1), initrd: image(2) };
    const options = buildV86Options(spec({ media, cmdline: "console=ttyS0" }));
    expect(options.bzimage).toBe(media.bzimage);
    expect(options.initrd).toBe(media.initrd);
    expect(options.cmdline).toBe("console=ttyS0");
    for (const key of ["hda", "fda", "cdrom", "multiboot", "initial_state"] as const) {
      expect(options[key], key).toBeUndefined();
    }
    const disks = { hda: image(3), fda: image(4), cdrom: image(5) };
    const withDisks = buildV86Options(spec({ media: disks }));
    expect(withDisks.hda).toBe(disks.hda);
    expect(withDisks.fda).toBe(disks.fda);
    expect(withDisks.cdrom).toBe(disks.cdrom);
    expect(withDisks.bzimage).toBeUndefined();
    expect(withDisks.cmdline).toBeUndefined();
  });

  it("passes an initial state and the ACPI setting through", () => {
    const state = image(9);
    const options = buildV86Options(spec({ media: { hda: image(1) }, initialState: state, acpi: true }));
    expect(options.initial_state).toBe(state);
    expect(options.acpi).toBe(true);
  });

  it("adds no network card for net none", () => {
    // v86 adds an NE2000 when net_device is absent: "none" must be said.
    const options = buildV86Options(spec({ net: "none", media: { hda: image(1) } }));
    expect(options.net_device).toEqual({ type: "none" });
  });

  it("maps ne2k and virtio to the network card type", () => {
    expect(buildV86Options(spec({ net: "ne2k", media: { hda: image(1) } })).net_device).toEqual({ type: "ne2k" });
    expect(buildV86Options(spec({ net: "virtio", media: { hda: image(1) } })).net_device).toEqual({ type: "virtio" });
  });
});

describe("kernels for v86's loader", () => {
  it("pads a kernel to a multiple of four bytes, keeping every byte of it", () => {
    const bytes = new Uint8Array(306_521).map((_, i) => i % 251);
    const aligned = wordAligned({ buffer: bytes.buffer });
    if (!("buffer" in aligned)) throw new Error("a buffer stays a buffer");
    expect(aligned.buffer.byteLength).toBe(306_524);
    expect(new Uint8Array(aligned.buffer).subarray(0, bytes.length)).toEqual(bytes);
    expect([...new Uint8Array(aligned.buffer).subarray(bytes.length)]).toEqual([0, 0, 0]);
    // Whole words are left as they are.
    const even = { buffer: new ArrayBuffer(4096) };
    expect(wordAligned(even)).toBe(even);
  });
});

describe("a launch plan's balloon and speed cap", () => {
  const machine: LaunchMachine = {
    memory: 128,
    acpi: false,
    net: "none",
    firmware: { bios: { kind: "bytes", bytes: new Uint8Array(4) }, vgaBios: { kind: "bytes", bytes: new Uint8Array(4) } },
    media: {},
  };
  const load = (source: MediaSource): V86Image => ({ buffer: source.kind === "bytes" ? (source.bytes.buffer as ArrayBuffer) : new ArrayBuffer(4) });

  it("gives a machine planned with a balloon v86's virtio-balloon device, and no other machine one", () => {
    expect(buildV86Options(machineSpec({ ...machine, balloon: true }, load)).virtio_balloon).toBe(true);
    expect(buildV86Options(machineSpec(machine, load)).virtio_balloon).toBeUndefined();
  });

  it("hands the runtime the speed cap, none at 100 %", () => {
    expect(machineSpec({ ...machine, cpuPercent: 25 }, load).cpuPercent).toBe(25);
    expect(machineSpec({ ...machine, cpuPercent: 100 }, load).cpuPercent).toBeUndefined();
  });
});
