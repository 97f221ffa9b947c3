// The host side of the IPC contract (core/ipc/contract.ts), shared by the Electron shell and
// the web shell. The shell supplies only how the page reaches media (URLs of its own scheme);
// paths never come from the page: the page names a guest and a role, the host resolves them.
// A share of a sensitive folder is saved only with the user's confirmation (share-policy.ts).
// A library guest has one session at a time; dropped images as many as the user drops.
// A library guest's start resumes its saved state when it can (page-states.ts): the plan names
// the shell's URL of the state's payload, and the session hands its services the host's state.

import { freemem, totalmem, platform } from "node:os";
import { readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, resolve } from "node:path";
import { DROPPED_IMAGE, SNAPSHOT_TAG, type BootPlan, type CommandHandlers, type FolderListing, type GuestSummary, type HostInfo } from "../../core/ipc/contract.js";
import type { MediaRole } from "../../core/guest/profile.js";
import { launchPlan, type LaunchMachine, type LaunchServices, type MediaSource } from "../../core/guest/launch-plan.js";
import type { GuestLibrary } from "../guests/library.js";
import type { HostSessions } from "./sessions.js";
import type { SettingsStore } from "../guests/settings-store.js";
import type { HostServices } from "./services.js";
import { appVersion } from "../version.js";
import { checkShares, realPath, sensitiveFolder } from "./share-policy.js";
import { addGuest, editGuest, exportGuest, parsePairs, removeGuest, resetGuest } from "../guests/library-edit.js";
import { isAbsolute } from "node:path";
import { buildFatDrives } from "../fat/fat-drive.js";
import { overlayHolder } from "../disk/overlay.js";
import type { PageStates } from "./page-states.js";
import type { ResumedSession } from "./sessions.js";
import { AppsStore } from "../guests/apps-store.js";
import { isPng } from "../../core/agent/messages.js";
import { agentHandlers, rememberApps } from "./agent-api.js";

/** How the page's user confirms a sensitive share, as the host's refusal says it. */
const CONFIRM_IN_PAGE = "To share it anyway, add it again and confirm.";

export interface MediaUrls {
  media(guest: string, role: MediaRole): string;
  /** The payload of the guest's saved state, served from PageStates.served. */
  state(guest: string): string;
  firmware(which: "bios" | "vgaBios"): string;
}

export interface HostApiDeps {
  library: GuestLibrary;
  sessions: HostSessions;
  urls: MediaUrls;
  shell: HostInfo["shell"];
  settings: SettingsStore;
  /** The shell's own folder dialog, where it has one. */
  pickFolder?: () => Promise<string | null>;
  /** The shell's own save dialog, where it has one: the file chosen (replacing it confirmed), or null. */
  pickSaveFile?: (suggested: string) => Promise<string | null>;
  services: HostServices;
  states: PageStates;
  /** Each guest's remembered apps (the tray reads them too); one in the library's data folder by default. */
  apps?: AppsStore;
}

const MiB = 1024 * 1024;


/** Why a folder cannot be listed, in the user's words. */
const LIST_ERRORS: Record<string, string> = {
  ENOENT: "there is no such folder",
  ENOTDIR: "it is a file, not a folder",
  EACCES: "you may not read it",
  EPERM: "you may not read it",
};

/** Sub-folders and files of a host folder, hidden ones left out, sorted; errors name the folder. */
export function listFolder(path: string): FolderListing {
  const dir = resolve(path === "" ? homedir() : path);
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    throw new Error(`cannot list ${dir}: ${LIST_ERRORS[code] ?? (error as Error).message}`);
  }
  const folders: string[] = [];
  const files: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    if (e.isDirectory() || (e.isSymbolicLink() && isDir(resolve(dir, e.name)))) folders.push(e.name);
    else files.push(e.name);
  }
  const byName = (a: string, b: string): number => a.localeCompare(b);
  return { path: dir, parent: dir === "/" ? null : dirname(dir), folders: folders.sort(byName), files: files.sort(byName) };
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Refuses a guest whose session is booting or running (its disk is in use). */
export function checkStopped(sessions: HostSessions, guest: string): void {
  if (sessions.list().some((s) => s.guest === guest && (s.state === "booting" || s.state === "running"))) throw new Error(`${guest} is running; stop it first`);
}

/** Refuses, before anything is asked or written, a guest whose disk cannot be exported. */
export function checkExportable(library: GuestLibrary, sessions: HostSessions, guest: string): void {
  library.profile(guest);
  if (library.isBuiltIn(guest)) throw new Error(`${guest} is a built-in guest; it cannot be exported`);
  const disks = library.resolve(guest).disks;
  if (!disks.hda && !disks.hdb) throw new Error(`${guest} has no hard disk to export (only hard-disk guests have changes)`);
  checkStopped(sessions, guest);
}

/** Refuses a snapshot tag that is not a plain name (it becomes a file name). */
function checkTag(tag: string): string {
  if (!SNAPSHOT_TAG.test(tag)) throw new Error(`"${tag.slice(0, 64)}" is not a snapshot name: letters, digits, ".", "_" and "-", at most 64`);
  return tag;
}

export function createHostApi({ library, sessions, urls, shell, settings, pickFolder, pickSaveFile, services, states, apps }: HostApiDeps): CommandHandlers {
  const agentDeps = { sessions, services, apps: apps ?? new AppsStore(library.dataDir) };
  rememberApps(agentDeps);
  const ref = (url: string, path: string): MediaSource => ({ kind: "url", url, size: statSync(path).size });
  // The services and RAM of the plan last given for each guest: its next session is served those.
  // (and, when the plan resumes a saved state, the host state saved with it).
  const planned = new Map<string, { services: LaunchServices; memory: number; machine: LaunchMachine; resumed?: ResumedSession }>();
  const firmwareRefs = (): LaunchMachine["firmware"] => {
    const firmware = library.firmware();
    if (!firmware) throw new Error("the firmware (SeaBIOS) is not built yet: run unmachine build");
    return { bios: ref(urls.firmware("bios"), firmware.bios), vgaBios: ref(urls.firmware("vgaBios"), firmware.vgaBios) };
  };
  /** The plan of a start of `guest` now, with its saved settings (and `memory` MiB of RAM, unless 0), before its saved state is looked for. */
  const planOf = (guest: string, memory: number): BootPlan => {
    const saved = settings.load(library.profile(guest).name);
    const { profile, media, disks, root } = library.resolve(guest, saved);
    const sources: Partial<Record<MediaRole, MediaSource>> = {};
    for (const [role, path] of Object.entries(media) as [MediaRole, string][]) sources[role] = ref(urls.media(guest, role), path);
    // A user guest's hard disk is served by the host through the plan's disk service, never fetched whole.
    for (const [role, disk] of Object.entries(disks)) sources[role as MediaRole] = { kind: "disk", disk };
    // A built root folder (the desktop guest) is served by the host's 9P service, as for the CLI.
    const source = { kind: "guest", profile, settings: saved, media: sources, ...(root === undefined ? {} : { root }) } as const;
    // A shared folder offered as a FAT drive is built here and served to the page as a disk.
    return buildFatDrives(launchPlan(source, firmwareRefs(), memory === 0 ? {} : { memory }));
  };
  const summary = (name: string): GuestSummary => {
    const found = library.summaries().find((g) => g.name === name);
    if (!found) throw new Error(`no guest named "${name}"`);
    return found;
  };
  return {
    "host:info": () => ({
      version: appVersion,
      shell,
      platform: platform(),
      totalMemoryMiB: Math.round(totalmem() / MiB),
      freeMemoryMiB: Math.round(freemem() / MiB),
    }),
    "guests:list": () => library.summaries(),
    "guests:plan": (guest, memory) => {
      const plan = planOf(guest, memory);
      const entry: { services: LaunchServices; memory: number; machine: LaunchMachine; resumed?: ResumedSession } = { services: plan.services, memory: plan.machine.memory, machine: plan.machine };
      const resumable = states.resumable(plan.guest, plan.machine);
      if (resumable.state) {
        plan.machine.initialState = { kind: "url", url: urls.state(plan.guest), size: resumable.state.size, sha256: resumable.state.sha256 };
        entry.resumed = resumable.host ? { host: resumable.host } : {};
      }
      if (resumable.notice) plan.notice = resumable.notice;
      planned.set(plan.guest, entry);
      return plan;
    },
    "guests:stateAhead": (guest) => {
      const plan = planOf(guest, 0);
      const state = states.ahead(plan.guest, plan.machine);
      return state ? { kind: "url", url: urls.state(plan.guest), size: state.size, sha256: state.sha256 } : null;
    },
    "firmware:get": () => firmwareRefs(),
    "sessions:open": (guest) => {
      if (guest !== DROPPED_IMAGE && !library.has(guest)) throw new Error(`no guest named "${guest.slice(0, 64)}"`);
      // A library guest runs once (its disk and settings are its own), whichever window starts it.
      if (guest !== DROPPED_IMAGE && sessions.list().some((s) => s.guest === guest)) {
        throw new Error(`guest "${guest}" is already running in another Unmachine window or tab; stop it there first`);
      }
      const plan = guest === DROPPED_IMAGE ? undefined : planned.get(guest);
      // Or in another process (`unmachine run`, another shell): its disk has one writer.
      for (const disk of Object.values(plan?.services.disks ?? {})) {
        const pid = overlayHolder(disk.overlay);
        if (pid !== undefined) throw new Error(`guest "${guest}" is already running in another Unmachine (process ${pid}); stop it there first`);
      }
      return sessions.open(guest, plan?.services ?? {}, plan?.memory, plan?.resumed);
    },
    "sessions:report": (id, state, reason) => sessions.report(id, state, reason),
    "sessions:close": (id) => sessions.close(id),
    "sessions:list": () => sessions.list(),
    "settings:get": (guest) => settings.load(library.profile(guest).name),
    "settings:set": (guest, sent) => {
      const name = library.profile(guest).name;
      // A grown disk stays grown (as `unmachine set` says): sent without its size, it keeps it.
      const grown = settings.load(name).diskMiB;
      const value = grown !== undefined && sent.diskMiB === undefined ? { ...sent, diskMiB: grown } : sent;
      if (grown !== undefined && value.diskMiB !== undefined && value.diskMiB < grown) {
        throw new Error(`disk: a disk may only grow; ${name}'s is ${grown} MiB, got ${value.diskMiB}`);
      }
      checkShares(value.shares, (share) => `share "${share.tag}"`, CONFIRM_IN_PAGE);
      // Kept with its links resolved: serving it later follows none (a link there then means
      // the folder was replaced, and the share is refused).
      return settings.save(name, { ...value, shares: value.shares.map((share) => ({ ...share, hostPath: realPath(share.hostPath) })) });
    },
    "host:pickFolder": () => (pickFolder ? pickFolder() : null),
    "host:browse": (path) => listFolder(path),
    "host:checkShare": (path) => {
      const sensitive = sensitiveFolder(path);
      return { path: realPath(path), sensitive: sensitive?.reason ?? null };
    },
    "library:add": (path) => {
      if (shell !== "electron") throw new Error("in a browser tab, a dropped image is uploaded to the host, not named by its path");
      if (!isAbsolute(path)) throw new Error("the dropped file has no path on this computer; drop it from a file manager");
      return summary(addGuest(library, path).name);
    },
    "library:remove": (guest, force) => {
      checkStopped(sessions, guest);
      removeGuest(library, guest, force);
    },
    "library:reset": (guest) => {
      checkStopped(sessions, guest);
      resetGuest(library, guest);
      return summary(guest);
    },
    "library:set": (guest, key, value) => {
      editGuest(library, guest, parsePairs([`${key}=${value}`]));
      return summary(guest);
    },
    "library:export": async (guest) => {
      if (!pickSaveFile) throw new Error("in a browser tab, a guest's disk is exported as a download");
      checkExportable(library, sessions, guest);
      const path = await pickSaveFile(`${guest}.img`);
      if (path === null) return null;
      // Checked again: the guest may have started while the dialog was open.
      checkExportable(library, sessions, guest);
      // The dialog asked before replacing a file; exportDisk still refuses the guest's own files.
      return exportGuest(library, guest, path, true);
    },
    "sessions:saveState": (id, tag, state) => {
      const guest = sessions.guest(id);
      const machine = planned.get(guest)?.machine;
      if (guest === DROPPED_IMAGE || !machine) throw new Error("a dropped image has nothing to keep: it is only powered off");
      states.save(guest, machine, state, sessions.hostState(id), tag === "" ? "" : checkTag(tag));
    },
    "guests:discardState": (guest) => {
      library.profile(guest);
      states.discard(guest);
    },
    "guests:setAsideState": (guest, reason) => {
      library.profile(guest);
      states.setAside(guest, reason);
    },
    "snapshots:list": (guest) => {
      library.profile(guest);
      return states.snapshots(guest);
    },
    "snapshots:restore": (guest, tag) => {
      library.profile(guest);
      checkStopped(sessions, guest);
      states.restore(guest, checkTag(tag));
    },
    "snapshots:remove": (guest, tag) => {
      library.profile(guest);
      states.remove(guest, checkTag(tag));
    },
    "clipboard:set": (session, text) => {
      if (!services.sharesClipboard(session)) return;
      services.agent(session)?.setClipboard(text);
    },
    "clipboard:setImage": (session, png) => {
      if (!services.sharesClipboard(session)) return false;
      const bytes = new Uint8Array(Buffer.from(png, "base64"));
      if (!isPng(bytes)) throw new Error("clipboard:setImage: the image is not a PNG");
      return services.agent(session)?.setClipboardImage(bytes) ?? false;
    },
    ...agentHandlers(agentDeps),
  };
}
