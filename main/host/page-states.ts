// Saved states of the page's guests, as the host keeps them (main/state/guest-states.ts): the suspend state a
// start resumes, checked against the guest's machine and this emulator build (one that cannot be
// used is set aside with one line saying why), the payload the shell serves for the page to
// restore, and named snapshots. The page sends compressed states; the host adds its own.

import { closeSync, existsSync, fdatasyncSync, openSync, statSync } from "node:fs";
import type { DiskRole, LaunchMachine, ServedDisk } from "../../core/guest/launch-plan.js";
import type { SnapshotInfo } from "../../core/ipc/contract.js";
import type { GuestLibrary } from "../guests/library.js";
import { overlayHolder } from "../disk/overlay.js";
import { isCompressedState } from "../../core/v86/state-codec.js";
import { builtStatePath, expectationFor, GuestStates } from "../state/guest-states.js";
import { checkStateFile, overlayLength, type NewState, type StateHeader } from "../state/state-file.js";
import type { SessionHostState } from "./sessions.js";

/** A saved state's payload (the compressed v86 state) inside its file, as the shell serves it. */
export interface ServedState {
  path: string;
  /** Where the payload starts in the file, and its length. */
  start: number;
  size: number;
  /** The payload's SHA-256, as its header gives it. */
  sha256: string;
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
  /**
   * The state a start of `guest` would resume, found as resumable finds it but without setting
   * anything aside or telling anything (the start does): a page reads it ahead of its Start.
   * Served at the guest's state URL, as resumable's is.
   */
  ahead(guest: string, machine: LaunchMachine): ServedState | undefined;
  /** The payload last found resumable for a guest: what the shell serves at its state URL. */
  served(guest: string): ServedState | undefined;
  /** Keeps a guest's state: its suspend state (tag "") or a named snapshot. */
  save(guest: string, machine: LaunchMachine, payload: Uint8Array, host: SessionHostState | undefined, tag: string): void;
  /** Discards a guest's suspend state: its next start boots cold. */
  discard(guest: string): void;
  /**
   * Sets aside the suspend state last served for a guest (its emulator refused it), telling
   * `reason` in one line; nothing when what was served was its built state, or has been replaced since.
   */
  setAside(guest: string, reason: string): void;
  snapshots(guest: string): SnapshotInfo[];
  /** Makes a snapshot the guest's suspend state (and its disk's changes those saved with it). */
  restore(guest: string, tag: string): void;
  remove(guest: string, tag: string): void;
}

/** The payload's place in a state file whose header has been read. */
function payloadOf(path: string, header: StateHeader): ServedState {
  const size = statSync(path).size;
  return { path, start: size - header.payloadLength, size: header.payloadLength, sha256: header.payloadSha256 };
}

/** How much of a page's reason for setting a state aside is told. */
const MAX_REASON = 300;

/** Whether the file a state was served from still holds that state (a whole state, with the same checksum). */
function sameState(state: ServedState): boolean {
  try {
    const header = checkStateFile(state.path);
    return header.payloadSha256 === state.sha256;
  } catch {
    return false;
  }
}

/** Syncs a served disk's overlay, so the state saved now never runs ahead of the disk; its length. */
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

/** The host's PageStates: each guest's GuestStates in `<data>/guests/NAME/`. */
export function pageStates(data: string, library: GuestLibrary, tell: (line: string) => void = (line) => console.error(`unmachine: ${line}`)): PageStates {
  const served = new Map<string, ServedState>();
  const states = (guest: string): GuestStates => GuestStates.of(library.profile(guest).name, data);
  const disks = (guest: string): Partial<Record<DiskRole, ServedDisk>> => library.resolve(guest).disks;
  const overlays = (guest: string): Partial<Record<DiskRole, string>> => {
    const out: Partial<Record<DiskRole, string>> = {};
    for (const [role, disk] of Object.entries(disks(guest)) as [DiskRole, ServedDisk][]) out[role] = disk.overlay;
    return out;
  };
  return {
    resumable(guest, machine) {
      served.delete(guest);
      const own = states(guest);
      const built = library.isBuiltIn(guest) ? builtStatePath(library.resolve(guest).media) : undefined;
      let notice: string | undefined;
      const loaded = own.check(expectationFor(machine, disks(guest)), (line) => {
        notice = line;
        tell(line);
      }, built);
      if (!loaded) return notice === undefined ? {} : { notice };
      const state = payloadOf(loaded.from === "suspend" ? own.suspendPath : built!, loaded.header);
      served.set(guest, state);
      return loaded.header.host === undefined ? { state } : { state, host: loaded.header.host };
    },
    ahead(guest, machine) {
      const own = states(guest);
      const built = library.isBuiltIn(guest) ? builtStatePath(library.resolve(guest).media) : undefined;
      const loaded = own.peek(expectationFor(machine, disks(guest)), built);
      if (!loaded) return undefined;
      const state = payloadOf(loaded.from === "suspend" ? own.suspendPath : built!, loaded.header);
      served.set(guest, state);
      return state;
    },
    served: (guest) => served.get(guest),
    save(guest, machine, payload, host, tag) {
      // It replaces the state saved before: never with bytes no start could resume.
      if (!isCompressedState(payload)) throw new Error("what the page sent is not a compressed saved state");
      const own = states(guest);
      const expected = expectationFor(machine);
      const state: NewState = { emulator: expected.emulator, machine: expected.machine, guest: own.name, disks: {} };
      for (const [role, overlay] of Object.entries(overlays(guest)) as [DiskRole, string][]) state.disks[role] = { overlayLength: syncOverlay(overlay) };
      if (host !== undefined) state.host = host;
      if (tag === "") own.save(state, payload);
      else own.saveSnapshot(tag, state, payload, overlays(guest));
    },
    discard(guest) {
      served.delete(guest);
      states(guest).discard();
    },
    setAside(guest, reason) {
      const was = served.get(guest);
      served.delete(guest);
      const own = states(guest);
      if (!was || was.path !== own.suspendPath || !own.suspended || !sameState(was)) return;
      // From the page: one line of plain text, whatever was sent.
      own.setAside(reason.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").slice(0, MAX_REASON), tell);
    },
    snapshots: (guest) => states(guest).snapshots().map((s) => ({ tag: s.tag, savedAt: s.savedAt, size: s.bytes })),
    restore(guest, tag) {
      const disks = overlays(guest);
      // Another process running it (a CLI run, another shell) would later save a state ahead of the restored disk.
      for (const overlay of Object.values(disks)) {
        const pid = overlay === undefined ? undefined : overlayHolder(overlay);
        if (pid !== undefined) throw new Error(`${guest} is running in another Unmachine (process ${pid}); stop it there first`);
      }
      served.delete(guest);
      states(guest).restoreSnapshot(tag, disks);
    },
    remove(guest, tag) {
      states(guest).removeSnapshot(tag);
    },
  };
}
