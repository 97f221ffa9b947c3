// The host services of a guest, attached from its launch plan (core/guest/launch-plan.ts): files
// over 9P (its shares or a root folder), the NAT network with its policy and forwards, the
// agent, and its hard disks served from image and overlay or built from a folder (FAT drives). One ServiceSet per running guest,
// used by the CLI's headless guests and by every shell for the page's guests; each service is
// attached when its pipe opens.

import { servableShares } from "./share-policy.js";
import { AgentSession, pipeTransport } from "../../core/agent/session.js";
import { ClipboardSync, type HostClipboard } from "../../core/agent/clipboard-sync.js";
import { DisposableStore, Emitter, type Disposable } from "../../core/disposable.js";
import type { HostSessions } from "./sessions.js";
import { rootFolderBackend, serveP9, sharesBackend } from "./p9-service.js";
import { createNat, type Nat } from "../net/nat.js";
import type { FramePipe } from "../../core/pipe/frame-pipe.js";
import { servesDisks, type LaunchPlan } from "../../core/guest/launch-plan.js";
import { appVersion } from "../version.js";
import { serveDisks } from "./disk-service.js";

export type HostService = "p9" | "net" | "agent" | "disk";

export interface ServiceSetOptions {
  /** Where a refused share or a network problem is told, in one line. */
  onError: (message: string) => void;
  /** The host's clipboard, kept in step with the guest's when its plan shares the clipboard. */
  clipboard?: HostClipboard;
  /** A guest resumed from a saved state: the host's side of its services as they were saved. */
  resumed?: { host?: HostState };
}

/** The host's side of a guest's services as kept in a saved state (JSON-serialisable). */
export interface HostState {
  p9?: unknown;
}

/** A guest's host services: one attach per planned service, for the pipe a runtime opens. */
export interface ServiceSet extends Disposable {
  readonly attach: Partial<Record<HostService, (pipe: FramePipe) => Disposable>>;
  /** Resolves once the network's port forwards listen; rejects with why one cannot. */
  readonly ready: Promise<void>;
  /** The guest's agent session once its pipe is attached. */
  agent(): AgentSession | undefined;
  readonly onAgent: Emitter<AgentSession>["event"];
  /** The host's side of the services, called while the emulator is stopped and drained. */
  saveState?(): HostState;
}

export function hostServiceSet(plan: Pick<LaunchPlan, "guest" | "services">, options: ServiceSetOptions): ServiceSet {
  const { services, guest } = plan;
  const store = new DisposableStore();
  const agents = store.add(new Emitter<AgentSession>());
  const attach: ServiceSet["attach"] = {};
  let agent: AgentSession | undefined;
  let nat: Nat | undefined;
  const files = services.p9;
  if (files) {
    attach.p9 = (pipe) => {
      const backend = files.kind === "root" ? rootFolderBackend(files.folder) : sharesBackend(servableShares(files.shares, options.onError));
      return serveP9(backend, pipe);
    };
  }
  if (services.net) {
    const theNat = createNat({ name: guest, allowHost: services.net.allowHost, forwards: services.net.forwards, onError: options.onError });
    nat = store.add(theNat);
    attach.net = (pipe) => theNat.attach(pipe);
  }
  if (servesDisks(services)) attach.disk = (pipe) => serveDisks(services, pipe, options.onError);
  const planned = services.agent;
  if (planned) {
    attach.agent = (pipe) => {
      const own = new DisposableStore();
      const session = own.add(new AgentSession(pipeTransport(pipe), { software: `unmachine ${appVersion}` }));
      if (options.clipboard && planned.clipboard) {
        own.add(new ClipboardSync(options.clipboard, { set: (text) => session.setClipboard(text), onChange: (listener) => session.onClipboard(listener) }));
      }
      agent = session;
      agents.fire(session);
      return {
        dispose() {
          if (agent === session) agent = undefined;
          own.dispose();
        },
      };
    };
  }
  return {
    attach,
    ready: nat ? nat.ready.then(() => undefined) : Promise.resolve(),
    agent: () => agent,
    onAgent: agents.event,
    dispose: () => store.dispose(),
  };
}

export interface AgentEvent {
  session: string;
  agent: AgentSession;
}

export interface HostServices {
  onAgent: Emitter<AgentEvent>["event"];
  /** The agent of a running session, if its guest has one. */
  agent(session: string): AgentSession | undefined;
  /** Whether a session's guest shares the clipboard (its saved setting). */
  sharesClipboard(session: string): boolean;
}

/**
 * Serves every session the host services of its launch plan. With `clipboard` (Electron's),
 * the host clipboard is kept in step with each guest whose plan shares it; without (the web
 * shell), the page does that through "clipboard:set" and pushed events.
 */
export function registerHostServices(sessions: HostSessions, clipboard?: HostClipboard): HostServices {
  const agents = new Emitter<AgentEvent>();
  const live = new Map<string, { agent: AgentSession; clipboard: boolean }>();
  sessions.provide((session, planned, resumed) => {
    const options: ServiceSetOptions = { onError: (message) => console.error(`unmachine: ${session.guest}: ${message}`) };
    if (clipboard) options.clipboard = clipboard;
    if (resumed) options.resumed = resumed;
    const set = hostServiceSet({ guest: session.guest, services: planned }, options);
    const sub = set.onAgent((agent) => {
      live.set(session.id, { agent, clipboard: planned.agent?.clipboard ?? false });
      agents.fire({ session: session.id, agent });
    });
    return {
      attach: set.attach,
      saveState: () => set.saveState?.() ?? {},
      dispose() {
        live.delete(session.id);
        sub.dispose();
        set.dispose();
      },
    };
  });
  return {
    onAgent: agents.event,
    agent: (id) => live.get(id)?.agent,
    sharesClipboard: (id) => live.get(id)?.clipboard ?? false,
  };
}
