// The host services of a guest, attached from its launch plan (core/guest/launch-plan.ts): files
// over 9P (its shares or a root folder), the NAT network with its policy and forwards, the
// agent, and its hard disks served from image and overlay or built from a folder (FAT drives). One ServiceSet per running guest,
// used by the CLI's headless guests and by every shell for the page's guests; each service is
// attached when its pipe opens. A suspended guest's services save their side (HostState, JSON,
// kept in its state file); a resumed guest's are rebuilt from it against this run's settings.

import { servableShares } from "./share-policy.js";
import { AgentSession, pipeTransport, savedAgent, type AgentSessionOptions } from "../../core/agent/session.js";
import { ClipboardSync, type HostClipboard } from "../../core/agent/clipboard-sync.js";
import { DisposableStore, Emitter, type Disposable } from "../../core/disposable.js";
import type { HostSessions } from "./sessions.js";
import { rootFolderBackend, serveP9, sharesBackend, type P9Service } from "./p9-service.js";
import { createNat, type Nat } from "../net/nat.js";
import type { FramePipe } from "../../core/pipe/frame-pipe.js";
import { servesDisks, type LaunchPlan } from "../../core/guest/launch-plan.js";
import { appVersion } from "../version.js";
import { serveDisks } from "./disk-service.js";

export type HostService = "p9" | "net" | "agent" | "disk";

/** What a suspended guest's host services keep with its state (JSON; read back untrusted). */
export interface HostState {
  /** The 9P session: msize and the guest's fids (core/p9/session-state.ts). */
  p9?: unknown;
  /** The agent that had said hello: its version and pid (core/agent/session.ts SavedAgent). */
  agent?: unknown;
}

export interface ServiceSetOptions {
  /** Where a refused share or a network problem is told, in one line. */
  onError: (message: string) => void;
  /** The host's clipboard, kept in step with the guest's when its plan shares the clipboard. */
  clipboard?: HostClipboard;
  /** The guest resumes from a saved state: its services take up where they were saved. */
  resumed?: { host?: HostState };
}

/** A guest's host services: one attach per planned service, for the pipe a runtime opens. */
export interface ServiceSet extends Disposable {
  readonly attach: Partial<Record<HostService, (pipe: FramePipe) => Disposable>>;
  /** Resolves once the network's port forwards listen; rejects with why one cannot. */
  readonly ready: Promise<void>;
  /** The guest's agent session once its pipe is attached. */
  agent(): AgentSession | undefined;
  readonly onAgent: Emitter<AgentSession>["event"];
  /** The services' side of a suspended guest; call it once the emulator is stopped and drained. */
  saveState(): HostState;
}

export function hostServiceSet(plan: Pick<LaunchPlan, "guest" | "services">, options: ServiceSetOptions): ServiceSet {
  const { services, guest } = plan;
  const store = new DisposableStore();
  const agents = store.add(new Emitter<AgentSession>());
  const attach: ServiceSet["attach"] = {};
  let agent: AgentSession | undefined;
  let nat: Nat | undefined;
  let p9: P9Service | undefined;
  const resumed = options.resumed;
  // A resumed session is taken back once: a later pipe (a reattach) starts a fresh one.
  let savedP9 = resumed?.host?.p9;
  let keptAgent = savedAgent(resumed?.host?.agent);
  const files = services.p9;
  if (files) {
    attach.p9 = (pipe) => {
      const backend = files.kind === "root" ? rootFolderBackend(files.folder) : sharesBackend(servableShares(files.shares, options.onError));
      const from = savedP9;
      savedP9 = undefined;
      const service = serveP9(backend, pipe, (error) => options.onError(`shared folders: ${error instanceof Error ? error.message : String(error)}`), from);
      p9 = service;
      return {
        dispose() {
          if (p9 === service) p9 = undefined;
          service.dispose();
        },
      };
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
      // A resumed guest's agent is already running: ask it to say hello again. The one its
      // state had takes requests at once, its clock set first, before any command can read it.
      const sessionOptions: AgentSessionOptions = { software: `unmachine ${appVersion}`, probe: resumed !== undefined };
      // Only on virtio-console, which holds what is sent until the restored guest takes it: on
      // COM2 it would go into a UART the restore then overwrites (the probe is sent again).
      const saved = planned.port === "virtio" ? keptAgent : undefined;
      keptAgent = undefined;
      if (saved) sessionOptions.saved = saved;
      const session = own.add(new AgentSession(pipeTransport(pipe), sessionOptions));
      if (resumed) {
        own.add(reprobe(session));
        own.add(setClockOnHello(session, options.onError));
        if (saved) setClock(session, options.onError);
      }
      if (options.clipboard && planned.clipboard) {
        own.add(
          new ClipboardSync(options.clipboard, {
            set: (text) => session.setClipboard(text),
            onChange: (listener) => session.onClipboard(listener),
            setImage: (png) => session.setClipboardImage(png),
            onImage: (listener) => session.onClipboardImage(listener),
          }),
        );
      }
      own.add(session.onDropped((reason) => options.onError(reason)));
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
    saveState: () => {
      const state: HostState = {};
      if (p9) state.p9 = p9.saveState();
      const agentNow = agent?.saved();
      if (agentNow) state.agent = agentNow;
      return state;
    },
    dispose: () => store.dispose(),
  };
}

/** How often a resumed guest's agent is probed until it says hello, and for how long. */
const REPROBE_MS = 250;
const REPROBE_FOR_MS = 60_000;

/** Probes a resumed guest's agent every quarter second until it says hello (a minute at most):
 * the first probe may reach the port before the restored emulator runs, and a command waits
 * for the hello. */
function reprobe(session: AgentSession): Disposable {
  let left = REPROBE_FOR_MS / REPROBE_MS;
  const timer = setInterval(() => {
    if (session.state !== "waiting" || --left <= 0) clearInterval(timer);
    else session.probe();
  }, REPROBE_MS);
  return { dispose: () => clearInterval(timer) };
}

/** After each hello of a resumed guest's agent, its clock is set to the host's: it stood still
 * while the guest was suspended. */
function setClockOnHello(session: AgentSession, onError: (message: string) => void): Disposable {
  return session.onHello(() => setClock(session, onError));
}

function setClock(session: AgentSession, onError: (message: string) => void): void {
  try {
    session.setTime(Date.now());
  } catch (error) {
    onError(`the guest's clock could not be set: ${error instanceof Error ? error.message : String(error)}`);
  }
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
      saveState: () => set.saveState(),
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
