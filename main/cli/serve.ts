// `unmachine serve`: the web shell. Builds the default guest first if it is missing (with
// progress), prints the page's address with its token on stdout, and opens it in Chromium's
// app mode when a display exists, unless --no-open.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { GuestLibrary } from "../guests/library.js";
import { ensureGuestBuilt } from "../guests/builder.js";
import { startWebShell } from "../web/server.js";
import { dataDir } from "../paths.js";
import { HostSessions } from "../host/sessions.js";
import { join } from "node:path";

export interface ServeFlags {
  port: number;
  open: boolean;
}

const BROWSERS = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export function findBrowser(): string | undefined {
  return BROWSERS.find((b) => existsSync(b));
}

/** Opens the page as an app window; the browser gets a profile of its own. */
export function openAppWindow(url: string): boolean {
  const browser = findBrowser();
  if (!browser || !process.env.DISPLAY) return false;
  const child = spawn(
    browser,
    [`--app=${url}`, `--user-data-dir=${join(dataDir(), "browser-profile")}`, "--no-first-run", "--disable-background-networking", "--disable-sync"],
    { stdio: "ignore", detached: true },
  );
  child.on("error", () => {});
  child.unref();
  return true;
}

export async function serveCommand(library: GuestLibrary, flags: ServeFlags): Promise<number> {
  await ensureGuestBuilt(library, "tiny");
  const shell = await startWebShell({ library, port: flags.port, sessions: new HostSessions(join(dataDir(), "logs")) });
  process.stdout.write(`${shell.url}\n`);
  if (flags.open && !openAppWindow(shell.url)) {
    const missing = process.env.DISPLAY ? "No Chromium found" : "No display";
    process.stderr.write(`${missing}: open the address above in a Chromium-based browser.\n`);
  }
  await new Promise<void>((resolveStop) => {
    process.once("SIGINT", resolveStop);
    process.once("SIGTERM", resolveStop);
  });
  await shell.close();
  return 0;
}
