// Builds a guest's files (firmware, kernel, initrd) from Debian packages by running its
// recipe, guests/<name>/build.sh, into the cache folder. The recipe is idempotent and prints
// its own progress; this only runs it and turns a failure into one clear error.

import { spawn } from "node:child_process";
import type { Writable } from "node:stream";
import type { GuestLibrary } from "./library.js";
import { cacheDir } from "../paths.js";

export class BuildError extends Error {
  override name = "BuildError";
}

export interface BuildOptions {
  force?: boolean;
  /** Where the recipe's progress goes (default: this process's stderr). */
  progress?: Writable;
  /** Also show the recipe's closing line ("up to date", "built ..."); on for `unmachine build`. */
  summary?: boolean;
}

export async function buildGuest(library: GuestLibrary, name: string, options: BuildOptions = {}): Promise<void> {
  const script = library.buildScript(name);
  if (!script) throw new BuildError(`guest "${name}" has no build recipe`);
  const args = [script, ...(options.force ? ["--force"] : [])];
  const progress = options.progress ?? process.stderr;
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn("bash", args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, UNMACHINE_CACHE: cacheDir() },
    });
    if (options.summary) child.stdout.pipe(progress, { end: false });
    else child.stdout.resume();
    child.stderr.pipe(progress, { end: false });
    child.on("error", (error) => reject(new BuildError(`could not run the ${name} build recipe: ${error.message}`)));
    child.on("close", (code) => {
      if (code === 0) resolvePromise();
      else reject(new BuildError(`building guest "${name}" failed (exit ${String(code)}); see the lines above`));
    });
  });
}

/**
 * Makes sure the guest's files are built and current: its recipe checks itself (a hash of the
 * recipe against the built files) and returns at once when nothing changed. A guest without
 * a recipe only has to be present.
 */
export async function ensureGuestBuilt(library: GuestLibrary, name: string, options: BuildOptions = {}): Promise<void> {
  if (library.buildScript(name)) await buildGuest(library, name, options);
  const problem = library.problem(name);
  if (problem) throw new BuildError(`guest "${name}" is still not ready after building: ${problem}`);
}
