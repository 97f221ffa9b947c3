// The user's guests in the data folder, one folder each: <data>/guests/<name>/ with guest.json
// (the profile), source.json (the original image by absolute path, size and mtime: it is never
// written or copied; a page upload, which the host cannot see otherwise, is stored as `image`),
// settings.json (settings-store.ts) and the hard disks' overlays (<role>.overlay, written by the
// disk service). A guest appears whole or not at all: it is made in a hidden folder, then renamed.
// Files in its folder that are none of these are the user's: never removed with the guest.

import { overlayStats } from "../disk/overlay.js";
import { existsSync, lstatSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { parseProfile, MEDIA_ROLES, type GuestProfile, type MediaRole } from "../../core/guest/profile.js";
import type { DiskRole } from "../../core/guest/launch-plan.js";
import { makePrivateDir, sweepTemps, writePrivateFileAtomic } from "../private-files.js";

/** An original image, as it was when the guest was made. */
export interface ImageRef {
  /** Absolute path of the user's file; absent for a page upload kept as the guest's `image`. */
  path?: string;
  size: number;
  mtimeMs: number;
}

export interface UserSource {
  media: Partial<Record<MediaRole, ImageRef>>;
}

export const DISK_ROLES: readonly DiskRole[] = ["hda", "hdb"];
/** The file a page upload is kept in, inside the guest's folder. */
export const STORED_IMAGE = "image";

const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** A guest's own files: its profile, source, settings, stored image, overlays, saved states, and their temporaries and locks. */
const OWN_FILE = /^(?:(?:guest|source|settings)\.json(?:\.\d+(?:\.[0-9a-f]{8})?\.tmp)?|image|hd[ab]\.overlay(?:\.new|\.compact|\.lock(?:\.\d+\.[0-9a-z]+)?)?|suspend\.state(?:(?:\.\d+)?\.partial|\.unusable)?|snapshots)$/;

export class LibraryError extends Error {
  override name = "LibraryError";
}

export function isDiskRole(role: string): role is DiskRole {
  return role === "hda" || role === "hdb";
}

function parseSource(json: unknown, file: string): UserSource {
  const fail = (why: string): never => {
    throw new LibraryError(`${file}: ${why}; remove the guest and add its image again`);
  };
  if (typeof json !== "object" || json === null) fail("expected a JSON object");
  const media = (json as { media?: unknown }).media;
  if (typeof media !== "object" || media === null) fail(`"media" must be an object`);
  const out: UserSource = { media: {} };
  for (const [role, ref] of Object.entries(media as object)) {
    if (!(MEDIA_ROLES as readonly string[]).includes(role)) fail(`unknown media role "${role}"`);
    const r = ref as Record<string, unknown>;
    if (typeof r !== "object" || r === null || typeof r.size !== "number" || typeof r.mtimeMs !== "number") fail(`"${role}" needs a size and mtimeMs`);
    if (r.path !== undefined && (typeof r.path !== "string" || !r.path.startsWith("/"))) fail(`"${role}": "path" must be absolute`);
    const image: ImageRef = { size: r.size as number, mtimeMs: r.mtimeMs as number };
    if (typeof r.path === "string") image.path = r.path;
    out.media[role as MediaRole] = image;
  }
  return out;
}

export class UserGuests {
  readonly #dir: string;

  constructor(dataDir: string) {
    this.#dir = join(dataDir, "guests");
  }

  folder(name: string): string {
    return join(this.#dir, name);
  }

  names(): string[] {
    if (!existsSync(this.#dir)) return [];
    return readdirSync(this.#dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && NAME.test(e.name) && existsSync(join(this.#dir, e.name, "guest.json")))
      .map((e) => e.name);
  }

  has(name: string): boolean {
    return NAME.test(name) && existsSync(join(this.#dir, name, "guest.json"));
  }

  profile(name: string): GuestProfile {
    const file = join(this.#dir, name, "guest.json");
    sweepTemps(file);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      const why = error instanceof SyntaxError ? "not valid JSON" : `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
      throw new LibraryError(`${file}: ${why}; fix it, or remove the guest (unmachine rm ${name})`);
    }
    // The folder is the guest: a "name" edited by hand names no other guest's settings or sessions.
    return { ...parseProfile(json, file), name };
  }

  /** The folder every user guest's folder is in. */
  get root(): string {
    return this.#dir;
  }

  /** Files in the guest's folder that are not the guest's own (the user's), sorted. */
  foreignFiles(name: string): string[] {
    try {
      return readdirSync(this.folder(name))
        .filter((file) => !OWN_FILE.test(file))
        .sort();
    } catch {
      return [];
    }
  }

  /** Why a new guest cannot have this name's folder: it holds the user's files. */
  folderProblem(name: string): string | undefined {
    const foreign = this.foreignFiles(name);
    if (foreign.length === 0) return undefined;
    return `${this.folder(name)} holds files that are not a guest's (${foreign.slice(0, 5).join(", ")}${foreign.length > 5 ? ", …" : ""}); move them away or choose another name`;
  }

  source(name: string): UserSource {
    const file = join(this.#dir, name, "source.json");
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, "utf8"));
    } catch {
      throw new LibraryError(`guest "${name}": ${file} is missing or not valid JSON; remove the guest and add its image again`);
    }
    return parseSource(json, file);
  }

  /** Where an image of this guest is on the host. */
  imagePath(name: string, ref: ImageRef): string {
    return ref.path ?? join(this.folder(name), STORED_IMAGE);
  }

  overlay(name: string, role: DiskRole): string {
    return join(this.folder(name), `${role}.overlay`);
  }

  /**
   * The guest's changes to its disks in bytes: the sectors its overlays hold (an overlay just
   * made holds only its header: no changes). An overlay that cannot be read counts at its file
   * size, so a damaged one is never taken for "no changes".
   */
  overlayBytes(name: string): number {
    let bytes = 0;
    for (const role of DISK_ROLES) {
      const path = this.overlay(name, role);
      try {
        bytes += overlayStats(path).changedBytes;
      } catch {
        bytes += lstatSync(path, { throwIfNoEntry: false })?.size ?? 0;
      }
    }
    return bytes;
  }

  saveProfile(name: string, profile: GuestProfile): void {
    writePrivateFileAtomic(join(this.folder(name), "guest.json"), `${JSON.stringify(profile, null, 2)}\n`);
  }

  saveSource(name: string, source: UserSource): void {
    writePrivateFileAtomic(join(this.folder(name), "source.json"), `${JSON.stringify(source, null, 2)}\n`);
  }

  /**
   * Makes a guest's folder whole, then puts it in place: a crash leaves no half guest (only a
   * hidden folder, swept on the next add). `upload` is a file of this data folder to keep as the image.
   */
  create(profile: GuestProfile, source: UserSource, upload?: string): void {
    makePrivateDir(this.#dir);
    this.sweep();
    const staging = join(this.#dir, `.new-${profile.name}.${process.pid}.${randomBytes(4).toString("hex")}`);
    makePrivateDir(staging);
    try {
      writePrivateFileAtomic(join(staging, "guest.json"), `${JSON.stringify(profile, null, 2)}\n`);
      writePrivateFileAtomic(join(staging, "source.json"), `${JSON.stringify(source, null, 2)}\n`);
      if (upload) renameSync(upload, join(staging, STORED_IMAGE));
      const target = this.folder(profile.name);
      // A folder with only settings (saved before the guest was added) is taken over.
      if (existsSync(target)) {
        if (existsSync(join(target, "guest.json"))) throw new LibraryError(`a guest named "${profile.name}" exists already`);
        const problem = this.folderProblem(profile.name);
        if (problem) throw new LibraryError(problem);
        const settings = join(target, "settings.json");
        if (existsSync(settings)) renameSync(settings, join(staging, "settings.json"));
        rmSync(target, { recursive: true, force: true });
      }
      renameSync(staging, target);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      throw error;
    }
  }

  /** Removes what a killed add left behind: hidden staging and upload folders older than a minute. */
  sweep(): void {
    if (!existsSync(this.#dir)) return;
    for (const e of readdirSync(this.#dir, { withFileTypes: true })) {
      if (!e.isDirectory() || !/^\.(new|upload)-/.test(e.name)) continue;
      const path = join(this.#dir, e.name);
      try {
        if (Date.now() - statSync(path).mtimeMs > 60_000) rmSync(path, { recursive: true, force: true });
      } catch {
        // gone already
      }
    }
  }

  /** A hidden folder for a page upload in progress, removed by the add or the next sweep. */
  uploadFolder(): string {
    makePrivateDir(this.#dir);
    const folder = join(this.#dir, `.upload-${process.pid}.${randomBytes(4).toString("hex")}`);
    makePrivateDir(folder);
    return folder;
  }

  /**
   * Removes the guest's own files, and its folder when nothing else is in it. Returns the files
   * that are not the guest's, kept where they are.
   */
  remove(name: string): string[] {
    const folder = this.folder(name);
    let files: string[];
    try {
      files = readdirSync(folder);
    } catch {
      return [];
    }
    // guest.json last: until it goes, the guest is still listed and can be removed again.
    for (const file of files.filter((f) => OWN_FILE.test(f) && f !== "guest.json")) rmSync(join(folder, file), { recursive: true, force: true });
    rmSync(join(folder, "guest.json"), { force: true });
    const kept = this.foreignFiles(name);
    if (kept.length === 0) rmdirSync(folder);
    return kept;
  }

  /** Discards the guest's changes; the image as it is now becomes its base. */
  reset(name: string, source: UserSource): void {
    for (const role of DISK_ROLES) {
      try {
        unlinkSync(this.overlay(name, role));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    const fresh: UserSource = { media: {} };
    for (const [role, ref] of Object.entries(source.media) as [MediaRole, ImageRef][]) {
      let next = ref;
      try {
        const st = statSync(this.imagePath(name, ref));
        next = { ...ref, size: st.size, mtimeMs: st.mtimeMs };
      } catch {
        // missing: resolve() says so when the guest is started
      }
      fresh.media[role] = next;
    }
    this.saveSource(name, fresh);
  }
}
