// `unmachine serve`: the web shell. Builds the default guest first if it is missing (with
// progress), prints the page's address with its token on stdout (for the user only), and opens
// the page in Chromium's app mode when a display exists, unless --no-open. The browser gets a
// one-time code, never the token: any local user can read a process's command line.

import { EMULATOR_V8_FLAGS } from "../emulator-v8.js";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { GuestLibrary } from "../guests/library.js";
import { ensureGuestBuilt } from "../guests/builder.js";
import { startWebShell, type WebShell } from "../web/server.js";
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

export interface BrowserLaunch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * How the page is opened as an app window with a profile of its own: the address carries a
 * one-time code (worth nothing to another user: the server answers only its own user, see
 * main/web/peer.ts), and the environment is this process's.
 */
export function appWindowLaunch(shell: Pick<WebShell, "oneTimeUrl">, browser: string, profileDir: string): BrowserLaunch {
  return {
    command: browser,
    // Its own profile, so its own browser process: the page's V8 gets the emulator's flags, as in the desktop app.
    args: [`--app=${shell.oneTimeUrl()}`, `--user-data-dir=${profileDir}`, "--no-first-run", "--disable-background-networking", "--disable-sync", `--js-flags=${EMULATOR_V8_FLAGS}`],
    env: { ...process.env },
  };
}

/** Opens the page as an app window, when there is a display and a browser. */
export function openAppWindow(shell: WebShell): boolean {
  const browser = findBrowser();
  if (!browser || !(process.env.DISPLAY || process.env.WAYLAND_DISPLAY)) return false;
  const launch = appWindowLaunch(shell, browser, join(dataDir(), "browser-profile"));
  const child = spawn(launch.command, launch.args, { stdio: "ignore", detached: true, env: launch.env });
  child.on("error", () => {});
  child.unref();
  return true;
}

export async function serveCommand(library: GuestLibrary, flags: ServeFlags): Promise<number> {
  await ensureGuestBuilt(library, "tiny");
  const shell = await startWebShell({ library, port: flags.port, sessions: new HostSessions(join(dataDir(), "logs")) });
  process.stdout.write(`${shell.url}\n`);
  if (flags.open && !openAppWindow(shell)) {
    const missing = process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? "No Chromium found" : "No display";
    process.stderr.write(`${missing}: open the address above in a Chromium-based browser.\n`);
  }
  await new Promise<void>((resolveStop) => {
    process.once("SIGINT", resolveStop);
    process.once("SIGTERM", resolveStop);
  });
  await shell.close();
  return 0;
}
