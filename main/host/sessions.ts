// The host's record of running guests, whichever shell runs them: their state as the page
// reports it, and the host end of their FramePipes. The console pipe's bytes are kept as a
// bounded transcript and appended to a log file in the data folder (capped, see console-log.ts),
// so the host has the guest's console even when the page is gone. A session's other pipes are
// served from the host services of its launch plan, and only those. A session resumed from a
// saved state hands its services the host state saved with it, and its services' state can be
// taken again (while its emulator is stopped and drained) to be saved with the next one.

import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { DisposableStore, Emitter, type Disposable } from "../../core/disposable.js";
import type { SessionInfo, SessionState } from "../../core/ipc/contract.js";
import type { FramePipe, PipeService } from "../../core/pipe/frame-pipe.js";
import { servesDisks, type LaunchServices } from "../../core/guest/launch-plan.js";
import { makePrivateDir } from "../private-files.js";
import { ConsoleLog, logFileName, pruneLogs } from "./console-log.js";
import type { HostState } from "./services.js";

const TRANSCRIPT_LIMIT = 64 * 1024;

export class SessionNotFoundError extends Error {
  override name = "SessionNotFoundError";
}

class HostSession implements Disposable {
  info: SessionInfo;
  transcript = "";
  readonly store = new DisposableStore();
  readonly decoder = new TextDecoder();
  log: ConsoleLog | undefined;
  readonly planned: LaunchServices;
  readonly resumed: ResumedSession | undefined;
  services: SessionServices | undefined;

  constructor(info: SessionInfo, planned: LaunchServices, resumed: ResumedSession | undefined) {
    this.info = info;
    this.planned = planned;
    this.resumed = resumed;
  }

  dispose(): void {
    this.store.dispose();
    this.log?.dispose();
  }
}

/** What the host's services keep across a suspend (main/host/services.ts), saved with the guest's state. */
export type SessionHostState = HostState;

/** A session that resumes a saved state: the host state saved with it, for its services to rebuild. */
export interface ResumedSession {
  host?: HostState;
}

/** A session's host services: one attach per planned service, disposed with the session. */
export interface SessionServices extends Disposable {
  readonly attach: Partial<Record<Exclude<PipeService, "console">, (pipe: FramePipe) => Disposable>>;
  /** The services' state to save with the guest's (called while its emulator is stopped and drained). */
  saveState?(): SessionHostState;
}

/** Makes a session's host services from its plan, when its first service pipe opens. */
export type ServicesFactory = (session: SessionInfo, planned: LaunchServices, resumed?: ResumedSession) => SessionServices;

const GUEST_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export class HostSessions implements Disposable {
  readonly #sessions = new Map<string, HostSession>();
  #factory: ServicesFactory | undefined;
  readonly #changed = new Emitter<SessionInfo>();
  readonly onChange = this.#changed.event;
  readonly #logDir: string | undefined;

  constructor(logDir?: string) {
    this.#logDir = logDir;
  }

  /** Registers how the host serves sessions' planned services (the console is always served). */
  provide(factory: ServicesFactory): void {
    this.#factory = factory;
  }

  serves(service: PipeService): boolean {
    return service === "console" || (this.#factory !== undefined && (service === "p9" || service === "net" || service === "agent" || service === "disk"));
  }

  /** Opens a session for a guest, served the host services its launch plan names. */
  open(guest: string, planned: LaunchServices = {}, memory?: number, resumed?: ResumedSession): SessionInfo {
    if (!GUEST_NAME.test(guest)) throw new Error(`"${guest.slice(0, 64)}" is not a guest name`);
    const info: SessionInfo = { id: randomUUID(), guest, state: "booting" };
    if (memory !== undefined) info.memory = memory;
    const session = new HostSession(info, planned, resumed);
    if (this.#logDir) {
      makePrivateDir(this.#logDir);
      const live = new Set([...this.#sessions.values()].map((s) => logFileName(s.info.guest, s.info.id)));
      pruneLogs(this.#logDir, guest, live);
      session.log = new ConsoleLog(join(this.#logDir, logFileName(guest, info.id)));
    }
    this.#sessions.set(info.id, session);
    this.#changed.fire({ ...info });
    return { ...info };
  }

  #get(id: string): HostSession {
    const session = this.#sessions.get(id);
    if (!session) throw new SessionNotFoundError(`no running guest session ${id}`);
    return session;
  }

  report(id: string, state: SessionState, reason: string): SessionInfo {
    const session = this.#get(id);
    session.info = { ...session.info, state };
    if (reason) session.info.reason = reason.slice(0, 1000);
    else delete session.info.reason;
    this.#changed.fire({ ...session.info });
    return { ...session.info };
  }

  close(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    session.dispose();
    this.#changed.fire({ ...session.info, state: "stopped" });
  }

  list(): SessionInfo[] {
    return [...this.#sessions.values()].map((s) => ({ ...s.info }));
  }

  has(id: string): boolean {
    return this.#sessions.has(id);
  }

  /** The guest of a session. */
  guest(id: string): string {
    return this.#get(id).info.guest;
  }

  /**
   * The host services' state of a session whose emulator is stopped and drained, to save with
   * its guest's; undefined when none of its services has started or keeps any.
   */
  hostState(id: string): SessionHostState | undefined {
    return this.#get(id).services?.saveState?.();
  }

  /** The serial console so far (the last 64 KiB). */
  transcript(id: string): string {
    return this.#get(id).transcript;
  }

  /** Takes the host end of a pipe the page opened for this session. */
  attachPipe(id: string, service: PipeService, pipe: FramePipe): void {
    const session = this.#get(id);
    session.store.add(pipe);
    if (service !== "console") {
      const planned = service === "disk" ? servesDisks(session.planned) : session.planned[service] !== undefined;
      if (!this.#factory || !planned) {
        pipe.dispose();
        throw new Error(`the plan of ${session.info.guest} has no "${service}" service`);
      }
      if (!session.services) session.services = session.store.add(this.#factory({ ...session.info }, session.planned, session.resumed));
      const attach = session.services.attach[service];
      if (!attach) {
        pipe.dispose();
        throw new Error(`this host does not serve "${service}"`);
      }
      session.store.add(attach(pipe));
      return;
    }
    session.store.add(
      pipe.onFrame((frame) => {
        const text = session.decoder.decode(frame, { stream: true });
        session.transcript = (session.transcript + text).slice(-TRANSCRIPT_LIMIT);
        session.log?.write(frame);
      }),
    );
  }

  dispose(): void {
    for (const id of [...this.#sessions.keys()]) this.close(id);
    this.#changed.dispose();
  }
}
