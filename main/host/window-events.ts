// Each running guest's window list, pushed to the page that runs it as the host event
// { type: "windows" } (core/ipc/contract.ts): the current list when the page subscribes or the
// session's agent appears, then every change AgentSession.onWindows reports; an agent that goes
// away leaves an empty list. Both shells deliver it their way (main/web/server.ts, main/electron/ipc.ts).

import type { Disposable } from "../../core/disposable.js";
import type { GuestWindow, HostEvent } from "../../core/ipc/contract.js";
import type { HostServices } from "./services.js";

export type WindowsEvent = Extract<HostEvent, { type: "windows" }>;

function event(session: string, windows: readonly GuestWindow[]): WindowsEvent {
  return { type: "windows", session, windows: [...windows] };
}

/** Calls `deliver` with each session's window list: as its agent appears, then on each change. */
export function forwardWindows(services: Pick<HostServices, "onAgent">, deliver: (event: WindowsEvent) => void): Disposable {
  return services.onAgent(({ session, agent }) => {
    if (agent.windows) deliver(event(session, agent.windows));
    agent.onWindows((windows) => deliver(event(session, windows)));
    agent.onDisconnect(() => deliver(event(session, [])));
  });
}

/** A session's current list, for a page that subscribes after the agent reported it; undefined before. */
export function currentWindows(services: Pick<HostServices, "agent">, session: string): WindowsEvent | undefined {
  const windows = services.agent(session)?.windows;
  return windows ? event(session, windows) : undefined;
}
