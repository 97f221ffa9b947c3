// Guest settings on disk: <data>/guests/<name>/settings.json, read and checked by
// core/guest/settings.ts, written atomically and 0600 by main/private-files.ts, so a crash never
// leaves a half-written file; a crashed save's temporary file is cleared on the next load or save.
// Share folders are checked to exist when saved.

import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_SETTINGS, parseSettings, SettingsError, type GuestSettings } from "../../core/guest/settings.js";
import { makePrivateDir, sweepTemps, writePrivateFileAtomic } from "../private-files.js";

export class SettingsStore {
  readonly #dir: string;

  constructor(dataDir: string) {
    this.#dir = join(dataDir, "guests");
  }

  #file(guest: string): string {
    if (!/^[a-z0-9][a-z0-9-]{0,39}$/.test(guest)) throw new SettingsError(`"${guest}" is not a guest name`);
    return join(this.#dir, guest, "settings.json");
  }

  load(guest: string): GuestSettings {
    const file = this.#file(guest);
    sweepTemps(file);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return structuredClone(DEFAULT_SETTINGS);
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new SettingsError(`${file}: not valid JSON; fix or delete it`);
    }
    return parseSettings(json, file);
  }

  save(guest: string, settings: GuestSettings): GuestSettings {
    const file = this.#file(guest);
    const checked = parseSettings(settings, `settings of ${guest}`);
    for (const share of checked.shares) {
      let isDir = false;
      try {
        isDir = statSync(share.hostPath).isDirectory();
      } catch {
        throw new SettingsError(`share "${share.tag}": ${share.hostPath} does not exist`);
      }
      if (!isDir) throw new SettingsError(`share "${share.tag}": ${share.hostPath} is not a folder`);
    }
    makePrivateDir(join(this.#dir, guest));
    writePrivateFileAtomic(file, `${JSON.stringify(checked, null, 2)}\n`);
    return checked;
  }
}
