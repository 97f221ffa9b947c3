// Guest settings on disk: <data>/guests/<name>/settings.json, read and checked by
// core/guest/settings.ts, written atomically (temporary file, fsync, rename), so a crash
// never leaves a half-written file. Share folders are checked to exist when saved.

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_SETTINGS, parseSettings, SettingsError, type GuestSettings } from "../../core/guest/settings.js";

export function writeFileAtomic(path: string, text: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, "w", 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
}

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
    mkdirSync(join(this.#dir, guest), { recursive: true });
    writeFileAtomic(file, `${JSON.stringify(checked, null, 2)}\n`);
    return checked;
  }
}
