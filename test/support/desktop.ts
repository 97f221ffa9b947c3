// The desktop guest booted for a vm test as the CLI plans and serves it (no network), up to its
// agent's hello, and with `windowShown` until X shows its first window. One place for the tests
// that talk to the desktop's agent (windows, screen size).
import type { AgentSession } from "../../core/agent/session.js";
import type { GuestLibrary } from "../../main/guests/library.js";
import { libraryPlan } from "../../main/guests/launch.js";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { hostServiceSet, type ServiceSet } from "../../main/host/services.js";

export interface RunningDesktop {
  guest: HeadlessGuest;
  services: ServiceSet;
  agent: AgentSession;
  stop(): Promise<void>;
}

export async function startDesktop(library: GuestLibrary, label: string, options: { windowShown?: boolean } = {}): Promise<RunningDesktop> {
  const plan = libraryPlan(library, "desktop", undefined, { net: false });
  const services = hostServiceSet(plan, { onError: (message) => console.log(`${label}: a host service refused: ${message}`) });
  const guest = new HeadlessGuest(plan, { services: services.attach });
  const stop = async (): Promise<void> => {
    await guest.stop();
    guest.dispose();
    services.dispose();
  };
  try {
    await guest.waitForShell(300_000);
    const agent = services.agent();
    if (!agent) throw new Error("the desktop guest has no agent session");
    await agent.whenReady(120_000);
    if (options.windowShown) {
      // X is up once the agent lists a window (the initial xterm).
      await new Promise<void>((resolve) => {
        if (agent.windows?.length) resolve();
        else agent.onWindows((list) => list.length > 0 && resolve());
      });
    }
    return { guest, services, agent, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
