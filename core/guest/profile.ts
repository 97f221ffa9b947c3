// Guest profiles: what a guest is (guests/<name>/guest.json), checked field by field when
// read, since a profile is a file a user may edit. Pure data: media are named by role, and
// the host decides where their bytes come from (a file, a URL, a dropped buffer).

import { FAMILY_LIST, isFamily, type Family } from "./families.js";

export const MEDIA_ROLES = ["bzimage", "initrd", "hda", "hdb", "fda", "cdrom", "multiboot"] as const;
export type MediaRole = (typeof MEDIA_ROLES)[number];

export const NET_DEVICES = ["none", "virtio", "ne2k"] as const;
export type NetDevice = (typeof NET_DEVICES)[number];

export interface GuestProfile {
  name: string;
  title: string;
  description: string;
  /** RAM in MiB. */
  memory: number;
  /** Kernel command line, for guests booted from a kernel. */
  cmdline?: string;
  /** Media file names relative to the guest's built folder, by role. */
  media: Partial<Record<MediaRole, string>>;
  /**
   * A folder of the guest's built files that is its whole root file system: served over 9P
   * read-only as the share "root" (ROOT_SHARE_TAG), the guest keeps its changes in memory.
   */
  root?: string;
  net: NetDevice;
  acpi: boolean;
  /** A regular expression that matches the guest's shell prompt on its serial console. */
  prompt?: string;
  /** The guest runs Unmachine's agent (guests/agent) on virtio-console: exec, clipboard, display. */
  agent: boolean;
  /** The guest mounts the host's 9P shares (tag host9p) by itself. */
  shares: boolean;
  /** The guest's kernel has the virtio-balloon driver: its RAM can be changed while it runs. */
  balloon: boolean;
  /** What kind of system it is (core/guest/families.ts): its boot order follows from it. */
  family?: Family;
  /** Its agent reports app windows (an X11 desktop): its kept started state is taken once one shows. */
  windows?: boolean;
}

export const MEMORY_LIMITS = { min: 16, max: 2048, defaultMiB: 128 } as const;

export class ProfileError extends Error {
  override name = "ProfileError";
}

/** Checks a memory size in MiB, with a message that says what is allowed. */
export function checkMemory(value: number, what = "memory"): number {
  if (!Number.isInteger(value) || value < MEMORY_LIMITS.min || value > MEMORY_LIMITS.max) {
    throw new ProfileError(
      `${what} must be a whole number of MiB from ${MEMORY_LIMITS.min} to ${MEMORY_LIMITS.max}, got ${String(value)}`,
    );
  }
  return value;
}

export function parseProfile(json: unknown, source: string): GuestProfile {
  const fail = (msg: string): never => {
    throw new ProfileError(`${source}: ${msg}`);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail("expected a JSON object");
  const o = json as Record<string, unknown>;
  const str = (key: string, optional = false): string | undefined => {
    const v = o[key];
    if (v === undefined && optional) return undefined;
    if (typeof v !== "string" || v === "") return fail(`"${key}" must be a non-empty string`);
    return v;
  };
  const name = str("name")!;
  if (!/^[a-z0-9][a-z0-9-]{0,39}$/.test(name)) fail(`"name" must be lower-case letters, digits and dashes`);
  const memory = o.memory === undefined ? MEMORY_LIMITS.defaultMiB : o.memory;
  if (typeof memory !== "number") fail(`"memory" must be a number of MiB`);
  try {
    checkMemory(memory as number);
  } catch (error) {
    fail((error as Error).message);
  }
  const mediaIn = o.media;
  if (typeof mediaIn !== "object" || mediaIn === null) fail(`"media" must be an object of role to file name`);
  const media: Partial<Record<MediaRole, string>> = {};
  for (const [role, file] of Object.entries(mediaIn as object)) {
    if (!(MEDIA_ROLES as readonly string[]).includes(role)) fail(`unknown media role "${role}" (expected one of ${MEDIA_ROLES.join(", ")})`);
    if (typeof file !== "string" || file === "" || file.includes("/") || file.startsWith(".")) fail(`media "${role}" must be a plain file name`);
    media[role as MediaRole] = file as string;
  }
  if (Object.keys(media).length === 0) fail(`"media" names nothing to boot`);
  const root = str("root", true);
  if (root !== undefined && (root.includes("/") || root.startsWith("."))) fail(`"root" must be a plain folder name`);
  if (root !== undefined && o.shares !== true) fail(`"root" needs "shares": the guest mounts its root over 9P`);
  const net = o.net ?? "none";
  if (!(NET_DEVICES as readonly unknown[]).includes(net)) fail(`"net" must be one of ${NET_DEVICES.join(", ")}`);
  const prompt = str("prompt", true);
  if (prompt !== undefined) {
    try {
      new RegExp(prompt);
    } catch {
      fail(`"prompt" is not a valid regular expression`);
    }
  }
  const profile: GuestProfile = {
    name,
    title: str("title", true) ?? name,
    description: str("description", true) ?? "",
    memory: memory as number,
    media,
    net: net as NetDevice,
    acpi: o.acpi === true,
    agent: o.agent === true,
    shares: o.shares === true,
    balloon: o.balloon === true,
  };
  if (o.family !== undefined) {
    if (!isFamily(o.family)) fail(`"family" must be one of ${FAMILY_LIST}`);
    profile.family = o.family as Family;
  }
  const cmdline = str("cmdline", true);
  if (cmdline !== undefined) profile.cmdline = cmdline;
  if (prompt !== undefined) profile.prompt = prompt;
  if (root !== undefined) profile.root = root;
  if (o.windows !== undefined && typeof o.windows !== "boolean") fail(`"windows" must be true or false`);
  if (o.windows === true) {
    if (o.agent !== true) fail(`"windows" needs "agent": the agent reports them`);
    profile.windows = true;
  }
  return profile;
}
