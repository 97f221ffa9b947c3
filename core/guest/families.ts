// Guest families: what a user's guest gets when nothing else is known about it but what kind
// of system it is (detected from its image by core/media/family.ts, or set by the user).
// Each default comes from v86's own documentation, read at copy/v86 HEAD: Readme.md ("compatibility"),
// v86.d.ts (memory_size default 64 MiB, acpi default false, BootOrder), docs/networking.md (NE2000
// for old systems, VirtIO first where the guest has it), docs/windows-9x.md, docs/windows-nt.md,
// docs/filesystem.md (9P, tag host9p), and the profiles in src/browser/main.js.

import type { NetDevice } from "./profile.js";

export const FAMILIES = ["dos", "win3x", "win9x", "winnt", "linux", "other"] as const;
export type Family = (typeof FAMILIES)[number];

export function isFamily(value: unknown): value is Family {
  return typeof value === "string" && (FAMILIES as readonly string[]).includes(value);
}

export interface FamilyProfile {
  title: string;
  /** RAM in MiB. */
  memory: number;
  acpi: boolean;
  net: Exclude<NetDevice, "none">;
  /** The first boot device when the guest has a floppy with other drives: "floppy", else v86's CD, disk, floppy. */
  bootFirst: "floppy" | "cdrom";
  /** How host files reach the guest: 9P shares it mounts (host9p), or a FAT drive it reads as a disk. */
  files: "9p" | "fat-drive";
}

export const FAMILY_PROFILES: Record<Family, FamilyProfile> = {
  // main.js "msdos", "freedos": v86's default memory (64 MiB) and no ACPI; networking.md: "older OSes
  // like FreeDOS only support NE2000". A DOS boot floppy is booted before a data disk.
  dos: { title: "DOS", memory: 64, acpi: false, net: "ne2k", bootFirst: "floppy", files: "fat-drive" },
  // main.js "windows31": 64 MiB; Windows 3.x has no ACPI and an NE2000 driver in its network setup.
  win3x: { title: "Windows 3.x", memory: 64, acpi: false, net: "ne2k", bootFirst: "cdrom", files: "fat-drive" },
  // windows-9x.md: "-m 128 -M pc,acpi=off", "-nic user,model=ne2k_pci"; main.js "windows98": 128 MiB.
  win9x: { title: "Windows 9x", memory: 128, acpi: false, net: "ne2k", bootFirst: "cdrom", files: "fat-drive" },
  // windows-nt.md: NT 4.0 "acpi: false", 2000/XP "-m 512" and set to "Standard PC" (no ACPI), NE2000
  // ("Novell NE2000 Compatible Adapter", "model=ne2k_pci"); main.js "windows2000": 512 MiB.
  winnt: { title: "Windows NT/2000/XP", memory: 512, acpi: false, net: "ne2k", bootFirst: "cdrom", files: "fat-drive" },
  // Readme "Linux works pretty well"; networking.md: try VirtIO first; filesystem.md: 9P over virtio,
  // mounted with tag host9p. 128 MiB as the tiny guest and the buildroot profile use.
  linux: { title: "Linux", memory: 128, acpi: false, net: "virtio", bootFirst: "cdrom", files: "9p" },
  // Unknown systems: v86's defaults (no ACPI, CD, disk, floppy) and the NIC most old systems have.
  other: { title: "Other", memory: 128, acpi: false, net: "ne2k", bootFirst: "cdrom", files: "fat-drive" },
};

/** One line per family for messages: "dos, win3x, win9x, winnt, linux, other". */
export const FAMILY_LIST = FAMILIES.join(", ");
