// Saved states of the page's guests, as the host keeps them (main/state): the suspend state a
// start resumes, checked against the guest's machine and this emulator build (one that cannot be
// used is set aside with one line saying why), the payload the shell serves for the page to
// restore, and named snapshots. The page sends compressed states; the host adds its own.

import { closeSync, copyFileSync, existsSync, fdatasyncSync, openSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DiskRole, LaunchMachine, MediaSource, ServedDisk } from "../../core/guest/launch-plan.js";
import type { SnapshotInfo } from "../../core/ipc/contract.js";
import { machineIdentity } from "../../core/guest/state-identity.js";
import type { GuestLibrary } from "../guests/library.js";
import { makePrivateDir } from "../private-files.js";
import { emulatorBuild, overlayLength, readStateFile, StateError, writeStateFile, type NewState, type StateExpectation, type StateHeader } from "../state/state-file.js";
import type { SessionHostState } from "./sessions.js";

/** A saved state's payload (the compressed v86 state) inside its file, as the shell serves it. */
export interface ServedState {
  path: string;
  /** Where the payload starts in the file, and its length. */
  start: number;
  size: number;
}

/** What a start of a guest resumes: its state, the host state saved with it, or why it boots cold. */
export interface Resumable {
  state?: ServedState;
  host?: SessionHostState;
  /** The one line told when a saved state was set aside. */
  notice?: string;
}

export interface PageStates {
  /** The state a start of `guest` resumes (its suspend state, else its built state), checked against its machine. */
  resumable(guest: string, machine: LaunchMachine): Resumable;
  /** The payload last found resumable for a guest: what the shell serves at its state URL. */
  served(guest: string): ServedState | undefined;
  /** Keeps a guest's state: its suspend state (tag "") or a named snapshot. */
  save(guest: string, machine: LaunchMachine, payload: Uint8Array, host: SessionHostState | undefined, tag: string): Promise<void>;
  /** Discards a guest's suspend state: its next start boots cold. */
  discard(guest: string): void;
  snapshots(guest: string): SnapshotInfo[];
  /** Makes a snapshot the guest's suspend state (and its disk's changes those saved with it). */
  restore(guest: string, tag: string): void;
  remove(guest: string, tag: string): void;
}

/** A guest's folder in the data folder: its suspend state, and its snapshots beside it. */
function guestFolder(data: string, guest: string): string {
  return join(data, "guests", guest);
}

/** The payload's place in a state file whose header has been read. */
function payloadOf(path: string, header: StateHeader): ServedState {
  const size = statSync(path).size;
  return { path, start: size - header.payloadLength, size: header.payloadLength };
}

/** Syncs a served disk's overlay, so the state saved now never runs ahead of the disk. */
function syncOverlay(path: string): number {
  if (!existsSync(path)) return 0;
  const fd = openSync(path, "r");
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return overlayLength(path);
}

function stateSize(machine: LaunchMachine): (source: MediaSource) => number | undefined {
  void machine;
  return (source) => (source.kind === "file" ? statSync(source.path).size : undefined);
}

/** The host's PageStates: files in `<data>/guests/NAME/` (main/state/state-file.ts). */
export function pageStates(data: string, library: GuestLibrary, tell: (line: string) => void = (line) => console.error(`unmachine: ${line}`)): PageStates {
  const served = new Map<string, ServedState>();
  const folder = (guest: string): string => guestFolder(data, library.profile(guest).name);
  const suspendPath = (guest: string): string => join(folder(guest), "suspend.state");
  const snapshotPath = (guest: string, tag: string): string => join(folder(guest), "snapshots", `${tag}.state`);
  const overlays = (guest: string): Partial<Record<DiskRole, string>> => {
    const out: Partial<Record<DiskRole, string>> = {};
    for (const [role, disk] of Object.entries(library.resolve(guest).disks) as [DiskRole, ServedDisk][]) out[role] = disk.overlay;
    return out;
  };
  const expectation = (guest: string, machine: LaunchMachine): StateExpectation => ({
    emulator: emulatorBuild(),
    machine: machineIdentity(machine, stateSize(machine)),
    disks: overlays(guest),
  });
  /** The state kept by `unmachine build` next to a built-in guest's files, if any. */
  const builtState = (guest: string): string | undefined => {
    if (!library.isBuiltIn(guest)) return undefined;
    const first = Object.values(library.resolve(guest).media)[0];
    const path = first === undefined ? undefined : join(dirname(first), "built.state");
    return path !== undefined && existsSync(path) ? path : undefined;
  };
  return {
    resumable(guest, machine) {
      served.delete(guest);
      const own = suspendPath(guest);
      const expected = expectation(guest, machine);
      const result: Resumable = {};
      if (existsSync(own)) {
        try {
          const { header } = readStateFile(own, expected);
          const state = payloadOf(own, header);
          served.set(guest, state);
          return header.host === undefined ? { state } : { state, host: header.host };
        } catch (error) {
          const reason = error instanceof StateError ? error.message : (error as Error).message;
          renameSync(own, `${own}.unusable`);
          result.notice = `${guest}: its saved state cannot be used (${reason}); it starts cold`;
          tell(result.notice);
          return result;
        }
      }
      const built = builtState(guest);
      if (built) {
        try {
          const { header } = readStateFile(built, { ...expected, disks: {} });
          const state = payloadOf(built, header);
          served.set(guest, state);
          return { state };
        } catch {
          // A built state made for other settings (RAM, cmdline) is simply not this start's.
        }
      }
      return result;
    },
    served: (guest) => served.get(guest),
    async save(guest, machine, payload, host, tag) {
      const disks: NewState["disks"] = {};
      for (const [role, overlay] of Object.entries(overlays(guest)) as [DiskRole, string][]) disks[role] = { overlayLength: syncOverlay(overlay) };
      const state: NewState = { emulator: emulatorBuild(), machine: machineIdentity(machine, stateSize(machine)), guest, disks };
      if (host !== undefined) state.host = host;
      makePrivateDir(folder(guest));
      if (tag === "") {
        writeStateFile(suspendPath(guest), state, payload);
        return;
      }
      makePrivateDir(join(folder(guest), "snapshots"));
      writeStateFile(snapshotPath(guest, tag), state, payload);
      for (const [role, overlay] of Object.entries(overlays(guest)) as [DiskRole, string][]) {
        const copy = join(folder(guest), "snapshots", `${tag}.${role}.overlay`);
        if (existsSync(overlay)) copyFileSync(overlay, copy);
        else rmSync(copy, { force: true });
      }
      await Promise.resolve();
    },
    discard(guest) {
      served.delete(guest);
      rmSync(suspendPath(guest), { force: true });
    },
    snapshots(guest) {
      const dir = join(folder(guest), "snapshots");
      if (!existsSync(dir)) return [];
      return readdirSync(dir)
        .filter((name) => name.endsWith(".state"))
        .map((name) => {
          const st = statSync(join(dir, name));
          return { tag: name.slice(0, -".state".length), savedAt: st.mtimeMs, size: st.size };
        })
        .sort((a, b) => a.savedAt - b.savedAt);
    },
    restore(guest, tag) {
      const from = snapshotPath(guest, tag);
      if (!existsSync(from)) throw new Error(`${guest} has no snapshot named "${tag}"`);
      for (const [role, overlay] of Object.entries(overlays(guest)) as [DiskRole, string][]) {
        const copy = join(folder(guest), "snapshots", `${tag}.${role}.overlay`);
        if (existsSync(copy)) copyFileSync(copy, overlay);
        else rmSync(overlay, { force: true });
      }
      copyFileSync(from, suspendPath(guest));
      served.delete(guest);
    },
    remove(guest, tag) {
      const path = snapshotPath(guest, tag);
      if (!existsSync(path)) throw new Error(`${guest} has no snapshot named "${tag}"`);
      rmSync(path);
      for (const role of ["hda", "hdb"] as const) rmSync(join(folder(guest), "snapshots", `${tag}.${role}.overlay`), { force: true });
    },
  };
}
