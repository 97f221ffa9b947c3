// Each guest's apps as its agent last reported them: <data>/guests/<name>/apps.json, so the
// page's launcher and the tray list the apps of a guest that is not running. The list comes
// from the guest (untrusted): only so many apps, names and ids of bounded, printable text,
// icons only as PNG bytes of a bounded size (kept as base64); anything else is left out. Written
// atomically (main/private-files.ts) and only when it changed; a damaged file reads as no apps.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { GuestApp } from "../../core/agent/messages.js";
import type { LauncherApp } from "../../core/ipc/contract.js";
import { Emitter } from "../../core/disposable.js";
import { makePrivateDir, sweepTemps, writePrivateFileAtomic } from "../private-files.js";

/** Caps on what is kept of a guest's report. */
export const APPS_STORE_LIMITS = {
  apps: 64,
  idChars: 128,
  nameChars: 128,
  /** One icon's PNG bytes. */
  iconBytes: 64 * 1024,
  /** All of a guest's icons together. */
  iconBudget: 512 * 1024,
} as const;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const GUEST_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** Control characters (C0, DEL, C1) and the line and paragraph separators. */
function unprintable(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}

function isPng(bytes: Uint8Array): boolean {
  return bytes.length > PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

function cleanText(value: unknown, max: number): string | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (text === "" || text.length > max || unprintable(text)) return undefined;
  return text;
}

/**
 * What is kept of a list the guest reported (or a file read back): apps with a valid id and
 * name, the first of each id, icons that are PNG within the caps, at most APPS_STORE_LIMITS.apps.
 */
export function keepApps(reported: readonly unknown[]): LauncherApp[] {
  const kept: LauncherApp[] = [];
  const ids = new Set<string>();
  let iconBytes = 0;
  for (const item of reported) {
    if (kept.length >= APPS_STORE_LIMITS.apps) break;
    if (typeof item !== "object" || item === null) continue;
    const app = item as Record<string, unknown>;
    const id = cleanText(app.id, APPS_STORE_LIMITS.idChars);
    const name = cleanText(app.name, APPS_STORE_LIMITS.nameChars);
    if (id === undefined || name === undefined || ids.has(id)) continue;
    ids.add(id);
    const entry: LauncherApp = { id, name };
    const icon = iconBytesOf(app.icon);
    if (icon && icon.length <= APPS_STORE_LIMITS.iconBytes && iconBytes + icon.length <= APPS_STORE_LIMITS.iconBudget && isPng(icon)) {
      iconBytes += icon.length;
      entry.icon = Buffer.from(icon).toString("base64");
    }
    kept.push(entry);
  }
  return kept;
}

/** An icon as the agent sends it (bytes) or as the file keeps it (base64). */
function iconBytesOf(icon: unknown): Uint8Array | undefined {
  if (icon instanceof Uint8Array) return icon;
  if (typeof icon !== "string" || icon.length > Math.ceil(APPS_STORE_LIMITS.iconBytes / 3) * 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(icon)) return undefined;
  return new Uint8Array(Buffer.from(icon, "base64"));
}

export class AppsStore {
  readonly #dir: string;
  readonly #changes = new Emitter<string>();
  /** Fires with a guest's name when its remembered apps changed. */
  readonly onChange = this.#changes.event;

  constructor(dataDir: string) {
    this.#dir = join(dataDir, "guests");
  }

  #file(guest: string): string {
    if (!GUEST_NAME.test(guest)) throw new Error(`"${guest.slice(0, 64)}" is not a guest name`);
    return join(this.#dir, guest, "apps.json");
  }

  /** The guest's remembered apps; none when it never reported any, or the file is damaged. */
  load(guest: string): LauncherApp[] {
    const file = this.#file(guest);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, "utf8"));
    } catch {
      return [];
    }
    const apps = (json as { apps?: unknown } | null)?.apps;
    return Array.isArray(apps) ? keepApps(apps) : [];
  }

  /** Keeps what the guest's agent reported; the list kept (written only when it changed). */
  save(guest: string, reported: readonly GuestApp[]): LauncherApp[] {
    const file = this.#file(guest);
    const apps = keepApps(reported);
    if (JSON.stringify(apps) === JSON.stringify(this.load(guest))) return apps;
    makePrivateDir(join(this.#dir, guest));
    sweepTemps(file);
    writePrivateFileAtomic(file, `${JSON.stringify({ apps })}\n`);
    this.#changes.fire(guest);
    return apps;
  }
}
