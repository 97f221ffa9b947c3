// Builds a guest's files (firmware, kernel, initrd) from Debian packages by running its
// recipe, guests/<name>/build.sh, into the cache folder. The recipe is idempotent and prints
// its own progress; this only runs it and turns a failure into one clear error. `unmachine
// build` then boots the guest once, headless, and keeps its started state (built.state beside
// its files), so a user's first start resumes instead of booting; kept until a file or the
// emulator changes.

import { spawn } from "node:child_process";
import type { Writable } from "node:stream";
import type { GuestLibrary } from "./library.js";
import { cacheDir } from "../paths.js";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative } from "node:path";
import { libraryPlan } from "./launch.js";
import { builtStatePath, expectationFor } from "../state/guest-states.js";
import { readStateFile, StateError, writeStateFile } from "../state/state-file.js";
import { hostServiceSet } from "../host/services.js";
import { namesFoldersByPlace } from "../host/p9-service.js";
import { giveFolderId } from "../p9/folder-id.js";
import { ROOT_SHARE_TAG } from "../../core/guest/launch-plan.js";
import { HeadlessGuest } from "../headless/runner.js";
import { compressSaved } from "../state/state-zstd.js";
import { windowsReported } from "../host/agent-api.js";

export class BuildError extends Error {
  override name = "BuildError";
}

export interface BuildOptions {
  force?: boolean;
  /** Where the recipe's progress goes (default: this process's stderr). */
  progress?: Writable;
  /** Also show the recipe's closing line ("up to date", "built ..."); on for `unmachine build`. */
  summary?: boolean;
  /** Then boot the guest once and keep its started state (built.state); on for `unmachine build`. */
  keepState?: boolean;
}

/** How long the guest may take to boot to its prompt, and to settle after it (its agent's hello). */
const BOOT_MS = 180_000;
const SETTLE_MS = 1500;
/** How long a guest with windows may take to show its first one after its prompt. */
const WINDOW_MS = 180_000;


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
      if (code === 0) {
        markChecked(library, name);
        resolvePromise();
      }
      else reject(new BuildError(`building guest "${name}" failed (exit ${String(code)}); see the lines above`));
    });
  });
  if (options.keepState) await keepBuiltState(library, name, progress, options.summary === true);
}

/**
 * Boots a built guest once to its prompt with the services a run gives it, lets it settle,
 * suspends it and keeps the state as built.state beside its files in the cache. Not redone
 * while the state is newer than the guest's files and made by this emulator for this machine.
 */
export async function keepBuiltState(library: GuestLibrary, name: string, progress: Writable, summary: boolean): Promise<void> {
  const plan = libraryPlan(library, name);
  if (plan.ready.kind !== "prompt") return; // nothing tells when such a guest has booted
  const resolved = library.resolve(name);
  const path = builtStatePath(resolved.media);
  const inCache = path !== undefined && !relative(cacheDir(), path).startsWith("..") && !isAbsolute(relative(cacheDir(), path));
  if (!path || !inCache) return; // a packaged app's prebuilt guest is not written to
  const expected = expectationFor(plan.machine);
  // Its files, and its profile (how it is kept, e.g. once a window shows, is the profile's to say).
  const files = [...Object.values(resolved.media), resolved.firmware.bios, resolved.firmware.vgaBios, library.profileFile(name)].filter((f): f is string => f !== undefined);
  try {
    const saved = readStateFile(path, expected);
    const newest = Math.max(...files.map((f) => statSync(f).mtimeMs));
    // One kept before folders had ids is kept again: it would not resume from a copied cache.
    if (saved.header.savedAt >= newest && !namesFoldersByPlace(saved.header.host?.p9)) {
      if (summary) progress.write(`${name}: started state up to date\n`);
      return;
    }
  } catch (error) {
    if (!(error instanceof StateError) && (error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  progress.write(`${name}: booting once to keep its started state (so a first start resumes)...\n`);
  // Its root folder is shared read-only: its id (which a copied cache keeps) is given here.
  if (plan.services.p9?.kind === "shares") {
    for (const share of plan.services.p9.shares) if (share.tag === ROOT_SHARE_TAG) await giveFolderId(share.hostPath);
  }
  const started = Date.now();
  const services = hostServiceSet(plan, { onError: (message) => progress.write(`${name}: ${message}\n`) });
  await services.ready;
  const guest = new HeadlessGuest(plan, { services: services.attach });
  try {
    await guest.waitForShell(BOOT_MS);
    const agent = services.agent();
    if (agent) await agent.whenReady(10_000).catch(() => undefined);
    // A desktop is kept once it shows a window, so a start resumes to an app, not to X starting.
    if (resolved.profile.windows) {
      if (!agent) throw new Error("its agent did not start");
      await windowsReported(agent, WINDOW_MS, `no window showed within ${WINDOW_MS / 1000} s of its prompt`, (windows) => windows.length > 0);
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    // What the guest cached of files it reads from the host is read again when needed: with its
    // freed memory zeroed (init_on_free), the kept state does not carry it.
    if (agent?.state === "ready") await agent.exec("sync; echo 3 > /proc/sys/vm/drop_caches", { timeoutMs: 30_000, maxOutput: 4096 }).catch(() => undefined);
    const raw = await guest.suspend();
    const host = services.saveState?.();
    const payload = await compressSaved(raw);
    const state: Parameters<typeof writeStateFile>[1] = { emulator: expected.emulator, machine: expected.machine, guest: name, disks: {} };
    if (host !== undefined) state.host = host;
    writeStateFile(path, state, payload);
    progress.write(`${name}: kept its started state (${(payload.length / 1024 / 1024).toFixed(1)} MiB, booted in ${Math.round((Date.now() - started) / 1000)} s)\n`);
  } catch (error) {
    throw new BuildError(`${name}: booting it once to keep its started state failed: ${(error as Error).message}`);
  } finally {
    services.dispose();
    await guest.stop();
    guest.dispose();
  }
}

/**
 * Makes sure the guest's files are built and current: its recipe checks itself (a hash of the
 * recipe against the built files) and returns at once when nothing changed. A guest without
 * a recipe only has to be present.
 */
export async function ensureGuestBuilt(library: GuestLibrary, name: string, options: BuildOptions = {}): Promise<void> {
  const asked = options.force === true || options.keepState === true || options.summary === true;
  if (library.buildScript(name) && (asked || !checkedSinceChanged(library, name) || library.problem(name) !== undefined)) await buildGuest(library, name, options);
  const problem = library.problem(name);
  if (problem) throw new BuildError(`guest "${name}" is still not ready after building: ${problem}`);
}

/**
 * Where a guest's recipe last found its files current or built them: a mark in its output
 * folder, whose time is that run's. The recipe's own check (a hash of the recipe against its
 * files) takes a shell, and a few tenths of a second on a slow host; while no file of the
 * recipes is newer than the mark and the guest's files are all there, a start need not ask it
 * again. `unmachine build` always asks.
 */
function checkedMark(name: string): string {
  return join(cacheDir(), "guests", name, ".recipe-checked");
}

/** The folder of all recipes (guests/): one checkout's; another's sharing the cache is asked anew. */
function recipesOf(library: GuestLibrary, name: string): string | undefined {
  const script = library.buildScript(name);
  return script === undefined ? undefined : dirname(dirname(script));
}

function markChecked(library: GuestLibrary, name: string): void {
  const recipes = recipesOf(library, name);
  if (recipes === undefined) return;
  try {
    // Rewritten whole: its time is this check's, its text the recipes it checked.
    writeFileSync(checkedMark(name), recipes, { mode: 0o644 });
  } catch {
    // No mark (a read-only cache): the recipe is asked at each start, as before.
  }
}

/** The newest change (mtime, ms) of any file under `folder`. */
function newestChange(folder: string): number {
  let newest = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Whether these recipes found the guest current after the last change to any of them (all of
 * guests/: they share their libraries). A cache shared by two checkouts is marked by the last
 * one checked: the other's recipe is asked again.
 */
function checkedSinceChanged(library: GuestLibrary, name: string): boolean {
  const recipes = recipesOf(library, name);
  if (recipes === undefined) return false;
  try {
    const mark = checkedMark(name);
    return readFileSync(mark, "utf8") === recipes && statSync(mark).mtimeMs > newestChange(recipes);
  } catch {
    return false;
  }
}
