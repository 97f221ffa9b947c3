// One library, one resolver: a user's guest beside the built-in ones, planned by the same
// libraryPlan; its hard disk is served from the image and its overlay at the larger of the
// image's size and the saved disk size, its kernel and floppy stay files. Built-in names are kept.
import { describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GuestLibrary } from "../../../main/guests/library.js";
import { libraryPlan } from "../../../main/guests/launch.js";
import { addGuest } from "../../../main/guests/library-edit.js";
import { buildFatImage, materialize } from "../../../core/fat/image.js";
import { fileFromBytes } from "../../../core/fat/tree.js";
import { DEFAULT_SETTINGS } from "../../../core/guest/settings.js";

function fixture(): { library: GuestLibrary; root: string; data: string } {
  const root = mkdtempSync(join(tmpdir(), "unmachine-lib-"));
  const guests = join(root, "guests");
  const built = join(root, "cache");
  const data = join(root, "data");
  mkdirSync(join(guests, "demo"), { recursive: true });
  writeFileSync(join(guests, "demo", "guest.json"), JSON.stringify({ name: "demo", memory: 96, media: { bzimage: "kernel" } }));
  mkdirSync(join(built, "firmware"), { recursive: true });
  mkdirSync(join(built, "guests", "demo"), { recursive: true });
  writeFileSync(join(built, "firmware", "bios.bin"), Buffer.alloc(1024));
  writeFileSync(join(built, "firmware", "vgabios-stdvga.bin"), Buffer.alloc(1024));
  writeFileSync(join(built, "guests", "demo", "kernel"), "kernel");
  return { library: new GuestLibrary(guests, [built], data), root, data };
}

const MiB = 1024 * 1024;

describe("a user guest in the library", () => {
  it("is listed beside the built-in guests and planned with its hard disk served from image and overlay", () => {
    const { library, root, data } = fixture();
    const image = join(root, "win.img");
    const disk = materialize(buildFatImage([fileFromBytes("IO.SYS", new Uint8Array(8), 0), fileFromBytes("MSDOS.SYS", new Uint8Array(8), 0)]));
    writeFileSync(image, disk);
    const added = addGuest(library, image, { name: "win" });
    expect(added).toMatchObject({ name: "win", family: "dos" });
    expect(library.summaries().map((g) => [g.name, g.builtIn, g.family])).toEqual([
      ["demo", true, "linux"],
      ["win", false, "dos"],
    ]);

    const plan = libraryPlan(library, "win");
    const served = { base: image, overlay: join(data, "guests", "win", "hda.overlay"), size: disk.length };
    expect(plan.machine.media).toEqual({ hda: { kind: "served", size: disk.length } });
    expect(plan.services.disks).toEqual({ hda: served });
    expect(plan.machine).toMatchObject({ memory: 64, net: "ne2k", acpi: false });

    // A saved disk size larger than the image grows the disk the guest sees; a smaller one does not shrink it.
    const grown = libraryPlan(library, "win", { ...DEFAULT_SETTINGS, diskMiB: 100 });
    expect(grown.services.disks?.hda?.size).toBe(100 * MiB);
    expect(libraryPlan(library, "win", { ...DEFAULT_SETTINGS, diskMiB: 1 }).services.disks?.hda?.size).toBe(disk.length);
  });

  it("keeps a kernel and its initrd as files, and cannot take a built-in guest's name", () => {
    const { library, root } = fixture();
    const kernel = new Uint8Array(8192);
    kernel[0x1fe] = 0x55;
    kernel[0x1ff] = 0xaa;
    kernel.set(new TextEncoder().encode("HdrS"), 0x202);
    writeFileSync(join(root, "bzImage"), kernel);
    writeFileSync(join(root, "initrd.gz"), "initrd bytes");
    expect(() => addGuest(library, join(root, "bzImage"), { name: "demo" })).toThrow(/built-in guest's name/);
    const { name } = addGuest(library, join(root, "bzImage"), { initrd: join(root, "initrd.gz"), prompt: "# " });
    expect(name).toBe("bzimage");
    const plan = libraryPlan(library, name);
    expect(plan.machine.media).toEqual({ bzimage: { kind: "file", path: join(root, "bzImage") }, initrd: { kind: "file", path: join(root, "initrd.gz") } });
    expect(plan.services.disks).toBeUndefined();
    expect(plan.ready).toEqual({ kind: "prompt", prompt: "# " });
    expect(plan.machine).toMatchObject({ net: "virtio", cmdline: "console=ttyS0 console=tty0" });
  });
});
