// The launch plan of a user's guest for every family: the machine each family's profile gives
// (memory, ACPI, NIC, boot order) and how host files reach it (9P shares or a FAT drive), for the
// media each family typically comes on.
import { describe, expect, it } from "vitest";
import { launchPlan, plannedServices, type MediaSource } from "../../../core/guest/launch-plan.js";
import { FAMILIES, FAMILY_PROFILES, type Family } from "../../../core/guest/families.js";
import { parseProfile, type MediaRole } from "../../../core/guest/profile.js";
import { DEFAULT_SETTINGS, type GuestSettings } from "../../../core/guest/settings.js";

const file = (path: string): MediaSource => ({ kind: "file", path });
const firmware = { bios: file("/fw/bios.bin"), vgaBios: file("/fw/vgabios.bin") };
const disk: MediaSource = { kind: "disk", disk: { base: "/images/c.img", overlay: "/data/guests/g/hda.overlay", size: 512 * 1024 * 1024 } };

/** A user guest's profile as `unmachine add` makes it from the family's defaults. */
function profileOf(family: Family, media: Partial<Record<MediaRole, string>>) {
  const d = FAMILY_PROFILES[family];
  return parseProfile({ name: `a-${family}`, memory: d.memory, media, net: d.net, acpi: d.acpi, shares: d.files === "9p", family }, family);
}

const share: GuestSettings = { ...DEFAULT_SETTINGS, shares: [{ hostPath: "/home/me/work", tag: "work", readOnly: false }] };

describe("the launch plan of each family's guest", () => {
  const expected: Record<Family, { memory: number; net: string; acpi: boolean }> = {
    dos: { memory: 64, net: "ne2k", acpi: false },
    win3x: { memory: 64, net: "ne2k", acpi: false },
    win9x: { memory: 128, net: "ne2k", acpi: false },
    winnt: { memory: 512, net: "ne2k", acpi: false },
    linux: { memory: 128, net: "virtio", acpi: false },
    other: { memory: 128, net: "ne2k", acpi: false },
  };
  for (const family of FAMILIES) {
    it(`${family}: its memory, ACPI and NIC, the hard disk served from image and overlay`, () => {
      const plan = launchPlan({ kind: "guest", profile: profileOf(family, { hda: "hda" }), settings: DEFAULT_SETTINGS, media: { hda: disk } }, firmware);
      expect({ memory: plan.machine.memory, net: plan.machine.net, acpi: plan.machine.acpi }).toEqual(expected[family]);
      expect(plan.machine.media).toEqual({ hda: { kind: "served", size: 512 * 1024 * 1024 } });
      expect(plan.services.disks).toEqual({ hda: (disk as Extract<MediaSource, { kind: "disk" }>).disk });
      expect(plan.services.net).toEqual({ allowHost: false, forwards: [] });
      expect(plan.ready).toEqual({ kind: "quiet", ms: 4000 });
      expect(plan.machine.agentPort).toBeUndefined();
    });
  }

  it("offers shares over 9P to Linux only; the others get the shared folder as a read-only FAT drive on hdb", () => {
    const linux = launchPlan({ kind: "guest", profile: profileOf("linux", { hda: "hda" }), settings: share, media: { hda: disk } }, firmware);
    expect(linux.services.p9).toEqual({ kind: "shares", shares: share.shares });
    expect(linux.machine.p9).toBe("host");
    expect(linux.services.fatDrives).toBeUndefined();
    expect(linux.machine.media.hdb).toBeUndefined();
    for (const family of FAMILIES.filter((f) => FAMILY_PROFILES[f].files === "fat-drive")) {
      const plan = launchPlan({ kind: "guest", profile: profileOf(family, { hda: "hda" }), settings: share, media: { hda: disk } }, firmware);
      const drive = { folder: "/home/me/work", from: 'share "work"', share: share.shares[0] };
      expect([family, plan.services.p9, plan.machine.p9]).toEqual([family, undefined, undefined]);
      expect([family, plan.services.fatDrives, plan.machine.media.hdb]).toEqual([family, { hdb: drive }, { kind: "fat", drive }]);
      expect(plannedServices(plan)).toContain("disk");
    }
  });

  it("boots a DOS boot floppy before its hard disk; Windows boots its disk (or CD) before a floppy", () => {
    const media = { fda: file("/images/boot.img"), hda: disk };
    const dos = launchPlan({ kind: "guest", profile: profileOf("dos", { fda: "fda", hda: "hda" }), settings: DEFAULT_SETTINGS, media }, firmware);
    expect(dos.machine.floppyFirst).toBe(true);
    const win = launchPlan({ kind: "guest", profile: profileOf("win9x", { fda: "fda", hda: "hda" }), settings: DEFAULT_SETTINGS, media }, firmware);
    expect(win.machine.floppyFirst).toBeUndefined();
  });

  it("keeps a Linux kernel and initrd as files, with saved memory and speed cap", () => {
    const profile = { ...profileOf("linux", { bzimage: "bzimage", initrd: "initrd" }), cmdline: "console=ttyS0", prompt: "# " };
    const media = { bzimage: file("/k/vmlinuz"), initrd: file("/k/initrd.img") };
    const plan = launchPlan({ kind: "guest", profile, settings: { ...DEFAULT_SETTINGS, memory: 256, cpuPercent: 50 }, media }, firmware);
    expect(plan.machine).toMatchObject({ memory: 256, cpuPercent: 50, cmdline: "console=ttyS0", media });
    expect(plan.services.disks).toBeUndefined();
    expect(plan.ready).toEqual({ kind: "prompt", prompt: "# " });
  });

  it("refuses an unknown family in a profile", () => {
    expect(() => parseProfile({ name: "x", media: { hda: "hda" }, family: "os2" }, "x.json")).toThrow(/"family" must be one of dos, win3x, win9x, winnt, linux, other/);
  });
});
