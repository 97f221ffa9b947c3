// The host services every shell serves to the page's guests (Electron and the web shell
// alike): files over 9P from the guest's saved shares, and the agent. Each is attached when
// the page opens the service's pipe for a session, and ends with the session.

import { servableShares } from "./share-policy.js";
import { AgentSession, pipeTransport } from "../../core/agent/session.js";
import { ClipboardSync, type HostClipboard } from "../../core/agent/clipboard-sync.js";
import { DisposableStore, Emitter } from "../../core/disposable.js";
import type { HostSessions } from "./sessions.js";
import type { SettingsStore } from "../guests/settings-store.js";
import { serveP9, sharesBackend } from "./p9-service.js";
import { createNat } from "../net/nat.js";
import { appVersion } from "../version.js";

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
 * Serves 9P and the agent for every session. With `clipboard` (Electron's), the host clipboard
 * is kept in step with each guest whose settings share it; without (the web shell), the page
 * does that through "clipboard:set" and pushed events.
 */
export function registerHostServices(sessions: HostSessions, settings: SettingsStore, clipboard?: HostClipboard): HostServices {
  const agents = new Emitter<AgentEvent>();
  const live = new Map<string, { agent: AgentSession; clipboard: boolean }>();
  sessions.serve("p9", (session, pipe) => {
    const shares = servableShares(settings.load(session.guest).shares, (message) => console.error(`unmachine: ${session.guest}: ${message}`));
    return serveP9(sharesBackend(shares), pipe);
  });
  sessions.serve("net", (session, pipe) => {
    const saved = settings.load(session.guest);
    const nat = createNat({
      name: session.guest,
      allowHost: saved.allowHost,
      forwards: saved.forwards,
      onError: (message) => console.error(`unmachine: ${session.guest}: ${message}`),
    });
    const attached = nat.attach(pipe);
    return {
      dispose() {
        attached.dispose();
        nat.dispose();
      },
    };
  });
  sessions.serve("agent", (session, pipe) => {
    const store = new DisposableStore();
    const agent = store.add(new AgentSession(pipeTransport(pipe), { software: `unmachine ${appVersion}` }));
    const shared = settings.load(session.guest).clipboard;
    live.set(session.id, { agent, clipboard: shared });
    if (clipboard && shared) {
      store.add(new ClipboardSync(clipboard, { set: (text) => agent.setClipboard(text), onChange: (listener) => agent.onClipboard(listener) }));
    }
    agents.fire({ session: session.id, agent });
    return {
      dispose() {
        live.delete(session.id);
        store.dispose();
      },
    };
  });
  return {
    onAgent: agents.event,
    agent: (id) => live.get(id)?.agent,
    sharesClipboard: (id) => live.get(id)?.clipboard ?? false,
  };
}
