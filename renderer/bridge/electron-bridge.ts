// The page's side of the Electron shell: the preload (main/electron/preload.cts) exposes
// `window.unmachine`; commands go through it and answer {ok, value|error} (the plain message
// becomes the Error), and each FramePipe is a MessagePort that the main process hands over in
// answer to openPipe, or refuses explicitly. A guest's saved state goes as a command's argument.
// Host events (a guest's windows) arrive through the preload, checked before the page sees them.

import type { BuildProgress, CommandArgs, CommandName, CommandResult, GuestSummary, HostBridge, HostEvent, InvokeReply } from "../../core/ipc/contract.js";
import { toDisposable, type Disposable } from "../../core/disposable.js";
import { portPipe, portMessageToFrame, type FramePipe, type PipeService } from "../../core/pipe/frame-pipe.js";

/** What the preload exposes; kept in step with main/electron/preload.cts. */
export interface PreloadApi {
  invoke(name: string, args: unknown[]): Promise<unknown>;
  /** Asks for a pipe; its port (or a refusal) arrives as a window message {unmachinePipe: id}. */
  openPipe(session: string, service: string): number;
  onStartGuest(listener: (guest: string, app?: string) => void): void;
  onBuild(listener: (progress: unknown) => void): () => void;
  /** A closing window asks the page to save its guests; the promise says when they are. */
  onSuspendAll(listener: () => Promise<void>): void;
  /** The path of a dropped file on this computer ("" for one made in the page). */
  pathForFile(file: File): string;
  /** Host events of the page's sessions; returns the way to stop listening. */
  onEvent(listener: (event: unknown) => void): () => void;
}

/** A reply from the host, checked: its value, or an Error carrying the host's own message. */
export function unwrapReply(reply: unknown): unknown {
  const r = reply as Partial<InvokeReply> | null;
  if (r?.ok === true) return (r as { value: unknown }).value;
  if (r?.ok === false && typeof r.error === "string") throw new Error(r.error);
  throw new Error("the Unmachine host sent a malformed reply");
}

function isBuildProgress(value: unknown): value is BuildProgress {
  const v = value as Partial<BuildProgress> | null;
  return typeof v?.guest === "string" && typeof v.line === "string" && (v.state === "building" || v.state === "done" || v.state === "failed");
}

/** A host event Electron's main process sent: only a guest's windows travel this way (the host shares its own clipboard). */
export function isWindowsEvent(value: unknown): value is Extract<HostEvent, { type: "windows" }> {
  const v = value as { type?: unknown; session?: unknown; windows?: unknown } | null;
  if (v?.type !== "windows" || typeof v.session !== "string" || !Array.isArray(v.windows)) return false;
  return v.windows.every((w: unknown) => {
    const g = w as Record<string, unknown> | null;
    const rect = (r: unknown): boolean => ["x", "y", "width", "height"].every((k) => typeof (r as Record<string, unknown> | null)?.[k] === "number");
    return typeof g?.["id"] === "number" && typeof g["title"] === "string" && typeof g["minimized"] === "boolean" && typeof g["focused"] === "boolean" && rect(g) && rect(g["frame"]);
  });
}

function portFor(id: number): Promise<MessagePort> {
  return new Promise((resolve, reject) => {
    const onMessage = (event: MessageEvent): void => {
      const data = event.data as { unmachinePipe?: unknown; error?: string } | null;
      if (event.source !== window || data?.unmachinePipe !== id) return;
      window.removeEventListener("message", onMessage);
      const port = event.ports[0];
      if (port) resolve(port);
      else reject(new Error(data.error ?? "the host refused the pipe"));
    };
    window.addEventListener("message", onMessage);
  });
}

export class ElectronBridge implements HostBridge {
  readonly #api: PreloadApi;

  constructor(api: PreloadApi) {
    this.#api = api;
  }

  async invoke<C extends CommandName>(name: C, ...args: CommandArgs<C>): Promise<CommandResult<C>> {
    return unwrapReply(await this.#api.invoke(name, args)) as CommandResult<C>;
  }

  /** A dropped file is added by its path: the host reads the user's file where it is, never a copy. */
  async addImage(file: File): Promise<GuestSummary> {
    const path = this.#api.pathForFile(file);
    if (!path) throw new Error(`${file.name}: this file has no path on this computer; drop it from a file manager`);
    return await this.invoke("library:add", path);
  }

  /** The host asks where in its save dialog, then writes the image there itself. */
  async exportGuest(guest: string): Promise<string | null> {
    const path = await this.invoke("library:export", guest);
    return path === null ? null : `${guest}: its disk with its changes was exported to ${path}`;
  }

  /** The state's bytes travel in the command itself: Electron's invoke clones a Uint8Array. */
  async saveState(session: string, tag: string, state: Uint8Array): Promise<void> {
    await this.invoke("sessions:saveState", session, tag, state);
  }

  onSuspendAll(listener: () => Promise<void>): void {
    this.#api.onSuspendAll(listener);
  }

  onStartGuest(listener: (guest: string, app?: string) => void): void {
    this.#api.onStartGuest(listener);
  }

  onBuild(listener: (progress: BuildProgress) => void): Disposable {
    return toDisposable(this.#api.onBuild((progress) => isBuildProgress(progress) && listener(progress)));
  }

  onEvent(listener: (event: HostEvent) => void): Disposable {
    return toDisposable(this.#api.onEvent((event) => isWindowsEvent(event) && listener(event)));
  }

  async openPipe(session: string, service: PipeService): Promise<FramePipe> {
    const port = await portFor(this.#api.openPipe(session, service));
    const pipe = portPipe(port);
    port.onmessage = (event) => {
      const frame = portMessageToFrame(event.data);
      if (frame === "end") pipe.end();
      else if (frame) pipe.deliver(frame);
    };
    port.start();
    return pipe;
  }
}
