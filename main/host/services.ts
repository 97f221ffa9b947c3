// The host services every shell serves to the page's guests (Electron and the web shell
// alike): files over 9P from the guest's saved shares, and the agent. Each is attached when
// the page opens the service's pipe for a session, and ends with the session.

import { AgentSession, pipeTransport } from "../../core/agent/session.js";
import { Emitter } from "../../core/disposable.js";
import type { HostSessions } from "./sessions.js";
import type { SettingsStore } from "../guests/settings-store.js";
import { serveP9, sharesBackend } from "./p9-service.js";
import { appVersion } from "../version.js";

export interface AgentEvent {
  session: string;
  agent: AgentSession;
}

export function registerHostServices(sessions: HostSessions, settings: SettingsStore): { onAgent: Emitter<AgentEvent>["event"] } {
  const agents = new Emitter<AgentEvent>();
  sessions.serve("p9", (session, pipe) => serveP9(sharesBackend(settings.load(session.guest).shares), pipe));
  sessions.serve("agent", (session, pipe) => {
    const agent = new AgentSession(pipeTransport(pipe), { software: `unmachine ${appVersion}` });
    agents.fire({ session: session.id, agent });
    return agent;
  });
  return { onAgent: agents.event };
}
