// Changing the library: adding an image as a user guest (its kind and family read from its
// content, a profile from its family's defaults), editing a guest with key=value pairs, removing
// it and discarding its changes. The CLI (main/cli/library.ts) and the host API share these.
// Everything is checked before anything is written: a refused change leaves the library as it was.

import { GuestStates } from "../state/guest-states.js";
import { exportDisk, OverlayDisk, OverlayError, overlayHolder } from "../disk/overlay.js";
import { existsSync, realpathSync, statSync } from "node:fs";
import { basename, relative, resolve, isAbsolute } from "node:path";
import { checkMemory, NET_DEVICES, ProfileError, parseProfile, type GuestProfile, type MediaRole, type NetDevice } from "../../core/guest/profile.js";
import { DROPPED_KERNEL_CMDLINE } from "../../core/guest/launch-plan.js";
import { FAMILY_LIST, FAMILY_PROFILES, isFamily, type Family } from "../../core/guest/families.js";
import { ImageError } from "../../core/media/detect.js";
import type { GuestSettings } from "../../core/guest/settings.js";
import { detectFileFamily, MAX_IMAGE, openImage } from "../media/image-file.js";
import type { GuestLibrary } from "./library.js";
import { DISK_ROLES, LibraryError, type UserSource } from "./user-guests.js";

const MiB = 1024 * 1024;
const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export interface AddOptions {
  name?: string;
  memory?: number;
  prompt?: string;
  /** An initial ramdisk for a Linux kernel. */
  initrd?: string;
  family?: Family;
  title?: string;
  /** The file's name as the user knows it (a page upload's), for the guest's name and messages. */
  displayName?: string;
  /** `path` is an upload in the data folder, kept as the guest's image (the page's drop in a browser). */
  upload?: boolean;
}

export interface AddedGuest {
  name: string;
  /** What the image is, in a user's words ("hard disk image, 1.0 GiB"). */
  description: string;
  family: Family;
}

/** A guest name from a file name: "Windows 98 SE.img" becomes "windows-98-se". */
export function nameFromFile(file: string): string {
  const stem = basename(file).replace(/\.(img|ima|iso|bin|raw|hdd|vfd|dsk|flp)$/i, "");
  const name = stem
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 32)
    .replace(/-+$/, "");
  return name || "guest";
}

function uniqueName(library: GuestLibrary, wanted: string): string {
  // A folder of the user's files under that name is passed over, never taken.
  const free = (name: string): boolean => !library.has(name) && library.user.folderProblem(name) === undefined;
  if (free(wanted)) return wanted;
  for (let n = 2; ; n++) {
    const name = `${wanted}-${n}`;
    if (free(name)) return name;
  }
}

function checkName(library: GuestLibrary, name: string): string {
  if (!NAME.test(name)) throw new LibraryError(`--name "${name}": a guest name is 1 to 40 lower-case letters, digits and dashes, starting with a letter or digit`);
  if (library.isBuiltIn(name)) throw new LibraryError(`--name "${name}": that is a built-in guest's name; choose another`);
  if (library.has(name)) throw new LibraryError(`--name "${name}": a guest of that name exists already (see: unmachine list)`);
  const problem = library.user.folderProblem(name);
  if (problem) throw new LibraryError(`--name "${name}": ${problem}`);
  return name;
}

function checkPrompt(prompt: string, what: string): string {
  try {
    new RegExp(prompt);
  } catch {
    throw new LibraryError(`${what}: "${prompt}" is not a valid regular expression`);
  }
  return prompt;
}

/** An initrd is any non-empty file the emulator can hold in memory. */
function initrdRef(path: string): { path: string; size: number; mtimeMs: number } {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ImageError(`--initrd ${path}: no such file`);
  }
  if (!st.isFile()) throw new ImageError(`--initrd ${path}: not a regular file`);
  if (st.size === 0) throw new ImageError(`--initrd ${path}: the file is empty`);
  if (st.size > MAX_IMAGE) throw new ImageError(`--initrd ${path}: more than the 2 GiB an initrd can have`);
  return { path, size: st.size, mtimeMs: st.mtimeMs };
}

function insideLibrary(library: GuestLibrary, path: string): boolean {
  if (!existsSync(library.user.root)) return false;
  const within = relative(realpathSync(library.user.root), realpathSync(path));
  return within !== "" && !within.startsWith("..") && !isAbsolute(within);
}

/** Adds an image to the library as a user guest; throws (an ImageError, a LibraryError) with nothing made. */
export function addGuest(library: GuestLibrary, file: string, options: AddOptions = {}): AddedGuest {
  const path = resolve(file);
  const shown = options.displayName ?? file;
  let image;
  try {
    image = openImage(path);
  } catch (error) {
    if (error instanceof ImageError && options.displayName) throw new ImageError(error.message.split(path).join(shown));
    throw error;
  }
  if (image.contents) throw new ImageError(`${shown}: ${image.detected.description}; unpack it first (gunzip -k), then add the unpacked image`);
  // A guest's image there would be another guest's file (removed with it, or its overlay).
  if (!options.upload && insideLibrary(library, path)) throw new ImageError(`${shown}: is inside Unmachine's library folder ${library.user.root}; copy it out first`);
  const role = image.detected.role;
  if (role === undefined || role === "initial_state") throw new ImageError(`${shown}: ${image.detected.description} cannot be a guest on its own`);
  if (options.initrd !== undefined && role !== "bzimage") throw new ImageError(`--initrd goes with a Linux kernel; ${shown} is a ${image.detected.description}`);
  const initrd = options.initrd === undefined ? undefined : initrdRef(resolve(options.initrd));
  if (options.memory !== undefined) checkMemory(options.memory, "--memory");
  if (options.prompt !== undefined) checkPrompt(options.prompt, "--prompt");
  const name = options.name !== undefined ? checkName(library, options.name) : uniqueName(library, nameFromFile(shown));
  const family = options.family ?? detectFileFamily(path);
  const defaults = FAMILY_PROFILES[family];

  const media: Partial<Record<MediaRole, string>> = { [role]: role };
  const st = statSync(path);
  const source: UserSource = { media: { [role]: options.upload ? { size: st.size, mtimeMs: st.mtimeMs } : { path, size: st.size, mtimeMs: st.mtimeMs } } };
  if (initrd) {
    media.initrd = "initrd";
    source.media.initrd = initrd;
  }
  const profile: GuestProfile = {
    name,
    title: options.title ?? basename(shown).replace(/\p{Cc}/gu, " "),
    description: image.detected.description,
    memory: options.memory ?? defaults.memory,
    media,
    net: defaults.net,
    acpi: defaults.acpi,
    agent: false,
    shares: defaults.files === "9p",
    balloon: false,
    family,
  };
  if (role === "bzimage") profile.cmdline = DROPPED_KERNEL_CMDLINE;
  if (options.prompt !== undefined) profile.prompt = options.prompt;
  parseProfile(profile, `guest ${name}`);
  library.user.create(profile, source, options.upload ? path : undefined);
  return { name, description: image.detected.description, family };
}

export const SETTINGS_KEYS = ["memory", "cpu"] as const;
export const PROFILE_KEYS = ["disk", "family", "title", "prompt", "net", "acpi"] as const;
const ALL_KEYS = [...SETTINGS_KEYS, ...PROFILE_KEYS];

function whole(key: string, value: string, min: number, max: number, unit: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new LibraryError(`${key}: expected a whole number of ${unit} from ${min} to ${max}, got "${value}"`);
  return n;
}

const ON = ["on", "true", "yes", "1"];
const OFF = ["off", "false", "no", "0"];

/** Splits `key=value` pairs, refusing a pair without "=" or an unknown key. */
export function parsePairs(pairs: string[]): [string, string][] {
  if (pairs.length === 0) throw new LibraryError(`set needs key=value pairs (keys: ${ALL_KEYS.join(", ")})`);
  return pairs.map((pair) => {
    const at = pair.indexOf("=");
    const key = at < 0 ? pair : pair.slice(0, at);
    if (!(ALL_KEYS as readonly string[]).includes(key)) throw new LibraryError(`unknown key "${key}" (allowed: ${ALL_KEYS.join(", ")})`);
    if (at < 0) throw new LibraryError(`${key}: expected ${key}=VALUE`);
    return [key, pair.slice(at + 1)];
  });
}

/**
 * Applies `key=value` edits to a guest: memory and cpu to its settings (any guest), the rest to a
 * user guest's profile. All are checked first; then the files are written (each atomically).
 */
export function editGuest(library: GuestLibrary, name: string, pairs: [string, string][]): void {
  const profile = library.profile(name);
  const builtIn = library.isBuiltIn(name);
  const settings: GuestSettings = library.settings.load(name);
  const next: GuestProfile = structuredClone(profile);
  let profileChanged = false;
  let settingsChanged = false;
  // The family first: its defaults, then what the same command says explicitly.
  const ordered = [...pairs.filter(([k]) => k === "family"), ...pairs.filter(([k]) => k !== "family")];
  for (const [key, value] of ordered) {
    if (builtIn && !(SETTINGS_KEYS as readonly string[]).includes(key)) {
      throw new LibraryError(`${key}: ${name} is a built-in guest; only ${SETTINGS_KEYS.join(" and ")} can be set for it`);
    }
    switch (key) {
      case "memory":
        settings.memory = whole(key, value, 16, 2048, "MiB");
        settingsChanged = true;
        break;
      case "cpu":
        settings.cpuPercent = whole(key, value, 1, 100, "percent of one host core");
        settingsChanged = true;
        break;
      case "disk": {
        const disk = library.resolve(name, settings).disks;
        const current = disk.hda ?? disk.hdb;
        if (!current) throw new LibraryError(`disk: ${name} has no hard disk to grow`);
        const least = Math.ceil(current.size / MiB);
        const mib = whole(key, value, 1, 128 * 1024, "MiB");
        if (mib < least) throw new LibraryError(`disk: a disk may only grow; ${name}'s is ${least} MiB, so expected ${least} to ${128 * 1024} MiB, got "${value}"`);
        settings.diskMiB = mib;
        settingsChanged = true;
        break;
      }
      case "family": {
        if (!isFamily(value)) throw new LibraryError(`family: expected one of ${FAMILY_LIST}, got "${value}"`);
        const defaults = FAMILY_PROFILES[value];
        next.family = value;
        next.net = defaults.net;
        next.acpi = defaults.acpi;
        next.shares = defaults.files === "9p";
        profileChanged = true;
        break;
      }
      case "title":
        if (value.trim() === "" || value.length > 80 || /\p{Cc}/u.test(value)) throw new LibraryError(`title: expected 1 to 80 characters on one line, without control characters`);
        next.title = value;
        profileChanged = true;
        break;
      case "prompt":
        if (value === "") delete next.prompt;
        else next.prompt = checkPrompt(value, "prompt");
        profileChanged = true;
        break;
      case "net":
        if (!(NET_DEVICES as readonly string[]).includes(value)) throw new LibraryError(`net: expected one of ${NET_DEVICES.join(", ")}, got "${value}"`);
        next.net = value as NetDevice;
        profileChanged = true;
        break;
      case "acpi":
        if (![...ON, ...OFF].includes(value)) throw new LibraryError(`acpi: expected on or off, got "${value}"`);
        next.acpi = ON.includes(value);
        profileChanged = true;
        break;
    }
  }
  try {
    parseProfile(next, `guest ${name}`);
  } catch (error) {
    if (error instanceof ProfileError) throw new LibraryError(error.message);
    throw error;
  }
  if (settingsChanged) library.settings.save(name, settings);
  if (profileChanged) library.user.saveProfile(name, next);
}

function userGuest(library: GuestLibrary, name: string, verb: string): void {
  library.profile(name);
  if (library.isBuiltIn(name)) throw new LibraryError(`${name} is a built-in guest; it cannot be ${verb}`);
}

/** Refuses while a process (any: a CLI run, a shell's tab) has one of the guest's disks open for writing. */
function notRunning(library: GuestLibrary, name: string): void {
  for (const role of DISK_ROLES) {
    const pid = overlayHolder(library.user.overlay(name, role));
    if (pid !== undefined) throw new LibraryError(`${name} is running (process ${pid}); stop it first`);
  }
}

/** Refuses a built-in guest or no guest; not by reading its profile (a broken guest.json is still removable). */
export function removableGuest(library: GuestLibrary, name: string): void {
  if (library.isBuiltIn(name)) throw new LibraryError(`${name} is a built-in guest; it cannot be removed`);
  if (!library.user.has(name)) library.profile(name); // says there is no such guest, and which there are
}

/**
 * Removes a user guest's own files (never its original image, nor files of the user's in its
 * folder: those are kept and returned); with changes only when `force`. A guest whose guest.json
 * is damaged can still be removed.
 */
export function removeGuest(library: GuestLibrary, name: string, force: boolean): string[] {
  removableGuest(library, name);
  notRunning(library, name);
  const changes = library.user.overlayBytes(name);
  if (changes > 0 && !force) {
    throw new LibraryError(`${name} has changes to its disk (${(changes / MiB).toFixed(1)} MiB); to remove it and lose them, add --yes`);
  }
  return library.user.remove(name);
}

/**
 * Writes a user guest's hard disk (its image with its changes) as a new flat image. The image
 * and the overlay are only read; the output is written aside and renamed into place.
 */
export function exportGuest(library: GuestLibrary, name: string, out: string, overwrite = false): string {
  userGuest(library, name, "exported");
  const disks = library.resolve(name).disks;
  const disk = disks.hda ?? disks.hdb;
  if (!disk) throw new LibraryError(`${name} has no hard disk to export (only hard-disk guests have changes)`);
  let opened: OverlayDisk | undefined;
  try {
    opened = new OverlayDisk(disk.base, disk.overlay, { size: disk.size, readOnly: true });
    exportDisk(opened, out, { overwrite });
  } catch (error) {
    if (error instanceof OverlayError) throw new LibraryError(error.message);
    throw error;
  } finally {
    opened?.close();
  }
  return out;
}

/** Discards a user guest's changes to its disks. */
export function resetGuest(library: GuestLibrary, name: string): void {
  userGuest(library, name, "reset");
  notRunning(library, name);
  library.user.reset(name, library.user.source(name));
  // A saved state goes with the changes it was saved with.
  new GuestStates(library.user.folder(name), name).discard();
}
