// The one contract between the page and the host: every command, its arguments and its
// result. The Electron shell (ipcMain) and the web shell (WebSocket) serve exactly this map,
// and the host re-checks every argument against ARG_KINDS, since types do not cross a process
// boundary. Bulk bytes never travel here: they go through FramePipes (core/pipe).

import type { LaunchMachine, LaunchPlan, MediaSource } from "../guest/launch-plan.js";
import type { FramePipe, PipeService } from "../pipe/frame-pipe.js";
import type { Disposable } from "../disposable.js";
import { parseSettings, type GuestSettings } from "../guest/settings.js";
import type { Family } from "../guest/families.js";
import { LIMITS, type GuestWindow, type WindowActionRequest } from "../agent/messages.js";

/** A guest's top-level window as its agent reports it (core/agent/messages.ts). */
export type { GuestWindow, WindowActionRequest };

export interface HostInfo {
  version: string;
  shell: "electron" | "web";
  platform: string;
  totalMemoryMiB: number;
  freeMemoryMiB: number;
}

export interface GuestSummary {
  name: string;
  title: string;
  description: string;
  /** RAM in MiB: the saved setting, else the profile's. */
  memory: number;
  family: Family;
  /** The regular expression whose match on the console says the guest has booted, if it has one. */
  prompt?: string;
  /** Shipped with the app (guests/<name>), not added by the user: it cannot be removed. */
  builtIn: boolean;
  /** Bytes the guest's changes to its hard disk take on the host (its overlay). */
  diskUsed?: number;
  /** The hard disk's size as the guest sees it, in bytes. */
  diskSize?: number;
  /** False while the guest's files are missing (not built yet). */
  ready: boolean;
  /** Why the guest cannot start, when it cannot. */
  problem?: string;
}

/**
 * The launch plan the page boots a library guest from (core/guest/launch-plan.ts), its media
 * as URLs of the host's (`{ kind: "url" }`). The host serves the session the same plan's services.
 */
export type BootPlan = LaunchPlan & {
  /** Why the guest's saved state could not be used (it was set aside and the guest boots cold). */
  notice?: string;
};

/**
 * Seamless mode's own windows (the Electron shell; the web shell when asked): the page opens one
 * popup per guest window on this page of the app, named this prefix and the window's id. The
 * Electron shell allows exactly these popups from the page (main/electron/contents-policy.ts).
 */
export const SEAMLESS_WINDOW_PAGE = "seamless-window.html";
export const SEAMLESS_WINDOW_NAME = /^unmachine-seamless-\d{1,10}$/;
export const seamlessWindowName = (id: number): string => `unmachine-seamless-${id}`;

/** A named snapshot of a guest (memory and disk together), as the settings panel lists it. */
export interface SnapshotInfo {
  tag: string;
  /** When it was saved, in ms since the epoch. */
  savedAt: number;
  /** Bytes it takes on the host. */
  size: number;
}

/** A snapshot's tag, as the host checks it (the shared rule for `<data>/guests/NAME/snapshots/TAG.state`). */
export const SNAPSHOT_TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The largest saved state the page may send: a compressed state of the largest RAM with room to spare. */
export const MAX_STATE_BYTES = 1024 * 1024 * 1024;

/** The session name of an image the user dropped on the page (it has no guest of its own). */
export const DROPPED_IMAGE = "dropped-image";

export const SESSION_STATES = ["booting", "running", "stopped", "failed"] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** A host folder and what is in it, for choosing a share in a browser tab. */
export interface FolderListing {
  path: string;
  parent: string | null;
  folders: string[];
  /** Shown so the user recognises the folder; only folders can be shared. */
  files: string[];
}

/** Whether a host folder needs the user's confirmation to be shared (main/host/share-policy.ts). */
export interface ShareCheck {
  /** The folder the share would really be, symbolic links resolved. */
  path: string;
  /** What makes it sensitive ("your home folder"), or null for an ordinary folder. */
  sensitive: string | null;
}

export interface SessionInfo {
  id: string;
  guest: string;
  state: SessionState;
  reason?: string;
  /** The RAM in MiB the guest was planned with (a library guest's; a dropped image has none). */
  memory?: number;
}

/** An app a guest can launch, as the launcher and the tray list it (main/guests/apps-store.ts). */
export interface LauncherApp {
  /** What `agent:launch` takes: the .desktop file's name, e.g. "xcalc". */
  id: string;
  name: string;
  /** A PNG icon, base64. */
  icon?: string;
}

/** A guest's apps: asked of its running agent (`live`), else as it last reported them. */
export interface GuestApps {
  guest: string;
  live: boolean;
  apps: LauncherApp[];
}

/** What `agent:launch` answers: the app's first window (the X window id) and its process. */
export interface LaunchedApp {
  window: number;
  pid: number;
}

/** Every command: its argument tuple and its result. */
export interface Commands {
  "host:info": { args: []; result: HostInfo };
  "guests:list": { args: []; result: GuestSummary[] };
  "guests:plan": { args: [guest: string, memory: number]; result: BootPlan };
  "firmware:get": { args: []; result: LaunchMachine["firmware"] };
  "sessions:open": { args: [guest: string]; result: SessionInfo };
  "sessions:report": { args: [id: string, state: SessionState, reason: string]; result: SessionInfo };
  "sessions:close": { args: [id: string]; result: void };
  "sessions:list": { args: []; result: SessionInfo[] };
  "settings:get": { args: [guest: string]; result: GuestSettings };
  "settings:set": { args: [guest: string, settings: GuestSettings]; result: GuestSettings };
  /** The host's own folder dialog (Electron); null where there is none or it was cancelled. */
  "host:pickFolder": { args: []; result: string | null };
  /** Lists a host folder's sub-folders ("" for the home folder), for the web shell's picker. */
  "host:browse": { args: [path: string]; result: FolderListing };
  /** Whether sharing a host folder needs the user's confirmation first, and why. */
  "host:checkShare": { args: [path: string]; result: ShareCheck };
  /** The page's clipboard text, for the guest of a session (when its clipboard is shared). */
  "clipboard:set": { args: [session: string, text: string]; result: void };
  /** The page's clipboard image (a PNG, base64), for the guest of a session; whether its agent took it. */
  "clipboard:setImage": { args: [session: string, png: string]; result: boolean };
  /**
   * Adds an image file to the library as a user guest (Electron: the path of a dropped file, from
   * the preload's webUtils.getPathForFile). The web shell takes the file's bytes as an upload
   * instead (PUT /library/add, main/web/server.ts).
   */
  "library:add": { args: [path: string]; result: GuestSummary };
  /** Removes a user guest (never its image); with changes to its disk only when `force`. */
  "library:remove": { args: [guest: string, force: boolean]; result: void };
  /** Discards a user guest's changes to its disk. */
  "library:reset": { args: [guest: string]; result: GuestSummary };
  /** Sets one key of a guest, as `unmachine set NAME key=value` does (main/guests/library-edit.ts). */
  "library:set": { args: [guest: string, key: string, value: string]; result: GuestSummary };
  /**
   * Writes a user guest's hard disk with its changes as a new flat image where the user chooses
   * in the host's save dialog (Electron); the path written, or null when the user cancelled. The
   * web shell offers the image as a download instead (GET /library/export/NAME, main/web/download.ts).
   */
  "library:export": { args: [guest: string]; result: string | null };
  /**
   * Keeps the state of a session's guest (compressed, as core/v86/state-codec.ts makes it): its
   * suspend state (tag "") or a named snapshot. The emulator is stopped and its requests drained:
   * the host adds its services' state. Electron only (structured clone carries the bytes); the
   * web shell takes them as PUT /state/SESSION?tag=TAG (main/web/state-upload.ts).
   */
  "sessions:saveState": { args: [id: string, tag: string, state: Uint8Array]; result: void };
  /**
   * The saved state a start of a guest (with its saved settings) would resume now, to be
   * fetched ahead of its Start; null when it would boot. Nothing is set aside or told: the
   * start's plan does that. Its SHA-256 is the one that plan gives for the same state.
   */
  "guests:stateAhead": { args: [guest: string]; result: Extract<MediaSource, { kind: "url" }> | null };
  /** Discards a guest's saved state: its next start boots cold (Power off). */
  "guests:discardState": { args: [guest: string]; result: void };
  /**
   * Sets a guest's saved state aside (suspend.state.unusable), the host saying why in one line:
   * the page's emulator refused it. Its next start resumes its kept started state, or boots.
   */
  "guests:setAsideState": { args: [guest: string, reason: string]; result: void };
  "snapshots:list": { args: [guest: string]; result: SnapshotInfo[] };
  /** Makes a snapshot the guest's saved state (its next start resumes it); refused while it runs. */
  "snapshots:restore": { args: [guest: string, tag: string]; result: void };
  "snapshots:remove": { args: [guest: string, tag: string]; result: void };
  /** Moves, resizes, raises (and focuses) or closes a window of a session's guest, by its id in the guest's list. */
  "agent:windowAction": { args: [session: string, window: number, action: WindowActionRequest]; result: void };
  /** A guest's apps: from its running session's agent (and remembered), else as last remembered. */
  "agent:apps": { args: [guest: string]; result: GuestApps };
  /** Launches an app in a session's guest, once its agent is there (the session may still be booting). */
  "agent:launch": { args: [session: string, app: string]; result: LaunchedApp };
  /** Asks a session's guest for a screen of this size (clamped); whether its agent was asked. */
  "agent:display": { args: [session: string, width: number, height: number]; result: boolean };
}

/** What the host tells the page without being asked. */
export type HostEvent =
  | { type: "clipboard"; session: string; text: string }
  /** A PNG image the guest copied (base64), for the page's clipboard (the web shell only). */
  | { type: "clipboardImage"; session: string; png: string }
  /** A session's guest windows, bottom of the stack first: when the page opens it, and each change. */
  | { type: "windows"; session: string; windows: GuestWindow[] };

/** A guest's files being built in the background: each progress line, then done or failed. */
export interface BuildProgress {
  guest: string;
  state: "building" | "done" | "failed";
  line: string;
}

export type CommandName = keyof Commands;
export type CommandArgs<C extends CommandName> = Commands[C]["args"];
export type CommandResult<C extends CommandName> = Commands[C]["result"];

type ArgKind = "string" | "text" | "number" | "boolean" | "session-state" | "settings" | "bytes" | "window-action" | "png-base64";
type KindsOf<T extends readonly unknown[]> = { [I in keyof T]: ArgKind };

/**
 * The runtime allow-list: one entry per command, one kind per argument. `satisfies` makes a
 * missing command or a wrong arity a compile error.
 */
export const ARG_KINDS = {
  "host:info": [],
  "guests:list": [],
  "guests:plan": ["string", "number"],
  "firmware:get": [],
  "sessions:open": ["string"],
  "sessions:report": ["string", "session-state", "string"],
  "sessions:close": ["string"],
  "sessions:list": [],
  "settings:get": ["string"],
  "settings:set": ["string", "settings"],
  "host:pickFolder": [],
  "host:browse": ["string"],
  "host:checkShare": ["string"],
  "clipboard:set": ["string", "text"],
  "clipboard:setImage": ["string", "png-base64"],
  "library:add": ["string"],
  "library:remove": ["string", "boolean"],
  "library:reset": ["string"],
  "library:set": ["string", "string", "string"],
  "library:export": ["string"],
  "sessions:saveState": ["string", "string", "bytes"],
  "guests:stateAhead": ["string"],
  "guests:discardState": ["string"],
  "guests:setAsideState": ["string", "string"],
  "snapshots:list": ["string"],
  "snapshots:restore": ["string", "string"],
  "snapshots:remove": ["string", "string"],
  "agent:windowAction": ["string", "number", "window-action"],
  "agent:apps": ["string"],
  "agent:launch": ["string", "string"],
  "agent:display": ["string", "number", "number"],
} as const satisfies { [C in CommandName]: KindsOf<CommandArgs<C>> };

/** A clipboard image as base64: at most LIMITS.clipboardImageBytes once decoded. */
const PNG_BASE64_MAX = 4 * Math.ceil(LIMITS.clipboardImageBytes / 3);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export class ContractError extends Error {
  override name = "ContractError";
}

export function isCommandName(value: unknown): value is CommandName {
  return typeof value === "string" && Object.hasOwn(ARG_KINDS, value);
}

/** Checks a command's name and arguments as they arrived from the other side. */
export function checkCommand(name: unknown, args: unknown): { name: CommandName; args: unknown[] } {
  if (!isCommandName(name)) throw new ContractError(`unknown command ${JSON.stringify(name)}`);
  if (!Array.isArray(args)) throw new ContractError(`${name}: arguments must be an array`);
  const kinds: readonly ArgKind[] = ARG_KINDS[name];
  if (args.length !== kinds.length) {
    throw new ContractError(`${name}: expected ${kinds.length} argument(s), got ${args.length}`);
  }
  const checked = kinds.map((kind, i) => {
    const value: unknown = args[i];
    if (kind === "window-action") return parseWindowAction(value, `${name}: argument ${i + 1}`);
    if (kind === "settings") {
      try {
        return parseSettings(value, `${name}: argument ${i + 1}`);
      } catch (error) {
        throw new ContractError((error as Error).message);
      }
    }
    const ok =
      kind === "string"
        ? typeof value === "string" && value.length <= 4096
        : kind === "text"
          ? typeof value === "string" && value.length <= 1024 * 1024
          : kind === "png-base64"
            ? typeof value === "string" && value.length <= PNG_BASE64_MAX && BASE64.test(value)
            : kind === "number"
            ? typeof value === "number" && Number.isFinite(value)
            : kind === "boolean"
              ? typeof value === "boolean"
              : kind === "bytes"
                ? value instanceof Uint8Array && value.length <= MAX_STATE_BYTES
                : (SESSION_STATES as readonly unknown[]).includes(value);
    if (!ok) throw new ContractError(`${name}: argument ${i + 1} must be a ${kind}`);
    return value;
  });
  return { name, args: checked };
}

/** A window action as it arrived from the page: exactly one of the four shapes, in the agent's ranges. */
export function parseWindowAction(value: unknown, what: string): WindowActionRequest {
  const v = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const int = (key: string, min: number, max: number): number => {
    const n = v[key];
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) throw new ContractError(`${what}: ${key} must be an integer in ${min}..${max}`);
    return n;
  };
  const only = (...keys: string[]): void => {
    const extra = Object.keys(v).filter((key) => key !== "kind" && !keys.includes(key));
    if (extra.length > 0) throw new ContractError(`${what}: ${String(v["kind"])} takes no ${extra.join(", ")}`);
  };
  const coordinate = [-LIMITS.coordinate, LIMITS.coordinate - 1] as const;
  switch (v["kind"]) {
    case "move":
      only("x", "y");
      return { kind: "move", x: int("x", ...coordinate), y: int("y", ...coordinate) };
    case "resize":
      only("width", "height");
      return { kind: "resize", width: int("width", 1, LIMITS.displaySize), height: int("height", 1, LIMITS.displaySize) };
    case "raise":
    case "close":
      only();
      return { kind: v["kind"] };
    default:
      throw new ContractError(`${what}: a window action is move, resize, raise or close`);
  }
}

/** What the page knows of a dropped file (a DOM File, seen from core). */
export interface DroppedFile {
  readonly name: string;
  readonly size: number;
}

/** The host side of the contract: one handler per command. */
export type CommandHandlers = {
  [C in CommandName]: (...args: CommandArgs<C>) => Promise<CommandResult<C>> | CommandResult<C>;
};

/** What the page calls: the same in Electron and in a browser tab. */
export interface HostBridge {
  invoke<C extends CommandName>(name: C, ...args: CommandArgs<C>): Promise<CommandResult<C>>;
  openPipe(session: string, service: PipeService): Promise<FramePipe>;
  /**
   * The host asks the page to start a guest, or bring its tab forward where it runs (the tray),
   * and then to launch one of its apps when `app` is given; Electron only.
   */
  onStartGuest?(listener: (guest: string, app?: string) => void): void;
  /** Build progress of the default guest, built in the background after the window shows; Electron only. */
  onBuild?(listener: (progress: BuildProgress) => void): Disposable;
  /** Adds a dropped image file to the library: by its path (Electron) or its bytes (the web shell). */
  addImage?(file: DroppedFile): Promise<GuestSummary>;
  /**
   * Exports a user guest's disk with its changes as a flat image: a save dialog and the host
   * writes it (Electron), or a download (the web shell). What the user is told, or null when cancelled.
   */
  exportGuest?(guest: string, fileName: string): Promise<string | null>;
  /**
   * Sends a session's saved state (compressed) to the host: its suspend state (tag "") or a named
   * snapshot. Electron: the command "sessions:saveState"; the web shell: an upload.
   */
  saveState(session: string, tag: string, state: Uint8Array): Promise<void>;
  /** The window is closing: the page saves its guests, and the promise says when they are (Electron only). */
  onSuspendAll?(listener: () => Promise<void>): void;
  /** Events the host pushes: the guest's clipboard (the web shell only), its windows (both shells). */
  onEvent?(listener: (event: HostEvent) => void): Disposable;
  /** The page keeps the guest's clipboard in step (the web shell); Electron's host shares its own. */
  readonly pageClipboard?: boolean;
}

/** Runs a checked command against the handlers. */
export async function dispatch(handlers: CommandHandlers, name: unknown, args: unknown): Promise<unknown> {
  const checked = checkCommand(name, args);
  const handler = handlers[checked.name] as (...a: unknown[]) => unknown;
  return await handler(...checked.args);
}

/** Wire shapes of the command channel (web shell WebSocket, Electron invoke). */
export interface CommandRequest {
  id: number;
  name: string;
  args: unknown[];
}
/** What an Electron invoke answers: a result, never a thrown error (whose message Electron wraps). */
export type InvokeReply = { ok: true; value: unknown } | { ok: false; error: string };
export type CommandReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
/** A pushed event on the command channel (no id). */
export interface EventMessage {
  event: HostEvent;
}
