// The guest library: the profiles in guests/<name>/guest.json and whether their built files
// (kernel, initrd, disks, firmware) are present. It resolves a guest to host file paths; the
// shells turn those into what their runtime loads (URLs for the page, buffers for a worker).

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseProfile, type GuestProfile, type MediaRole } from "../../core/guest/profile.js";
import type { GuestSummary } from "../../core/ipc/contract.js";
import { builtRoots, guestsDir } from "../paths.js";

export interface FirmwarePaths {
  bios: string;
  vgaBios: string;
}

export interface ResolvedGuest {
  profile: GuestProfile;
  firmware: FirmwarePaths;
  media: Partial<Record<MediaRole, string>>;
}

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

  constructor(dir = guestsDir, roots = builtRoots()) {
    this.#dir = dir;
    this.#roots = roots;
  }

  profiles(): GuestProfile[] {
    if (!existsSync(this.#dir)) return [];
    return readdirSync(this.#dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(this.#dir, e.name, "guest.json")))
      .map((e) => this.profile(e.name))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  has(name: string): boolean {
    return /^[a-z0-9-]+$/.test(name) && existsSync(join(this.#dir, name, "guest.json"));
  }

  profile(name: string): GuestProfile {
    if (!this.has(name)) {
      const known = this.profiles().map((p) => p.name);
      throw new GuestNotFoundError(`no guest named "${name}" (known guests: ${known.join(", ") || "none"})`);
    }
    const file = join(this.#dir, name, "guest.json");
    return parseProfile(JSON.parse(readFileSync(file, "utf8")), file);
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

  resolve(name: string): ResolvedGuest {
    const profile = this.profile(name);
    const firmware = this.firmware();
    const build = this.buildScript(name) ? ` (run: unmachine build ${name})` : "";
    if (!firmware) throw new GuestNotReadyError(`guest "${name}": firmware (SeaBIOS) is not built yet${build}`);
    const media: Partial<Record<MediaRole, string>> = {};
    for (const [role, file] of Object.entries(profile.media) as [MediaRole, string][]) {
      const path = this.#find(join("guests", name, file));
      if (!path) throw new GuestNotReadyError(`guest "${name}": ${file} is not built yet${build}`);
      media[role] = path;
    }
    return { profile, firmware, media };
  }

  summaries(): GuestSummary[] {
    return this.profiles().map((p) => {
      const problem = this.problem(p.name);
      const summary: GuestSummary = { name: p.name, title: p.title, description: p.description, memory: p.memory, ready: !problem };
      if (problem) summary.problem = problem;
      return summary;
    });
  }
}
