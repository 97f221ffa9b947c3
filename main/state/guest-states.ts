// A guest's saved states in its folder of the data dir (<data>/guests/NAME): suspend.state, the
// one it resumes from (a state that cannot be used is renamed suspend.state.unusable, with one
// line saying why), and named snapshots (snapshots/TAG.state, with a copy of each served
// disk's overlay as snapshots/TAG.<role>.overlay). A built-in guest with no state of its own
// starts from the built.state kept beside its built files, when that matches.

import { copyFileSync, constants, existsSync, lstatSync, openSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { DiskRole, LaunchMachine, MediaSource } from "../../core/guest/launch-plan.js";
import { machineIdentity } from "../../core/guest/state-identity.js";
import { makePrivateDir } from "../private-files.js";
import { dataDir } from "../paths.js";
import { replaceWith } from "../replace-file.js";
import { asidePath, checkStateFile, emulatorBuild, readStateFile, StateError, writeStateFile, type NewState, type SavedState, type StateExpectation, type StateHeader } from "./state-file.js";

export const SUSPEND_STATE = "suspend.state";
export const BUILT_STATE = "built.state";
const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class SnapshotError extends Error {
  override name = "SnapshotError";
}

/**
 * Makes a folder states are written in (0700), refusing one that is a symlink or not a folder:
 * a link planted in the data dir never takes a state (or an overlay's copy) out of it.
 */
function stateFolder(path: string): void {
  try {
    makePrivateDir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error; // a file in its place: said below
  }
  const st = lstatSync(path);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new SnapshotError(`${path} is ${st.isSymbolicLink() ? "a symlink" : "not a folder"}; states are kept only in a folder of their own: remove it and try again`);
}

/** What a state must match for this machine: this emulator, this hardware, these overlays. */
export function expectationFor(machine: LaunchMachine, disks: Partial<Record<DiskRole, { overlay: string }>> = {}): StateExpectation {
  const sizeOf = (source: MediaSource): number | undefined => (source.kind === "file" ? statSync(source.path, { throwIfNoEntry: false })?.size : undefined);
  const overlays: Partial<Record<DiskRole, string>> = {};
  for (const [role, disk] of Object.entries(disks) as [DiskRole, { overlay: string }][]) overlays[role] = disk.overlay;
  return { emulator: emulatorBuild(), machine: machineIdentity(machine, sizeOf), disks: overlays };
}

/** Where a state comes from, for the line that says it resumed. */
export type LoadedState = SavedState & { from: "suspend" | "built" };
/** A state found usable, its bytes left in its file. */
export type CheckedState = { header: StateHeader; from: "suspend" | "built" };

export interface Snapshot {
  tag: string;
  savedAt: number;
  bytes: number;
}

export class GuestStates {
  readonly folder: string;
  readonly name: string;

  constructor(folder: string, name: string) {
    this.folder = folder;
    this.name = name;
  }

  /** A guest's states in the data dir: <data>/guests/NAME. */
  static of(name: string, data: string = dataDir()): GuestStates {
    return new GuestStates(join(data, "guests", name), name);
  }

  get suspendPath(): string {
    return join(this.folder, SUSPEND_STATE);
  }

  get suspended(): boolean {
    return existsSync(this.suspendPath);
  }

  /** Whether load() has a state to read (whether it can be used is load's to find out). */
  hasState(built?: string): boolean {
    return this.suspended || (built !== undefined && existsSync(built));
  }

  /**
   * The state to resume from: the guest's own, else `built` (a built guest's) when it matches.
   * The guest's own that cannot be used is set aside and told in one line through `tell`.
   */
  load(expected: StateExpectation, tell: (line: string) => void, built?: string): LoadedState | undefined {
    return this.#find(expected, tell, built, readStateFile);
  }

  /** As load, the state checked the same way but its bytes not kept: for a host that sends the file on. */
  check(expected: StateExpectation, tell: (line: string) => void, built?: string): CheckedState | undefined {
    return this.#find(expected, tell, built, (path, checked) => ({ header: checkStateFile(path, checked) }));
  }

  /**
   * As check, but a state of the guest's own that cannot be used is left where it is, untold:
   * for a look ahead of a start (the start's own check sets it aside, saying why).
   */
  peek(expected: StateExpectation, built?: string): CheckedState | undefined {
    return this.#find(expected, undefined, built, (path, checked) => ({ header: checkStateFile(path, checked) }));
  }

  /** The state found usable; an unusable one of the guest's own is set aside and told through `tell`, or left when there is none. */
  #find<T extends { header: StateHeader }>(expected: StateExpectation, tell: ((line: string) => void) | undefined, built: string | undefined, read: (path: string, expected: StateExpectation) => T): (T & { from: "suspend" | "built" }) | undefined {
    if (this.suspended) {
      try {
        return { ...read(this.suspendPath, { ...expected, guest: this.name }), from: "suspend" };
      } catch (error) {
        if (!(error instanceof StateError)) throw error;
        if (tell) this.setAside(error.message, tell);
        return undefined;
      }
    }
    if (built === undefined || !existsSync(built)) return undefined;
    try {
      return { ...read(built, { ...expected, disks: {}, guest: this.name }), from: "built" };
    } catch (error) {
      if (!(error instanceof StateError)) throw error;
      return undefined; // not this run's machine (another RAM size, another build): a cold boot
    }
  }

  /** Renames the current state to suspend.state.unusable (replacing an older one), saying why. */
  setAside(reason: string, tell: (line: string) => void): void {
    try {
      renameSync(this.suspendPath, `${this.suspendPath}.unusable`);
    } catch {
      rmSync(this.suspendPath, { force: true });
    }
    tell(`${this.name}: its saved state cannot be used (${reason}); it starts cold`);
  }

  save(state: NewState, payload: Uint8Array): void {
    stateFolder(this.folder);
    writeStateFile(this.suspendPath, state, payload);
  }

  /** Forgets the saved state (a power-off, a cold start, a guest that stopped by itself). */
  discard(): boolean {
    const had = this.suspended;
    rmSync(this.suspendPath, { force: true });
    return had;
  }

  get #snapshots(): string {
    return join(this.folder, "snapshots");
  }

  #checkTag(tag: string): void {
    if (!TAG.test(tag)) throw new SnapshotError(`"${tag.slice(0, 70)}" is not a snapshot name: use letters, digits, ".", "_" and "-" (up to 64, a letter or digit first)`);
  }

  snapshots(): Snapshot[] {
    let names: string[];
    try {
      names = readdirSync(this.#snapshots);
    } catch {
      return [];
    }
    const out: Snapshot[] = [];
    for (const file of names.filter((n) => n.endsWith(".state")).sort()) {
      const tag = basename(file, ".state");
      try {
        const saved = readStateFile(join(this.#snapshots, file));
        out.push({ tag, savedAt: saved.header.savedAt, bytes: statSync(join(this.#snapshots, file)).size });
      } catch {
        out.push({ tag, savedAt: 0, bytes: 0 });
      }
    }
    return out;
  }

  /** Copies a file whole into place (written aside, synced, renamed), 0600. */
  #copy(from: string, to: string): void {
    const aside = asidePath(to);
    copyFileSync(from, aside, constants.COPYFILE_EXCL);
    const fd = openSync(aside, constants.O_RDWR);
    replaceWith(fd, aside, to, () => undefined);
  }

  /**
   * Keeps the guest's suspended state as snapshot `tag` (a saved state of a running guest is
   * written by the caller with saveSnapshot), with a copy of each disk's overlay.
   */
  snapshotSuspended(tag: string, overlays: Partial<Record<DiskRole, string>>): void {
    this.#checkTag(tag);
    if (!this.suspended) throw new SnapshotError(`${this.name} has no saved state to keep; start it, then save a snapshot while it runs`);
    try {
      readStateFile(this.suspendPath); // a damaged one (or a pipe) is not kept
    } catch (error) {
      if (error instanceof StateError) throw new SnapshotError(`${this.name}: its saved state cannot be kept (${error.message})`);
      throw error;
    }
    stateFolder(this.folder);
    stateFolder(this.#snapshots);
    for (const [role, overlay] of Object.entries(overlays) as [DiskRole, string][]) if (existsSync(overlay)) this.#copy(overlay, join(this.#snapshots, `${tag}.${role}.overlay`));
    this.#copy(this.suspendPath, join(this.#snapshots, `${tag}.state`));
  }

  /** Writes a running guest's state as snapshot `tag`, its overlays (synced, the guest stopped) copied beside it. */
  saveSnapshot(tag: string, state: NewState, payload: Uint8Array, overlays: Partial<Record<DiskRole, string>>): void {
    this.#checkTag(tag);
    stateFolder(this.folder);
    stateFolder(this.#snapshots);
    for (const [role, overlay] of Object.entries(overlays) as [DiskRole, string][]) if (existsSync(overlay)) this.#copy(overlay, join(this.#snapshots, `${tag}.${role}.overlay`));
    writeStateFile(join(this.#snapshots, `${tag}.state`), state, payload);
  }

  /** Makes snapshot `tag` the guest's saved state, its disks as they were then. */
  restoreSnapshot(tag: string, overlays: Partial<Record<DiskRole, string>>): void {
    this.#checkTag(tag);
    const state = join(this.#snapshots, `${tag}.state`);
    if (!existsSync(state)) throw new SnapshotError(`${this.name} has no snapshot "${tag}"${this.#known()}`);
    try {
      const { header } = readStateFile(state);
      if (header.guest !== this.name) throw new StateError("guest", `saved for guest ${JSON.stringify(header.guest.slice(0, 64))}`);
    } catch (error) {
      if (error instanceof StateError) throw new SnapshotError(`${this.name}: snapshot "${tag}" cannot be used (${error.message})`);
      throw error;
    }
    // Each kept copy is a file (a pipe would be read for ever), before any disk is touched.
    for (const role of Object.keys(overlays)) {
      const kept = statSync(join(this.#snapshots, `${tag}.${role}.overlay`), { throwIfNoEntry: false });
      if (kept && !kept.isFile()) throw new SnapshotError(`${this.name}: snapshot "${tag}" cannot be used (its copy of ${role} is not a file)`);
    }
    for (const [role, overlay] of Object.entries(overlays) as [DiskRole, string][]) {
      const kept = join(this.#snapshots, `${tag}.${role}.overlay`);
      if (existsSync(kept)) this.#copy(kept, overlay);
      else rmSync(overlay, { force: true });
    }
    this.#copy(state, this.suspendPath);
  }

  removeSnapshot(tag: string): void {
    this.#checkTag(tag);
    const state = join(this.#snapshots, `${tag}.state`);
    if (!existsSync(state)) throw new SnapshotError(`${this.name} has no snapshot "${tag}"${this.#known()}`);
    for (const role of ["hda", "hdb"] as const) rmSync(join(this.#snapshots, `${tag}.${role}.overlay`), { force: true });
    rmSync(state, { force: true });
  }

  #known(): string {
    const tags = this.snapshots().map((s) => s.tag);
    return ` (snapshots: ${tags.join(", ") || "none"})`;
  }
}

/** Where a built guest's built.state is kept: beside its first built file. */
export function builtStatePath(media: Partial<Record<string, string>>): string | undefined {
  const first = Object.values(media).find((path) => path !== undefined);
  return first === undefined ? undefined : join(dirname(first), BUILT_STATE);
}
