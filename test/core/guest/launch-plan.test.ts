// The launch plan: what machine, host services and ready signal a guest gets, for the tiny
// guest, a dropped kernel, dropped disk images and a legacy guest with the agent on COM2.
import { describe, expect, it } from "vitest";
import { filesOffered, launchPlan, LaunchError, DROPPED_KERNEL_CMDLINE, plannedServices, type MediaSource } from "../../../core/guest/launch-plan.js";
import { parseProfile } from "../../../core/guest/profile.js";
import { DEFAULT_SETTINGS, type GuestSettings } from "../../../core/guest/settings.js";

const file = (path: string): MediaSource => ({ kind: "file", path });
const firmware = { bios: file("/fw/bios.bin"), vgaBios: file("/fw/vgabios.bin") };

const tinyJson = {
  name: "tiny",
  memory: 128,
  media: { bzimage: "vmlinuz", initrd: "initrd.img" },
  cmdline: "console=ttyS0",
  net: "virtio",
  agent: true,
  shares: true,
  prompt: "tiny:[^\\n]*# ",
};
const tiny = parseProfile(tinyJson, "tiny");
const tinyMedia = { bzimage: file("/g/vmlinuz"), initrd: file("/g/initrd.img") };
const saved: GuestSettings = {
  shares: [{ hostPath: "/home/me/work", tag: "work", readOnly: false }],
  forwards: [{ hostPort: 8080, guestPort: 80 }],
  allowHost: false,
  clipboard: true,
};

describe("a library guest with virtio (tiny)", () => {
  it("gets a virtio NIC, the agent on virtio-console, its saved shares over 9P, and waits for its prompt", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: saved, media: tinyMedia }, firmware);
    expect(plan.machine).toEqual({ memory: 128, cmdline: "console=ttyS0", acpi: false, net: "virtio", firmware, media: tinyMedia, agentPort: "virtio", p9: "host" });
    expect(plan.services).toEqual({
      p9: { kind: "shares", shares: saved.shares },
      net: { allowHost: false, forwards: [{ hostPort: 8080, guestPort: 80 }] },
      agent: { port: "virtio", clipboard: true },
    });
    expect(plan.ready).toEqual({ kind: "prompt", prompt: "tiny:[^\\n]*# " });
  });

  it("gives a guest that mounts shares its 9P device with nothing shared, so its machine is the same as with shares", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: DEFAULT_SETTINGS, media: tinyMedia }, firmware);
    expect(plan.services.p9).toEqual({ kind: "shares", shares: [] });
    expect(plan.machine.p9).toBe("host");
    const shared = launchPlan({ kind: "guest", profile: tiny, settings: DEFAULT_SETTINGS, media: tinyMedia }, firmware, { shares: [{ tag: "a", hostPath: "/srv/a", readOnly: false }] });
    expect(shared.machine).toEqual(plan.machine);
  });

  it("gives v86's own 9P in place of the host's when nothing is shared, and refuses it over shares or a root folder", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: DEFAULT_SETTINGS, media: tinyMedia }, firmware, { builtin9p: true });
    expect(plan.machine.p9).toBe("builtin");
    expect(plan.services.p9).toBeUndefined();
    expect(() => launchPlan({ kind: "guest", profile: tiny, settings: saved, media: tinyMedia }, firmware, { builtin9p: true })).toThrow(/v86's own 9P and the host's files/);
    expect(() => launchPlan({ kind: "guest", profile: tiny, settings: DEFAULT_SETTINGS, media: tinyMedia }, firmware, { builtin9p: true, rootFolder: "/srv/root" })).toThrow(/v86's own 9P and the host's files/);
  });

  it("lets this run's shares and forwards replace saved ones of the same name or port, and its memory win", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: saved, media: tinyMedia }, firmware, {
      memory: 256,
      shares: [{ hostPath: "/tmp/other", tag: "work", readOnly: true }],
      forwards: [{ hostPort: 8080, guestPort: 8000 }],
      allowHost: true,
    });
    expect(plan.machine.memory).toBe(256);
    expect(plan.services.p9).toEqual({ kind: "shares", shares: [{ hostPath: "/tmp/other", tag: "work", readOnly: true }] });
    expect(plan.services.net).toEqual({ allowHost: true, forwards: [{ hostPort: 8080, guestPort: 8000 }] });
    expect(() => launchPlan({ kind: "guest", profile: tiny, settings: saved, media: tinyMedia }, firmware, { memory: 8 })).toThrow(/memory must be/);
  });

  it("boots from a host folder as its root instead of its shares", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: saved, media: tinyMedia }, firmware, { rootFolder: "/srv/root" });
    expect(plan.machine.cmdline).toBe("console=ttyS0 root=host9p rootfstype=9p");
    expect(plan.services.p9).toEqual({ kind: "root", folder: "/srv/root" });
  });

  it("boots a guest with a built root from that folder, read-only, beside the user's shares", () => {
    const desktop = parseProfile({ ...tinyJson, name: "desktop", root: "root" }, "desktop");
    const source = { kind: "guest", profile: desktop, settings: saved, media: tinyMedia, root: "/cache/guests/desktop/root" } as const;
    const plan = launchPlan(source, firmware);
    expect(plan.services.p9).toEqual({
      kind: "shares",
      shares: [{ tag: "root", hostPath: "/cache/guests/desktop/root", readOnly: true, confirmedSensitive: true }, ...saved.shares],
    });
    expect(plan.machine.p9).toBe("host");
    expect(() => launchPlan(source, firmware, { rootFolder: "/srv/root" })).toThrow(/boots its own root folder/);
    expect(() => launchPlan(source, firmware, { shares: [{ hostPath: "/tmp/x", tag: "root", readOnly: false }] })).toThrow(/share name "root" is its root folder's/);
    expect(() => launchPlan({ ...source, root: undefined }, firmware)).toThrow(/root folder "root" is not built/);
  });

  it("takes this run's network card in place of the profile's", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: saved, media: tinyMedia }, firmware, { nic: "ne2k" });
    expect(plan.machine.net).toBe("ne2k");
    expect(plan.services.net).toEqual({ allowHost: false, forwards: [{ hostPort: 8080, guestPort: 80 }] });
  });

  it("has no NIC and no network service when the run says net none", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: saved, media: tinyMedia }, firmware, { net: false });
    expect(plan.machine.net).toBe("none");
    expect(plan.services.net).toBeUndefined();
  });
});

describe("a dropped bzImage", () => {
  const source = { kind: "image", name: "vmlinuz-6.1", role: "bzimage", image: file("/tmp/vmlinuz-6.1") } as const;

  it("gets its console on serial, no NIC and no services, and counts as ready once quiet", () => {
    const plan = launchPlan(source, firmware);
    expect(plan.machine).toEqual({ memory: 128, cmdline: DROPPED_KERNEL_CMDLINE, acpi: true, net: "none", firmware, media: { bzimage: source.image } });
    expect(plan.services).toEqual({});
    expect(plan.ready.kind).toBe("quiet");
  });

  it("gets an NE2000 and the network when the run asks for it, as any dropped image does", () => {
    const plan = launchPlan(source, firmware, { forwards: [{ hostPort: 2222, guestPort: 22 }] });
    expect(plan.machine.net).toBe("ne2k");
    expect(plan.services.net).toEqual({ allowHost: false, forwards: [{ hostPort: 2222, guestPort: 22 }] });
  });

  it("refuses shares: nothing says the kernel mounts 9P", () => {
    expect(() => launchPlan(source, firmware, { shares: [{ hostPath: "/x", tag: "x", readOnly: false }] })).toThrow(LaunchError);
  });
});

describe("dropped floppy and hard-disk images", () => {
  it("have no NIC unless the network is asked for, then an NE2000", () => {
    const floppy = { kind: "image", name: "dos.img", role: "fda", image: { kind: "bytes", bytes: new Uint8Array(1474560) } } as const;
    expect(launchPlan(floppy, firmware).machine.net).toBe("none");
    expect(launchPlan(floppy, firmware).machine.cmdline).toBeUndefined();
    expect(launchPlan(floppy, firmware, { net: true }).machine.net).toBe("ne2k");
    const disk = { kind: "image", name: "win95.img", role: "hda", image: file("/tmp/win95.img") } as const;
    const plan = launchPlan(disk, firmware, { allowHost: true });
    expect(plan.machine.net).toBe("ne2k");
    expect(plan.services.net).toEqual({ allowHost: true, forwards: [] });
  });

  it("put a --fat-drive folder on the next free drive and still boot the floppy", () => {
    const drive = { folder: "/tmp/files", from: "--fat-drive" };
    const floppy = launchPlan({ kind: "image", name: "dos.img", role: "fda", image: file("/tmp/dos.img") }, firmware, { fatDrive: "/tmp/files" });
    expect(floppy.machine.media.hda).toEqual({ kind: "fat", drive });
    expect(floppy.services.fatDrives).toEqual({ hda: drive });
    expect(floppy.machine.floppyFirst).toBe(true);
    const disk = launchPlan({ kind: "image", name: "c.img", role: "hda", image: file("/tmp/c.img") }, firmware, { fatDrive: "/tmp/files" });
    expect(disk.machine.media.hdb).toEqual({ kind: "fat", drive });
    expect(disk.machine.floppyFirst).toBeUndefined();
    expect(plannedServices(disk)).toEqual(["disk"]);
  });
});

describe("a legacy guest without virtio that runs the agent", () => {
  const dos = parseProfile({ name: "dos", memory: 32, media: { hda: "c.img" }, net: "ne2k", agent: true }, "dos");

  it("talks to the agent on COM2, has its NE2000 and the network, and is ready at the agent's hello", () => {
    const plan = launchPlan({ kind: "guest", profile: dos, settings: DEFAULT_SETTINGS, media: { hda: file("/g/c.img") } }, firmware);
    expect(plan.machine.agentPort).toBe("com2");
    expect(plan.machine.net).toBe("ne2k");
    expect(plan.services.agent).toEqual({ port: "com2", clipboard: false });
    expect(plan.services.net).toEqual({ allowHost: false, forwards: [] });
    expect(plan.ready).toEqual({ kind: "agent" });
  });

  it("has no 9P device and cannot boot from a host folder", () => {
    const plan = launchPlan({ kind: "guest", profile: dos, settings: saved, media: { hda: file("/g/c.img") } }, firmware);
    expect(plan.services.p9).toBeUndefined();
    expect(() => launchPlan({ kind: "guest", profile: dos, settings: saved, media: {} }, firmware, { rootFolder: "/r" })).toThrow(/boot from 9P/);
  });
});

describe("a guest without 9P is offered its shared folder as a read-only FAT drive", () => {
  const dos = parseProfile({ name: "dos", memory: 32, media: { hda: "c.img" }, family: "dos" }, "dos");
  const media = { hda: file("/g/c.img") };
  const two: GuestSettings = {
    ...DEFAULT_SETTINGS,
    shares: [
      { hostPath: "/home/me/games", tag: "games", readOnly: false },
      { hostPath: "/home/me/docs", tag: "docs", readOnly: true },
    ],
  };

  it("puts its first saved share on the next free IDE disk, served by the host", () => {
    const plan = launchPlan({ kind: "guest", profile: dos, settings: two, media }, firmware);
    const drive = { folder: "/home/me/games", from: 'share "games"', share: two.shares[0] };
    expect(plan.machine.media).toEqual({ hda: media.hda, hdb: { kind: "fat", drive } });
    expect(plan.services).toEqual({ fatDrives: { hdb: drive } });
    expect(plan.machine.p9).toBeUndefined();
    expect(plannedServices(plan)).toEqual(["disk"]);
    expect(filesOffered(dos)).toBe("fat-drive");
  });

  it("boots a kernel guest with the drive as its first hard disk, and gives nothing without a share", () => {
    const kernel = { ...dos, media: { bzimage: "vmlinuz" } };
    const plan = launchPlan({ kind: "guest", profile: kernel, settings: two, media: { bzimage: file("/g/vmlinuz") } }, firmware);
    expect(plan.machine.media.hda).toEqual({ kind: "fat", drive: { folder: "/home/me/games", from: 'share "games"', share: two.shares[0] } });
    expect(plan.machine.media.hdb).toBeUndefined();
    const none = launchPlan({ kind: "guest", profile: dos, settings: DEFAULT_SETTINGS, media }, firmware);
    expect(none.machine.media.hdb).toBeUndefined();
    expect(none.services.fatDrives).toBeUndefined();
  });

  it("takes this run's --fat-drive over the saved share, and this run's --share too", () => {
    const flag = launchPlan({ kind: "guest", profile: dos, settings: two, media }, firmware, { fatDrive: "/tmp/now" });
    expect(flag.services.fatDrives).toEqual({ hdb: { folder: "/tmp/now", from: "--fat-drive" } });
    const given = { hostPath: "/tmp/x", tag: "x", readOnly: false };
    const shared = launchPlan({ kind: "guest", profile: dos, settings: two, media }, firmware, { shares: [given] });
    expect(shared.services.fatDrives).toEqual({ hdb: { folder: "/tmp/x", from: 'share "x"', share: given } });
    expect(shared.services.p9).toBeUndefined();
  });

  it("keeps 9P for a guest that mounts it, even with --fat-drive beside it", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: saved, media: tinyMedia }, firmware, { fatDrive: "/tmp/now" });
    expect(plan.services.p9).toEqual({ kind: "shares", shares: saved.shares });
    expect(plan.services.fatDrives).toEqual({ hda: { folder: "/tmp/now", from: "--fat-drive" } });
    expect(filesOffered(tiny)).toBe("9p");
  });

  it("says so when no IDE disk is free for the drive", () => {
    const both = { hda: file("/g/c.img"), hdb: file("/g/d.img") };
    expect(() => launchPlan({ kind: "guest", profile: { ...dos, media: { hda: "c.img", hdb: "d.img" } }, settings: two, media: both }, firmware)).toThrow(
      'dos: share "games" needs a free hard disk, and both (hda, hdb) are taken',
    );
  });
});

describe("a guest's saved resources and served disks", () => {
  const disk = { base: "/images/dos.img", overlay: "/data/guests/dos/hda.overlay", size: 64 * 1024 * 1024 };
  const dos = parseProfile({ name: "dos", memory: 16, media: { hda: "dos.img" }, balloon: false }, "dos");

  it("takes its saved memory and speed cap, and this run's memory over both", () => {
    const settings = { ...DEFAULT_SETTINGS, memory: 200, cpuPercent: 25 };
    const plan = launchPlan({ kind: "guest", profile: tiny, settings, media: tinyMedia }, firmware);
    expect(plan.machine.memory).toBe(200);
    expect(plan.machine.cpuPercent).toBe(25);
    expect(launchPlan({ kind: "guest", profile: tiny, settings, media: tinyMedia }, firmware, { memory: 96 }).machine.memory).toBe(96);
  });

  it("has no speed cap at 100 percent, and a balloon only when its kernel has the driver", () => {
    const plan = launchPlan({ kind: "guest", profile: tiny, settings: { ...DEFAULT_SETTINGS, cpuPercent: 100 }, media: tinyMedia }, firmware);
    expect(plan.machine.cpuPercent).toBeUndefined();
    expect(plan.machine.balloon).toBeUndefined();
    const ballooned = parseProfile({ name: "b", media: { bzimage: "k" }, balloon: true }, "b");
    expect(launchPlan({ kind: "guest", profile: ballooned, settings: DEFAULT_SETTINGS, media: tinyMedia }, firmware).machine.balloon).toBe(true);
  });

  it("serves a hard disk from its image and overlay: the runtime sees only its size", () => {
    const plan = launchPlan({ kind: "guest", profile: dos, settings: DEFAULT_SETTINGS, media: { hda: { kind: "disk", disk } } }, firmware);
    expect(plan.machine.media).toEqual({ hda: { kind: "served", size: disk.size } });
    expect(plan.services.disks).toEqual({ hda: disk });
    expect(JSON.stringify(plan.machine)).not.toContain(disk.overlay);
  });

  it("refuses an overlay for anything but a hard disk", () => {
    const floppy = parseProfile({ name: "f", media: { fda: "f.img" } }, "f");
    expect(() => launchPlan({ kind: "guest", profile: floppy, settings: DEFAULT_SETTINGS, media: { fda: { kind: "disk", disk } } }, firmware)).toThrow(LaunchError);
  });
});
