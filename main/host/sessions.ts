// The host's record of running guests, whichever shell runs them: their state as the page
// reports it, and the host end of their FramePipes. The console pipe's bytes are kept as a
// bounded transcript and appended to a log file in the data folder (capped, see console-log.ts),
// so the host has the guest's console even when the page is gone.

import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { DisposableStore, Emitter, type Disposable } from "../../core/disposable.js";
import type { SessionInfo, SessionState } from "../../core/ipc/contract.js";
import type { FramePipe, PipeService } from "../../core/pipe/frame-pipe.js";
import { makePrivateDir } from "../private-files.js";
import { ConsoleLog, logFileName, pruneLogs } from "./console-log.js";

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

  constructor(info: SessionInfo) {
    this.info = info;
  }

  dispose(): void {
    this.store.dispose();
    this.log?.dispose();
  }
}

/** Serves one pipe service for a session: takes the host end, returns what to dispose. */
export type ServiceAttach = (session: SessionInfo, pipe: FramePipe) => Disposable;

const GUEST_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export class HostSessions implements Disposable {
  readonly #sessions = new Map<string, HostSession>();
  readonly #services = new Map<PipeService, ServiceAttach>();
  readonly #changed = new Emitter<SessionInfo>();
  readonly onChange = this.#changed.event;
  readonly #logDir: string | undefined;

  constructor(logDir?: string) {
    this.#logDir = logDir;
  }

  /** Registers the host side of a pipe service (the console is always served). */
  serve(service: Exclude<PipeService, "console">, attach: ServiceAttach): void {
    this.#services.set(service, attach);
  }

  serves(service: PipeService): boolean {
    return service === "console" || this.#services.has(service);
  }

  open(guest: string): SessionInfo {
    if (!GUEST_NAME.test(guest)) throw new Error(`"${guest.slice(0, 64)}" is not a guest name`);
    const info: SessionInfo = { id: randomUUID(), guest, state: "booting" };
    const session = new HostSession(info);
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

  /** The serial console so far (the last 64 KiB). */
  transcript(id: string): string {
    return this.#get(id).transcript;
  }

  /** Takes the host end of a pipe the page opened for this session. */
  attachPipe(id: string, service: PipeService, pipe: FramePipe): void {
    const session = this.#get(id);
    session.store.add(pipe);
    if (service !== "console") {
      const attach = this.#services.get(service);
      if (!attach) {
        pipe.dispose();
        throw new Error(`this host does not serve "${service}"`);
      }
      session.store.add(attach({ ...session.info }, pipe));
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
