// A library guest's launch plan with its media as host files: what the CLI, the vm tests and
// the benchmarks boot headless. The plan itself is core's (core/guest/launch-plan.ts); this
// only says where a guest's files, its served hard disks and the firmware are, and builds the
// plan's FAT drives (a host folder offered as a read-only disk) to learn their sizes.

import type { MediaRole } from "../../core/guest/profile.js";
import { DEFAULT_SETTINGS, type GuestSettings } from "../../core/guest/settings.js";
import { launchPlan, type LaunchMachine, type LaunchOverrides, type LaunchPlan, type MediaSource } from "../../core/guest/launch-plan.js";
import type { FirmwarePaths, GuestLibrary } from "./library.js";
import { buildFatDrives } from "../fat/fat-drive.js";

export const fileSource = (path: string): MediaSource => ({ kind: "file", path });

export function firmwareSources(paths: FirmwarePaths): LaunchMachine["firmware"] {
  return { bios: fileSource(paths.bios), vgaBios: fileSource(paths.vgaBios) };
}

/** The plan of a built library guest, from its settings (none saved: the defaults) and this run's overrides. */
export function libraryPlan(library: GuestLibrary, name: string, settings: GuestSettings = DEFAULT_SETTINGS, overrides: LaunchOverrides = {}): LaunchPlan {
  const { profile, firmware, media, disks, root } = library.resolve(name, settings);
  const sources: Partial<Record<MediaRole, MediaSource>> = {};
  for (const [role, path] of Object.entries(media) as [MediaRole, string][]) sources[role] = fileSource(path);
  for (const [role, disk] of Object.entries(disks)) sources[role as MediaRole] = { kind: "disk", disk };
  return buildFatDrives(launchPlan({ kind: "guest", profile, settings, media: sources, ...(root === undefined ? {} : { root }) }, firmwareSources(firmware), overrides));
}
