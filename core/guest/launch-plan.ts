// The launch plan: the one place where a guest (a profile and its settings, or an image the
// user dropped) and this run's overrides become a machine, the host services it is given and
// how to tell it is ready. The page, the headless worker, the CLI and the tests all start
// guests from it; the host attaches its services from `services`. Pure data in, data out:
// where media bytes come from (a file, a URL, bytes in hand) is a MediaSource the runtime reads.

import { FAMILY_PROFILES } from "./families.js";
import { checkMemory, MEMORY_LIMITS, type GuestProfile, type MediaRole, type NetDevice } from "./profile.js";
import type { ForwardSetting, GuestSettings, ShareSetting } from "./settings.js";

/**
 * Where one medium's bytes come from: a host file (headless), a URL (the page), bytes in hand,
 * or a hard disk the host serves block by block through the plan's "disk" service ("served":
 * what the runtime sees; "disk": what a library guest's source names, the base image and the
 * copy-on-write overlay its writes go to).
 */
export type MediaSource =
  | { kind: "file"; path: string }
  /** `sha256`, when the host knows it: the bytes' SHA-256 (a saved state's), so a page that holds them need not fetch them. */
  | { kind: "url"; url: string; size: number; sha256?: string }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "served"; size: number }
  | { kind: "disk"; disk: ServedDisk }
  | { kind: "fat"; drive: FatDrive };

/** The hard disks a host serves: the image is never written; the guest's writes go to the overlay. */
export type DiskRole = "hda" | "hdb";

export interface ServedDisk {
  /** The original image, opened read-only. */
  base: string;
  /** The copy-on-write overlay file (created on first use). */
  overlay: string;
  /** The disk's size as the guest sees it, in bytes: at least the base's, larger once grown. */
  size: number;
  /** A one-off run's overlay: removed when the run ends. */
  temporary?: boolean;
}

/**
 * A host folder the guest reads as a read-only FAT hard disk: how a guest without 9P (DOS,
 * Windows) is offered its shared folder, or this run's --fat-drive. The host builds the disk
 * from the folder (main/fat/fat-drive.ts) and serves it through the plan's "disk" service like
 * a library guest's disk; until it has, the machine's medium is `{ kind: "fat" }`. What the
 * guest writes to it stays in the host's memory for the run; the folder is never written.
 */
export interface FatDrive {
  /** The host folder, as it is when the guest starts (a snapshot). */
  folder: string;
  /** Where it comes from, for messages: `share "games"` or `--fat-drive`. */
  from: string;
  /** The shared folder it is offered for (absent for --fat-drive): a sensitive one needs its confirmation. */
  share?: ShareSetting;
  /** The disk's size in bytes, once the host has built it. */
  size?: number;
}

export type AgentPort = "virtio" | "com2";

export interface LaunchMachine {
  /** RAM in MiB. */
  memory: number;
  cmdline?: string;
  acpi: boolean;
  net: NetDevice;
  firmware: { bios: MediaSource; vgaBios: MediaSource };
  media: Partial<Record<MediaRole, MediaSource>>;
  /** Boot from the floppy even with hard disks attached (a boot floppy plus a data drive). */
  floppyFirst?: boolean;
  /** The device the agent talks on; absent: the machine has no agent device. */
  agentPort?: AgentPort;
  /** The virtio-9p device: served by the host, or v86's own in-memory one (the benchmark's reference). */
  p9?: "host" | "builtin";
  /** A virtio-balloon device, for a guest whose kernel has the driver: its RAM can shrink and grow live. */
  balloon?: boolean;
  /** A speed cap in percent of one host core (1 to 99); absent: as fast as the host runs it. */
  cpuPercent?: number;
  /**
   * A saved state to resume from (v86's initial_state, zstd-compressed): bytes headless, a URL
   * the host serves in the page. The machine is "running" as soon as it is restored.
   */
  initialState?: MediaSource;
}

/** What the guest's 9P device serves: its shares (each at /mnt/<tag>) or a host folder as its root. */
export type FilesService = { kind: "shares"; shares: ShareSetting[] } | { kind: "root"; folder: string };

export interface LaunchServices {
  p9?: FilesService;
  net?: { allowHost: boolean; forwards: ForwardSetting[] };
  agent?: { port: AgentPort; clipboard: boolean };
  /** Hard disks served block by block from a base image and an overlay. */
  disks?: Partial<Record<DiskRole, ServedDisk>>;
  /** Host folders served block by block as read-only FAT hard disks. */
  fatDrives?: Partial<Record<DiskRole, FatDrive>>;
}

/** How to tell the guest is up: its prompt on the console, its agent's hello, or a quiet screen. */
export type ReadySignal = { kind: "prompt"; prompt: string } | { kind: "agent" } | { kind: "quiet"; ms: number };

export interface LaunchPlan {
  /** The guest's name (its session and settings are named so), or the dropped file's name. */
  guest: string;
  title: string;
  machine: LaunchMachine;
  services: LaunchServices;
  ready: ReadySignal;
}

/** What a launch starts from: a library guest, or an image the user dropped (with its detected role). */
export type LaunchSource =
  | {
      kind: "guest";
      profile: GuestProfile;
      settings: GuestSettings;
      media: Partial<Record<MediaRole, MediaSource>>;
      /** The host folder of the profile's root (profile.root), for a guest whose root is built. */
      root?: string;
    }
  | { kind: "image"; name: string; role: MediaRole; image: MediaSource };

/** This run's changes to what the guest is saved as (the CLI's flags, the page's memory field, tests). */
export interface LaunchOverrides {
  memory?: number;
  /** Shares for this run: one with a saved share's tag replaces it. */
  shares?: ShareSetting[];
  /** A host folder as the guest's whole root file system (root=host9p). */
  rootFolder?: string;
  allowHost?: boolean;
  /** Forwards for this run: one with a saved forward's host port replaces it. */
  forwards?: ForwardSetting[];
  /** Asks for (true) or leaves out (false) the network, whatever the profile or settings say. */
  net?: boolean;
  /** The network card, whatever the profile says (an NE2000 for a guest that also has virtio). */
  nic?: Exclude<NetDevice, "none">;
  agentPort?: AgentPort;
  /**
   * A host folder as a read-only FAT hard disk for this run, on the next free IDE disk. For a
   * guest that is offered its shares as a FAT drive, it takes the place of the saved share's.
   */
  fatDrive?: string;
  /** v86's own in-memory 9P device for this run, in place of the host's (nothing may be shared). */
  builtin9p?: boolean;
  /** A speed cap for this run, in percent of one host core (100: none). */
  cpuPercent?: number;
}

export class LaunchError extends Error {
  override name = "LaunchError";
}

/** How long a guest without a prompt or agent must be quiet to count as booted. */
export const SETTLED_MS = 4000;

/** The command line for a bare Linux kernel dropped by a user: its console on the first serial port. */
export const DROPPED_KERNEL_CMDLINE = "console=ttyS0 console=tty0";

const ROOT_CMDLINE = "root=host9p rootfstype=9p";

/** The share a guest with a built root (GuestProfile.root) finds it in, beside the user's shares. */
export const ROOT_SHARE_TAG = "root";

/**
 * The agent's device: virtio-console for a guest with virtio drivers (it has a virtio NIC or
 * mounts 9P shares), COM2 otherwise (DOS, Windows 9x: every PC has a second serial port).
 */
function agentPortFor(profile: GuestProfile): AgentPort {
  return profile.net === "virtio" || profile.shares ? "virtio" : "com2";
}

/** Saved entries with this run's given ones, a given one replacing a saved one with the same key. */
function merged<T>(saved: T[], given: T[] | undefined, same: (a: T, b: T) => boolean): T[] {
  if (!given) return saved;
  return [...saved.filter((s) => !given.some((g) => same(s, g))), ...given];
}

export function launchPlan(source: LaunchSource, firmware: LaunchMachine["firmware"], overrides: LaunchOverrides = {}): LaunchPlan {
  const plan = source.kind === "guest" ? guestPlan(source, firmware, overrides) : imagePlan(source, firmware, overrides);
  const drive = overrides.fatDrive !== undefined ? { folder: overrides.fatDrive, from: "--fat-drive" } : source.kind === "guest" ? sharedDrive(source, overrides) : undefined;
  if (drive) {
    const { media } = plan.machine;
    // The next free IDE disk: a slave without a master is not probed by every guest.
    const role = media.hda ? "hdb" : "hda";
    if (media[role]) throw new LaunchError(`${plan.guest}: ${drive.from} needs a free hard disk, and both (hda, hdb) are taken`);
    if (media.fda && !media.hda && !media.cdrom) plan.machine.floppyFirst = true; // still boot the user's floppy
    media[role] = { kind: "fat", drive };
    (plan.services.fatDrives ??= {})[role] = drive;
  }
  if (overrides.builtin9p) {
    // v86's own in-memory 9P in place of the host's (the services benchmark's reference): only
    // where the host would serve nothing on it, for there is one 9P device.
    const p9 = plan.services.p9;
    if (p9 && (p9.kind !== "shares" || p9.shares.length > 0)) throw new LaunchError(`${plan.guest}: v86's own 9P and the host's files cannot both be the guest's 9P device`);
    delete plan.services.p9;
    plan.machine.p9 = "builtin";
  }
  return plan;
}

/**
 * How a guest that does not mount 9P is offered host files (core/guest/families.ts): its first
 * shared folder (this run's --share, else its first saved one) as a read-only FAT drive. One
 * drive only: the others are not offered (the settings panel says so); a guest's own hard disk
 * leaves one IDE disk free, and one drive letter is what a DOS user looks for.
 */
function sharedDrive(source: Extract<LaunchSource, { kind: "guest" }>, overrides: LaunchOverrides): FatDrive | undefined {
  if (source.profile.shares) return undefined;
  const share = overrides.shares?.[0] ?? source.settings.shares[0];
  return share ? { folder: share.hostPath, from: `share "${share.tag}"`, share } : undefined;
}

/** How a guest is offered host folders: 9P shares it mounts at /mnt/<tag>, or one read-only FAT drive. */
export function filesOffered(profile: Pick<GuestProfile, "shares">): "9p" | "fat-drive" {
  return profile.shares ? "9p" : "fat-drive";
}

function guestPlan(source: Extract<LaunchSource, { kind: "guest" }>, firmware: LaunchMachine["firmware"], overrides: LaunchOverrides): LaunchPlan {
  const { profile, settings } = source;
  const name = profile.name;
  const machine: LaunchMachine = {
    memory: checkMemory(overrides.memory ?? settings.memory ?? profile.memory),
    acpi: profile.acpi,
    net: overrides.net === false ? "none" : profile.net === "none" && overrides.net ? "ne2k" : profile.net,
    firmware,
    media: { ...source.media },
  };
  if (overrides.nic && machine.net !== "none") machine.net = overrides.nic;
  if (profile.cmdline !== undefined) machine.cmdline = profile.cmdline;
  if (profile.balloon) machine.balloon = true;
  // A boot floppy with a data disk or CD (DOS): the floppy first, as the family says.
  const media = machine.media;
  if (profile.family && FAMILY_PROFILES[profile.family].bootFirst === "floppy" && media.fda && (media.hda || media.cdrom)) machine.floppyFirst = true;
  const cpu = overrides.cpuPercent ?? settings.cpuPercent;
  if (cpu !== undefined && cpu < 100) machine.cpuPercent = cpu;
  const services: LaunchServices = {};
  serveDisks(machine, services);

  if (profile.root !== undefined) {
    // The built root, read-only: every run and every user of the guest boots the same folder.
    if (source.root === undefined) throw new LaunchError(`${name}: its root folder "${profile.root}" is not built`);
    if (overrides.rootFolder !== undefined) throw new LaunchError(`${name}: it boots its own root folder; --root-folder is for guests such as tiny`);
    const shares = merged(settings.shares, overrides.shares, (a, b) => a.tag === b.tag);
    if (shares.some((s) => s.tag === ROOT_SHARE_TAG)) throw new LaunchError(`${name}: the share name "${ROOT_SHARE_TAG}" is its root folder's; give the share another name`);
    services.p9 = { kind: "shares", shares: [{ tag: ROOT_SHARE_TAG, hostPath: source.root, readOnly: true, confirmedSensitive: true }, ...shares] };
  } else if (overrides.rootFolder !== undefined) {
    if (!profile.shares) throw new LaunchError(`${name}: a root folder needs a guest that can boot from 9P (such as tiny)`);
    machine.cmdline = `${machine.cmdline ?? ""} ${ROOT_CMDLINE}`.trim();
    services.p9 = { kind: "root", folder: overrides.rootFolder };
  } else {
    // A guest without 9P is offered its shares as a FAT drive instead (sharedDrive).
    const shares = profile.shares ? merged(settings.shares, overrides.shares, (a, b) => a.tag === b.tag) : [];
    // A guest that mounts shares always has its 9P device, shares or none: its machine stays the
    // same whatever is shared, so a saved state resumes with this run's shares (added, removed).
    if (profile.shares) services.p9 = { kind: "shares", shares };
  }
  if (services.p9) machine.p9 = "host";

  if (machine.net !== "none") {
    services.net = {
      allowHost: overrides.allowHost ?? settings.allowHost,
      forwards: merged(settings.forwards, overrides.forwards, (a, b) => a.hostPort === b.hostPort),
    };
  }
  if (profile.agent) {
    const port = overrides.agentPort ?? agentPortFor(profile);
    machine.agentPort = port;
    services.agent = { port, clipboard: settings.clipboard };
  }
  const ready: ReadySignal =
    profile.prompt !== undefined ? { kind: "prompt", prompt: profile.prompt } : profile.agent ? { kind: "agent" } : { kind: "quiet", ms: SETTLED_MS };
  return { guest: name, title: profile.title, machine, services, ready };
}

/**
 * A dropped image has no profile: nothing says which drivers it has. The one rule for its
 * network, kernel or disk alike: no NIC unless this run asks for the network (net, allowHost
 * or forwards); then an NE2000, whose drivers DOS, Windows 9x and Linux all have.
 */
function imagePlan(source: Extract<LaunchSource, { kind: "image" }>, firmware: LaunchMachine["firmware"], overrides: LaunchOverrides): LaunchPlan {
  const { name, role } = source;
  if ((overrides.shares?.length ?? 0) > 0 || overrides.rootFolder !== undefined) {
    throw new LaunchError(`${name}: shares need a guest that mounts 9P shares (such as tiny)`);
  }
  const wantsNet = overrides.net ?? (overrides.allowHost === true || (overrides.forwards?.length ?? 0) > 0);
  const machine: LaunchMachine = {
    memory: overrides.memory === undefined ? MEMORY_LIMITS.defaultMiB : checkMemory(overrides.memory),
    acpi: true,
    net: wantsNet ? (overrides.nic ?? "ne2k") : "none",
    firmware,
    media: { [role]: source.image },
  };
  if (role === "bzimage") machine.cmdline = DROPPED_KERNEL_CMDLINE;
  if (overrides.cpuPercent !== undefined && overrides.cpuPercent < 100) machine.cpuPercent = overrides.cpuPercent;
  const services: LaunchServices = {};
  serveDisks(machine, services);
  if (wantsNet) services.net = { allowHost: overrides.allowHost ?? false, forwards: overrides.forwards ?? [] };
  return { guest: name, title: name, machine, services, ready: { kind: "quiet", ms: SETTLED_MS } };
}

/**
 * Hard disks named by base image and overlay become "served" media (only their size travels to
 * the runtime) and the plan's disk service, so no runtime ever holds a whole disk in memory.
 */
function serveDisks(machine: LaunchMachine, services: LaunchServices): void {
  for (const role of ["hda", "hdb"] as const) {
    const source = machine.media[role];
    if (source?.kind !== "disk") continue;
    machine.media[role] = { kind: "served", size: source.disk.size };
    (services.disks ??= {})[role] = source.disk;
  }
  for (const [role, source] of Object.entries(machine.media)) {
    if (source.kind === "disk") throw new LaunchError(`${role}: only hard disks (hda, hdb) can be served from an overlay`);
  }
}

export type PlannedService = "p9" | "net" | "agent" | "disk";

/** The host services a plan needs pipes for, in the order the runtime opens them. */
export function plannedServices(plan: LaunchPlan): PlannedService[] {
  const planned: PlannedService[] = (["p9", "net", "agent"] as const).filter((service) => plan.services[service] !== undefined);
  if (servesDisks(plan.services)) planned.push("disk");
  return planned;
}

/** Whether a plan's services include hard disks for the host to serve (overlays or FAT drives). */
export function servesDisks(services: Pick<LaunchServices, "disks" | "fatDrives">): boolean {
  return Object.keys(services.disks ?? {}).length > 0 || Object.keys(services.fatDrives ?? {}).length > 0;
}
