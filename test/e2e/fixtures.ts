// A web shell per test, started the way a user starts it (`unmachine serve --no-open`), with its
// own data and home folders: no test sees another's settings, and its console logs can be read back.
// A test may have its own copy of the built guests (ownCache), so nothing rebuilds them under it.
import { test as base } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const root = resolve(import.meta.dirname, "../..");

export interface Served {
  url: string;
  dataDir: string;
  /** The host user's home folder as the server sees it (a fresh one, for the folder picker). */
  home: string;
}

/** How many guests the app ships (guests/NAME/guest.json): the library lists each, built or not. */
export const builtInGuests = readdirSync(join(root, "guests")).filter((name) => existsSync(join(root, "guests", name, "guest.json"))).length;

export const cacheDir = process.env.UNMACHINE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "unmachine");

/**
 * A copy of the built guests and firmware for one test (the package downloads shared): what it
 * boots cannot be rebuilt under it by another run, which would change its machine mid-test. A
 * built root folder (the desktop's) is linked, not copied. `cold`: without the started states
 * `unmachine build` keeps, so a first start boots.
 */
function privateCache(cold: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), "unmachine-cache-"));
  for (const entry of readdirSync(cacheDir)) {
    if (entry === "firmware") cpSync(join(cacheDir, entry), join(dir, entry), { recursive: true });
    else if (entry !== "guests") symlinkSync(join(cacheDir, entry), join(dir, entry));
  }
  for (const guest of existsSync(join(cacheDir, "guests")) ? readdirSync(join(cacheDir, "guests")) : []) {
    const from = join(cacheDir, "guests", guest);
    const to = join(dir, "guests", guest);
    mkdirSync(to, { recursive: true });
    for (const file of readdirSync(from)) {
      if (cold && file === "built.state") continue;
      if (file === "root") symlinkSync(join(from, file), join(to, file));
      else cpSync(join(from, file), join(to, file), { recursive: true });
    }
  }
  return dir;
}

export const test = base.extend<{ served: Served; ownCache: boolean; coldCache: boolean }>({
  ownCache: [false, { option: true }],
  coldCache: [false, { option: true }],
  served: [
    async ({ ownCache, coldCache }, use) => {
      const dataDir = mkdtempSync(join(tmpdir(), "unmachine-e2e-"));
      const home = mkdtempSync(join(tmpdir(), "unmachine-home-"));
      const cache = ownCache || coldCache ? privateCache(coldCache) : cacheDir;
      const child: ChildProcess = spawn(process.execPath, [join(root, "bin/unmachine.js"), "serve", "--no-open"], {
        env: { ...process.env, UNMACHINE_DATA: dataDir, UNMACHINE_CACHE: cache, HOME: home },
        stdio: ["ignore", "pipe", "inherit"],
      });
      const url = await new Promise<string>((resolveUrl, reject) => {
        let out = "";
        child.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          const m = /http:\/\/127\.0\.0\.1:\d+\/\?token=\w+/.exec(out);
          if (m) resolveUrl(m[0]);
        });
        child.on("exit", (code) => reject(new Error(`unmachine serve exited with ${code}`)));
      });
      await use({ url, dataDir, home });
      child.kill("SIGTERM");
      if (cache !== cacheDir) rmSync(cache, { recursive: true, force: true });
    },
    { scope: "test" },
  ],
});

export { expect } from "@playwright/test";
