// Where Unmachine's files live on the host. Built guests and firmware go to the user's cache
// folder (rebuildable, never committed); guest profiles ship in guests/ beside the code, and
// in a packaged app the prebuilt firmware and default guest sit in its resources folder.

import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project (or unpacked app) root: the nearest folder up from here with a package.json. */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("Unmachine's package.json was not found above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export const appRoot = findRoot();

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.UNMACHINE_CACHE) return resolve(env.UNMACHINE_CACHE);
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), ".cache");
  return join(base, "unmachine");
}

export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.UNMACHINE_DATA) return resolve(env.UNMACHINE_DATA);
  const base = env.XDG_DATA_HOME ? resolve(env.XDG_DATA_HOME) : join(homedir(), ".local", "share");
  return join(base, "unmachine");
}

/** Folders searched, in order, for built guests and firmware. */
export function builtRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const roots = [cacheDir(env)];
  // electron-builder puts extraResources here; see electron-builder.yml.
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  if (env.UNMACHINE_RESOURCES) roots.push(resolve(env.UNMACHINE_RESOURCES));
  else if (resources) roots.push(join(resources, "unmachine"));
  return roots;
}

export const guestsDir = join(appRoot, "guests");
export const rendererDir = join(appRoot, "dist", "renderer");
export const assetsDir = join(appRoot, "assets");
export const v86Dir = join(appRoot, "node_modules", "v86", "build");
