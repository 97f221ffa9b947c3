// The host's commands for a guest's agent (core/ipc/contract.ts "agent:*"): its apps, launching
// one, its screen size, and moving, raising or closing its windows. Each guest's apps are remembered (guests/apps-store.ts) whenever its
// agent says hello, so the launcher and the tray list them while it is off. A launch may come
// while the session still boots (the launcher starts the guest first): it waits for the agent.

import { DROPPED_IMAGE, type CommandHandlers, type GuestApps } from "../../core/ipc/contract.js";
import type { AgentSession } from "../../core/agent/session.js";
import type { GuestWindow } from "../../core/agent/messages.js";
import type { Disposable } from "../../core/disposable.js";
import type { AppsStore } from "../guests/apps-store.js";
import type { HostServices } from "./services.js";
import type { HostSessions } from "./sessions.js";

/** How long a launch waits for a starting guest's agent (a cold boot of the desktop guest in a page). */
export const AGENT_WAIT_MS = 180_000;

export interface AgentApiDeps {
  sessions: Pick<HostSessions, "guest" | "list">;
  services: HostServices;
  apps: AppsStore;
  /** For tests; AGENT_WAIT_MS by default. */
  agentWaitMs?: number;
}

type AgentHandlers = Pick<CommandHandlers, "agent:apps" | "agent:launch" | "agent:display" | "agent:windowAction">;

/** The agent of a session once it has said hello, waiting up to `timeoutMs` for it. */
export async function readyAgent(services: HostServices, session: string, guest: string, timeoutMs: number): Promise<AgentSession> {
  const started = Date.now();
  const attached =
    services.agent(session) ??
    (await new Promise<AgentSession>((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.dispose();
        reject(new Error(`${guest}: its agent did not start within ${Math.round(timeoutMs / 1000)} s; does the guest run umagent?`));
      }, timeoutMs);
      const sub: Disposable = services.onAgent((event) => {
        if (event.session !== session) return;
        clearTimeout(timer);
        sub.dispose();
        resolve(event.agent);
      });
    }));
  await attached.whenReady(Math.max(1, timeoutMs - (Date.now() - started)));
  return attached;
}

/**
 * Resolves once the agent reports a window list that `enough` accepts (by default any: it has
 * an X display), or rejects with `why` after `timeoutMs`.
 */
export function windowsReported(agent: AgentSession, timeoutMs: number, why: string, enough: (windows: readonly GuestWindow[]) => boolean = () => true): Promise<void> {
  if (agent.windows !== undefined && enough(agent.windows)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(why));
    }, timeoutMs);
    const sub = agent.onWindows((windows) => {
      if (!enough(windows)) return;
      clearTimeout(timer);
      sub.dispose();
      resolve();
    });
  });
}

/** Remembers each guest's apps when its agent says hello (and can list them). */
export function rememberApps(deps: AgentApiDeps): Disposable {
  const { sessions, services, apps } = deps;
  return services.onAgent(({ session, agent }) => {
    agent.onHello((hello) => {
      if (!hello.capabilities.includes("apps")) return;
      let guest: string;
      try {
        guest = sessions.guest(session);
      } catch {
        return;
      }
      if (guest === DROPPED_IMAGE) return;
      agent.apps().then(
        (list) => apps.save(guest, list),
        (error: unknown) => console.error(`unmachine: ${guest}: its apps could not be listed: ${(error as Error).message}`),
      );
    });
  });
}

export function agentHandlers(deps: AgentApiDeps): AgentHandlers {
  const { sessions, services, apps } = deps;
  const wait = deps.agentWaitMs ?? AGENT_WAIT_MS;
  return {
    "agent:apps": async (guest): Promise<GuestApps> => {
      const remembered = apps.load(guest);
      const running = sessions.list().find((s) => s.guest === guest && s.state === "running");
      const agent = running ? services.agent(running.id) : undefined;
      if (!agent || agent.state !== "ready") return { guest, live: false, apps: remembered };
      // An agent that cannot list apps (no X display, an older agent) has none to offer.
      if (!agent.info?.capabilities.includes("apps")) return { guest, live: true, apps: [] };
      return { guest, live: true, apps: apps.save(guest, await agent.apps()) };
    },
    "agent:launch": async (session, app) => {
      const guest = sessions.guest(session);
      const started = Date.now();
      const agent = await readyAgent(services, session, guest, wait);
      // A guest resumed or booting may have its agent before its X display: the app waits for X.
      if (agent.info?.capabilities.includes("windows")) await windowsReported(agent, Math.max(1, wait - (Date.now() - started)), `${guest}: its X display did not start within ${Math.round(wait / 1000)} s`);
      try {
        return await agent.launch(app);
      } catch (error) {
        throw new Error(`${guest}: ${app} did not start: ${(error as Error).message}`);
      }
    },
    "agent:windowAction": async (session, window, action) => {
      const guest = sessions.guest(session);
      const agent = services.agent(session);
      if (!agent) throw new Error(`${guest}: its agent is not running; its windows cannot be moved or closed`);
      await agent.windowAction(window, action);
    },
    "agent:display": (session, width, height) => {
      sessions.guest(session);
      const agent = services.agent(session);
      // Only a guest with an X display can change its screen's size; until it has one, the page asks again.
      if (agent?.windows === undefined) return false;
      return agent.setDisplaySize(width, height);
    },
  };
}
