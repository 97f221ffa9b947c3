// A guest's settings that the user changes (shares, port forwards, network policy,
// clipboard), as stored in the data folder and edited from the page or the CLI. Checked field
// by field wherever they come from: a settings file is user-editable and the page is another
// process.

import { MEMORY_LIMITS } from "./profile.js";

export interface ShareSetting {
  /** An absolute host folder. */
  hostPath: string;
  /** The name the guest sees: /mnt/<tag> in the tiny guest. */
  tag: string;
  readOnly: boolean;
  /** The most the guest may store in the share, in MiB; absent means no limit. */
  quotaMiB?: number;
  /** The user confirmed sharing a sensitive folder (/, the home folder, a hidden or system
   *  folder: main/host/share-policy.ts); the host refuses such a share without it. */
  confirmedSensitive?: boolean;
}

export interface ForwardSetting {
  hostPort: number;
  guestPort: number;
}

export interface GuestSettings {
  shares: ShareSetting[];
  forwards: ForwardSetting[];
  /** Lets the guest reach the host (the gateway address, loopback) and private networks. */
  allowHost: boolean;
  /** Keeps the host's and the guest's clipboards in sync through the agent; off unless the
   *  user turns it on (absent in a settings file means off). */
  clipboard: boolean;
  /** RAM in MiB, replacing the profile's; absent: the profile's. */
  memory?: number;
  /** A speed cap in percent of one host core (1 to 100, 100 meaning none); absent: none. */
  cpuPercent?: number;
  /** The hard disk's size in MiB as the guest sees it, grown past the image's; absent: the image's. */
  diskMiB?: number;
}

export const DEFAULT_SETTINGS: GuestSettings = { shares: [], forwards: [], allowHost: false, clipboard: false };

export class SettingsError extends Error {
  override name = "SettingsError";
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}$/;

export function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw new SettingsError(`share name "${tag}" must be 1 to 31 letters, digits, "_", "." or "-", not starting with "." or "-"`);
  return tag;
}

function port(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new SettingsError(`${what} must be a port number from 1 to 65535, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The last part of a path, made into a share name ("/home/me/My Files" -> "My_Files"). */
export function tagFromPath(path: string): string {
  const base = path.replace(/\/+$/, "").split("/").pop() ?? "";
  const tag = base.replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^[.-]+/, "").slice(0, 31);
  return tag || "share";
}

/** Parses `HOSTDIR[:TAG][:ro]`, the CLI's --share. */
export function parseShareSpec(spec: string, quotaMiB?: number): ShareSetting {
  const parts = spec.split(":");
  let readOnly = false;
  if (parts.length > 1 && (parts[parts.length - 1] === "ro" || parts[parts.length - 1] === "rw")) readOnly = parts.pop() === "ro";
  if (parts.length > 2) throw new SettingsError(`--share "${spec}": expected HOSTDIR[:TAG][:ro]`);
  const [hostPath, tag] = parts as [string, string | undefined];
  if (!hostPath) throw new SettingsError(`--share "${spec}": the host folder is missing`);
  const share: ShareSetting = { hostPath, tag: checkTag(tag ?? tagFromPath(hostPath)), readOnly };
  if (quotaMiB !== undefined) share.quotaMiB = checkQuota(quotaMiB);
  return share;
}

function checkQuota(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 1024 * 1024) {
    throw new SettingsError(`a share's quota must be a number of MiB above 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function parseSettings(json: unknown, source: string): GuestSettings {
  try {
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new SettingsError("expected a JSON object");
    const o = json as Record<string, unknown>;
    const list = (key: string): unknown[] => {
      const v = o[key] ?? [];
      if (!Array.isArray(v)) throw new SettingsError(`"${key}" must be a list`);
      if (v.length > 64) throw new SettingsError(`"${key}" has more than 64 entries`);
      return v;
    };
    const shares = list("shares").map((s, i): ShareSetting => {
      if (typeof s !== "object" || s === null) throw new SettingsError(`share ${i + 1} must be an object`);
      const r = s as Record<string, unknown>;
      if (typeof r.hostPath !== "string" || !r.hostPath.startsWith("/") || r.hostPath.length > 4096 || r.hostPath.includes("\0")) {
        throw new SettingsError(`share ${i + 1}: "hostPath" must be an absolute host folder`);
      }
      if (typeof r.tag !== "string") throw new SettingsError(`share ${i + 1}: "tag" must be a name`);
      const share: ShareSetting = { hostPath: r.hostPath, tag: checkTag(r.tag), readOnly: r.readOnly === true };
      if (r.quotaMiB !== undefined && r.quotaMiB !== null) share.quotaMiB = checkQuota(r.quotaMiB);
      if (r.confirmedSensitive === true) share.confirmedSensitive = true;
      return share;
    });
    const tags = new Set<string>();
    for (const s of shares) {
      if (tags.has(s.tag)) throw new SettingsError(`two shares are named "${s.tag}"`);
      tags.add(s.tag);
    }
    const forwards = list("forwards").map((f, i): ForwardSetting => {
      if (typeof f !== "object" || f === null) throw new SettingsError(`forward ${i + 1} must be an object`);
      const r = f as Record<string, unknown>;
      return { hostPort: port(r.hostPort, `forward ${i + 1}: "hostPort"`), guestPort: port(r.guestPort, `forward ${i + 1}: "guestPort"`) };
    });
    const hostPorts = new Set<number>();
    for (const f of forwards) {
      if (hostPorts.has(f.hostPort)) throw new SettingsError(`host port ${f.hostPort} is forwarded twice`);
      hostPorts.add(f.hostPort);
    }
    const settings: GuestSettings = { shares, forwards, allowHost: o.allowHost === true, clipboard: o.clipboard === true };
    const whole = (key: string, min: number, max: number, unit: string): number | undefined => {
      const v = o[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
        throw new SettingsError(`"${key}" must be a whole number ${unit} from ${min} to ${max}, got ${JSON.stringify(v)}`);
      }
      return v;
    };
    const memory = whole("memory", MEMORY_LIMITS.min, MEMORY_LIMITS.max, "of MiB");
    if (memory !== undefined) settings.memory = memory;
    const cpu = whole("cpuPercent", 1, 100, "of percent");
    if (cpu !== undefined) settings.cpuPercent = cpu;
    const disk = whole("diskMiB", 1, 128 * 1024, "of MiB");
    if (disk !== undefined) settings.diskMiB = disk;
    return settings;
  } catch (error) {
    if (error instanceof SettingsError) throw new SettingsError(`${source}: ${error.message}`);
    throw error;
  }
}
