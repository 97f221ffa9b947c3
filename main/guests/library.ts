// The guest library: the built-in profiles in guests/<name>/guest.json (their built files in the
// cache) and the user's guests in the data folder (user-guests.ts), one list, one name space.
// It resolves a guest to host file paths and served hard disks (base image + overlay); the
// shells turn those into what their runtime loads (URLs for the page, buffers for a worker).

import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseProfile, type GuestProfile, type MediaRole } from "../../core/guest/profile.js";
import type { DiskRole, ServedDisk } from "../../core/guest/launch-plan.js";
import type { GuestSummary } from "../../core/ipc/contract.js";
import type { GuestSettings } from "../../core/guest/settings.js";
import { builtRoots, dataDir, guestsDir } from "../paths.js";
import { SettingsStore } from "./settings-store.js";
import { isDiskRole, UserGuests, type ImageRef } from "./user-guests.js";

export interface FirmwarePaths {
  bios: string;
  vgaBios: string;
}

export interface ResolvedGuest {
  profile: GuestProfile;
  firmware: FirmwarePaths;
  /** Media the runtime loads whole (kernels, initrds, floppies, CDs, a built-in guest's disks). */
  media: Partial<Record<MediaRole, string>>;
  /** A user guest's hard disks, served block by block from the image and its overlay. */
  disks: Partial<Record<DiskRole, ServedDisk>>;
  /** The built folder that is the guest's root file system (its profile's root). */
  root?: string;
}

const MiB = 1024 * 1024;

export class GuestNotFoundError extends Error {
  override name = "GuestNotFoundError";
}

export class GuestNotReadyError extends Error {
  override name = "GuestNotReadyError";
}

export const FIRMWARE_FILES = { bios: "bios.bin", vgaBios: "vgabios-stdvga.bin" } as const;

export class GuestLibrary {
  readonly #dir: string;
  readonly #roots: string[];
  readonly user: UserGuests;
  readonly settings: SettingsStore;
  /** The data folder: the user's guests, settings and saved states. */
  readonly dataDir: string;

  constructor(dir = guestsDir, roots = builtRoots(), data = dataDir()) {
    this.#dir = dir;
    this.#roots = roots;
    this.dataDir = data;
    this.user = new UserGuests(data);
    this.settings = new SettingsStore(data);
  }

  #builtInNames(): string[] {
    if (!existsSync(this.#dir)) return [];
    return readdirSync(this.#dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && /^[a-z0-9-]+$/.test(e.name) && existsSync(join(this.#dir, e.name, "guest.json")))
      .map((e) => e.name);
  }

  profiles(): GuestProfile[] {
    const builtIn = this.#builtInNames();
    const names = [...builtIn, ...this.user.names().filter((n) => !builtIn.includes(n))];
    const profiles: GuestProfile[] = [];
    for (const name of names) {
      try {
        profiles.push(this.profile(name));
      } catch {
        // a user's damaged guest.json: left out of the list, named when asked for
      }
    }
    return profiles.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Shipped with the app: its name cannot be taken, it cannot be removed or re-profiled. */
  isBuiltIn(name: string): boolean {
    return /^[a-z0-9-]+$/.test(name) && existsSync(join(this.#dir, name, "guest.json"));
  }

  has(name: string): boolean {
    return this.isBuiltIn(name) || this.user.has(name);
  }

  profile(name: string): GuestProfile {
    if (!this.has(name)) {
      const known = this.profiles().map((p) => p.name);
      throw new GuestNotFoundError(`no guest named "${name}" (known guests: ${known.join(", ") || "none"})`);
    }
    if (!this.isBuiltIn(name)) return this.user.profile(name);
    const file = join(this.#dir, name, "guest.json");
    return parseProfile(JSON.parse(readFileSync(file, "utf8")), file);
  }

  /** A built-in guest's profile file (guests/NAME/guest.json). */
  profileFile(name: string): string | undefined {
    return this.isBuiltIn(name) ? join(this.#dir, name, "guest.json") : undefined;
  }

  /** The build script that makes this guest's files, if it has one. */
  buildScript(name: string): string | undefined {
    const script = join(this.#dir, name, "build.sh");
    return existsSync(script) ? script : undefined;
  }

  #find(relative: string): string | undefined {
    for (const root of this.#roots) {
      const path = join(root, relative);
      if (existsSync(path) && statSync(path).isFile()) return path;
    }
    return undefined;
  }

  /** A built folder with an /init in it, in the first root that has one: its real path, as a
   * share's folder is recorded (it is served without following links). */
  #findFolder(relative: string): string | undefined {
    for (const root of this.#roots) {
      const path = join(root, relative);
      if (existsSync(join(path, "init")) && statSync(path).isDirectory()) return realpathSync(path);
    }
    return undefined;
  }

  firmware(): FirmwarePaths | undefined {
    const bios = this.#find(join("firmware", FIRMWARE_FILES.bios));
    const vgaBios = this.#find(join("firmware", FIRMWARE_FILES.vgaBios));
    return bios && vgaBios ? { bios, vgaBios } : undefined;
  }

  /** What is missing for this guest to start, or undefined when it can. */
  problem(name: string): string | undefined {
    try {
      this.resolve(name);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** The guest's files on the host; a user guest's hard disks are sized by its saved settings (or these). */
  resolve(name: string, settings?: GuestSettings): ResolvedGuest {
    const profile = this.profile(name);
    const firmware = this.firmware();
    const builtIn = this.isBuiltIn(name);
    const build = builtIn && this.buildScript(name) ? ` (run: unmachine build ${name})` : builtIn ? "" : " (run: unmachine build)";
    if (!firmware) throw new GuestNotReadyError(`guest "${name}": firmware (SeaBIOS) is not built yet${build}`);
    const media: Partial<Record<MediaRole, string>> = {};
    const disks: Partial<Record<DiskRole, ServedDisk>> = {};
    if (builtIn) {
      for (const [role, file] of Object.entries(profile.media) as [MediaRole, string][]) {
        const path = this.#find(join("guests", name, file));
        if (!path) throw new GuestNotReadyError(`guest "${name}": ${file} is not built yet${build}`);
        media[role] = path;
      }
      const resolved: ResolvedGuest = { profile, firmware, media, disks };
      if (profile.root !== undefined) {
        const root = this.#findFolder(join("guests", name, profile.root));
        if (!root) throw new GuestNotReadyError(`guest "${name}": its root folder ${profile.root} is not built yet${build}`);
        resolved.root = root;
      }
      return resolved;
    }
    if (profile.root !== undefined) throw new GuestNotReadyError(`guest "${name}": only a built-in guest can have a built root folder`);
    const source = this.user.source(name);
    const diskMiB = (settings ?? this.settings.load(name)).diskMiB;
    for (const [role, ref] of Object.entries(source.media) as [MediaRole, ImageRef][]) {
      const path = this.user.imagePath(name, ref);
      let size: number;
      try {
        const st = statSync(path);
        if (!st.isFile()) throw new Error("not a file");
        size = st.size;
      } catch {
        throw new GuestNotReadyError(`guest "${name}": its image ${path} is gone; put it back, or remove the guest (unmachine rm ${name})`);
      }
      if (!isDiskRole(role)) {
        media[role] = path;
        continue;
      }
      const overlay = this.user.overlay(name, role);
      if (size !== ref.size && this.user.overlayBytes(name) > 0) {
        throw new GuestNotReadyError(
          `guest "${name}": its image ${path} changed since the guest's changes were made (${ref.size} bytes then, ${size} now); restore it, or discard the changes (unmachine reset ${name})`,
        );
      }
      disks[role] = { base: path, overlay, size: Math.max(size, (diskMiB ?? 0) * MiB) };
    }
    return { profile, firmware, media, disks };
  }

  summaries(): GuestSummary[] {
    return this.profiles().map((p) => {
      const problem = this.problem(p.name);
      const builtIn = this.isBuiltIn(p.name);
      let memory = p.memory;
      try {
        memory = this.settings.load(p.name).memory ?? p.memory;
      } catch {
        // damaged settings: the settings panel says so
      }
      const family = p.family ?? (p.media.bzimage ? "linux" : "other");
      const summary: GuestSummary = { name: p.name, title: p.title, description: p.description, memory, family, builtIn, ready: !problem };
      if (p.prompt !== undefined) summary.prompt = p.prompt;
      if (problem) summary.problem = problem;
      if (!builtIn && !problem) {
        const disk = this.resolve(p.name).disks.hda;
        if (disk) {
          summary.diskSize = disk.size;
          summary.diskUsed = this.user.overlayBytes(p.name);
        }
      }
      return summary;
    });
  }
}
