// Remembered apps on disk: what a guest's agent reported is kept (read back by a new store, as
// the tray and a later page do), written privately and only when it changed; what the guest
// sends is capped and checked (count, text, duplicate ids, icons that are not PNG or too big),
// and a damaged file reads as no apps. Then the host's agent commands over fake sessions.
import { describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AppsStore, APPS_STORE_LIMITS, keepApps } from "../../../main/guests/apps-store.js";
import { agentHandlers, rememberApps } from "../../../main/host/agent-api.js";
import type { GuestApp, Hello } from "../../../core/agent/messages.js";
import { Emitter } from "../../../core/disposable.js";
import type { AgentSession } from "../../../core/agent/session.js";
import type { AgentEvent, HostServices } from "../../../main/host/services.js";
import type { SessionInfo } from "../../../core/ipc/contract.js";

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
const XCALC: GuestApp = { id: "xcalc", name: "Calculator", exec: "xcalc", icon: PNG };
const XTERM: GuestApp = { id: "xterm", name: "XTerm", exec: "xterm" };

function fresh(): { store: AppsStore; data: string } {
  const data = join(mkdtempSync(join(tmpdir(), "unmachine-apps-")), "data");
  return { store: new AppsStore(data), data };
}

describe("AppsStore", () => {
  it("has no apps for a guest that never reported any, and reads back what its agent reported", () => {
    const { store, data } = fresh();
    expect(store.load("desktop")).toEqual([]);
    const kept = store.save("desktop", [XCALC, XTERM]);
    expect(kept).toEqual([{ id: "xcalc", name: "Calculator", icon: Buffer.from(PNG).toString("base64") }, { id: "xterm", name: "XTerm" }]);
    expect(new AppsStore(data).load("desktop")).toEqual(kept);
    const file = join(data, "guests", "desktop", "apps.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(data, "guests", "desktop"))).toEqual(["apps.json"]);
  });

  it("writes and tells only when the list changed", () => {
    const { store } = fresh();
    const changed: string[] = [];
    store.onChange((guest) => changed.push(guest));
    store.save("desktop", [XTERM]);
    store.save("desktop", [XTERM]);
    store.save("desktop", [XTERM, XCALC]);
    expect(changed).toEqual(["desktop", "desktop"]);
  });

  it("reads a damaged or foreign file as no apps, and keeps only valid entries of an edited one", () => {
    const { store, data } = fresh();
    store.save("desktop", [XTERM]);
    const file = join(data, "guests", "desktop", "apps.json");
    writeFileSync(file, "{ not json");
    expect(store.load("desktop")).toEqual([]);
    writeFileSync(file, JSON.stringify({ apps: [{ id: "a", name: "A", icon: "not base64!" }, { id: 5, name: "B" }, "x", null] }));
    expect(store.load("desktop")).toEqual([{ id: "a", name: "A" }]);
  });

  it("refuses a name that is not a guest's (it becomes a folder name)", () => {
    const { store } = fresh();
    expect(() => store.save("../evil", [XTERM])).toThrow(/not a guest name/);
    expect(() => store.load("a/b")).toThrow(/not a guest name/);
  });
});

describe("keepApps (what the guest sent)", () => {
  it("caps the count and leaves out empty, unprintable, overlong and repeated entries", () => {
    const many = Array.from({ length: 200 }, (_, i) => ({ id: `app${i}`, name: `App ${i}`, exec: "x" }));
    expect(keepApps(many)).toHaveLength(APPS_STORE_LIMITS.apps);
    const bad = [
      { id: "", name: "Empty" },
      { id: "ok", name: "" },
      { id: "bell", name: "Ring\u0007" },
      { id: "line", name: "Two\u2028lines" },
      { id: "x".repeat(APPS_STORE_LIMITS.idChars + 1), name: "Long id" },
      { id: "dup", name: "First" },
      { id: "dup", name: "Second" },
    ];
    expect(keepApps(bad)).toEqual([{ id: "dup", name: "First" }]);
  });

  it("keeps only PNG icons, each and all together within their caps", () => {
    const gif = new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0, 0, 0]);
    const big = new Uint8Array(APPS_STORE_LIMITS.iconBytes + 1);
    big.set(PNG);
    const kept = keepApps([{ id: "a", name: "A", icon: gif }, { id: "b", name: "B", icon: big }, { id: "c", name: "C", icon: PNG }]);
    expect(kept.map((a) => a.icon !== undefined)).toEqual([false, false, true]);
    const full = new Uint8Array(APPS_STORE_LIMITS.iconBytes);
    full.set(PNG);
    const budget = keepApps(Array.from({ length: 12 }, (_, i) => ({ id: `i${i}`, name: `I${i}`, icon: full })));
    expect(budget.filter((a) => a.icon).length).toBe(APPS_STORE_LIMITS.iconBudget / APPS_STORE_LIMITS.iconBytes);
  });
});

/** A fake agent: ready with `capabilities`, answering apps() with `apps`, launch() with a window. */
function fakeAgent(apps: GuestApp[], capabilities = ["apps", "launch"]): { agent: AgentSession; hellos: Emitter<Hello>; launched: string[] } {
  const hellos = new Emitter<Hello>();
  const launched: string[] = [];
  const agent = {
    state: "ready",
    info: { type: "hello", minVersion: 1, maxVersion: 1, software: "umagent", capabilities },
    onHello: hellos.event,
    whenReady: () => Promise.resolve(),
    apps: () => Promise.resolve(apps),
    launch: (app: string) => {
      launched.push(app);
      return app === "nothing" ? Promise.reject(new Error('the guest agent refused launch: no app named "nothing"')) : Promise.resolve({ window: 0x400001, pid: 99 });
    },
    setDisplaySize: () => true,
  } as unknown as AgentSession;
  return { agent, hellos, launched };
}

function host(): { services: HostServices; agents: Emitter<AgentEvent>; live: Map<string, AgentSession> } {
  const agents = new Emitter<AgentEvent>();
  const live = new Map<string, AgentSession>();
  const services: HostServices = { onAgent: agents.event, agent: (id) => live.get(id), sharesClipboard: () => false };
  return { services, agents, live };
}

const sessionsOf = (list: SessionInfo[]) => ({
  list: () => list,
  guest: (id: string) => {
    const found = list.find((s) => s.id === id);
    if (!found) throw new Error(`no session ${id}`);
    return found.guest;
  },
});

describe("the host's agent commands", () => {
  it("remembers a guest's apps when its agent says hello, and lists them while it is off", async () => {
    const { store } = fresh();
    const list: SessionInfo[] = [{ id: "s1", guest: "desktop", state: "running" }];
    const { services, agents } = host();
    rememberApps({ sessions: sessionsOf(list), services, apps: store });
    const { agent, hellos } = fakeAgent([XCALC, XTERM]);
    agents.fire({ session: "s1", agent });
    hellos.fire({ type: "hello", minVersion: 1, maxVersion: 1, software: "umagent", capabilities: ["apps"] });
    await new Promise((resolve) => setTimeout(resolve, 10));
    list.length = 0;
    const handlers = agentHandlers({ sessions: sessionsOf(list), services, apps: store });
    await expect(handlers["agent:apps"]("desktop")).resolves.toMatchObject({ guest: "desktop", live: false, apps: [{ id: "xcalc" }, { id: "xterm" }] });
  });

  it("asks a running guest's agent for its apps, and waits for a booting guest's agent to launch one", async () => {
    const { store } = fresh();
    const list: SessionInfo[] = [{ id: "s1", guest: "desktop", state: "running" }];
    const { services, agents, live } = host();
    const handlers = agentHandlers({ sessions: sessionsOf(list), services, apps: store, agentWaitMs: 1000 });
    const { agent, launched } = fakeAgent([XTERM]);
    const launch = handlers["agent:launch"]("s1", "xcalc");
    live.set("s1", agent);
    agents.fire({ session: "s1", agent });
    await expect(launch).resolves.toEqual({ window: 0x400001, pid: 99 });
    expect(launched).toEqual(["xcalc"]);
    await expect(handlers["agent:apps"]("desktop")).resolves.toEqual({ guest: "desktop", live: true, apps: [{ id: "xterm", name: "XTerm" }] });
    expect(store.load("desktop")).toEqual([{ id: "xterm", name: "XTerm" }]);
    await expect(handlers["agent:launch"]("s1", "nothing")).rejects.toThrow('desktop: nothing did not start: the guest agent refused launch: no app named "nothing"');
  });

  it("asks for a screen size only of a guest whose agent has an X display (the page asks again until then)", () => {
    const { store } = fresh();
    const list: SessionInfo[] = [{ id: "s1", guest: "desktop", state: "running" }];
    const { services, live } = host();
    const handlers = agentHandlers({ sessions: sessionsOf(list), services, apps: store });
    expect(handlers["agent:display"]("s1", 800, 600)).toBe(false);
    const { agent } = fakeAgent([]);
    live.set("s1", agent);
    expect(handlers["agent:display"]("s1", 800, 600)).toBe(false);
    (agent as unknown as { windows: unknown[] }).windows = [];
    expect(handlers["agent:display"]("s1", 800, 600)).toBe(true);
  });

  it("says so when a guest's agent never comes", async () => {
    const { store } = fresh();
    const list: SessionInfo[] = [{ id: "s1", guest: "tiny", state: "booting" }];
    const { services } = host();
    const handlers = agentHandlers({ sessions: sessionsOf(list), services, apps: store, agentWaitMs: 50 });
    await expect(handlers["agent:launch"]("s1", "xcalc")).rejects.toThrow("tiny: its agent did not start within 0 s; does the guest run umagent?");
    await expect(handlers["agent:launch"]("nope", "xcalc")).rejects.toThrow("no session nope");
  });
});
