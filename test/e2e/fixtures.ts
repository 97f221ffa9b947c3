// A web shell per test, started the way a user starts it (`unmachine serve --no-open`), with its
// own data and home folders: no test sees another's settings, and its console logs can be read back.
// A test may have its own copy of the built guests (ownCache), so nothing rebuilds them under it.
import { test as base } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const root = resolve(import.meta.dirname, "../..");

export interface Served {
  url: string;
  dataDir: string;
  /** The host user's home folder as the server sees it (a fresh one, for the folder picker). */
  home: string;
}

export const cacheDir = process.env.UNMACHINE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "unmachine");

/**
 * A copy of the built guests and firmware for one test (the package downloads shared): what it
 * boots cannot be rebuilt under it by another run, which would change its machine mid-test.
 */
function privateCache(): string {
  const dir = mkdtempSync(join(tmpdir(), "unmachine-cache-"));
  for (const entry of readdirSync(cacheDir)) {
    if (entry === "firmware" || entry === "guests") cpSync(join(cacheDir, entry), join(dir, entry), { recursive: true });
    else symlinkSync(join(cacheDir, entry), join(dir, entry));
  }
  return dir;
}

export const test = base.extend<{ served: Served; ownCache: boolean }>({
  ownCache: [false, { option: true }],
  served: [
    async ({ ownCache }, use) => {
      const dataDir = mkdtempSync(join(tmpdir(), "unmachine-e2e-"));
      const home = mkdtempSync(join(tmpdir(), "unmachine-home-"));
      const cache = ownCache ? privateCache() : cacheDir;
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
