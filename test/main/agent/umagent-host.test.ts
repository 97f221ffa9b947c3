// The real guest agent (guests/agent/umagent.c, compiled for this host with plain cc) against
// the real AgentSession, over a pseudo-terminal as its port, the way it runs on /dev/hvc0:
// hello, ping, exec (output, status, timeout, truncation), clipboard both ways without echo,
// display, resynchronising after garbage, and a second session asking a running agent again.

import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir, type } from "node:os";
import { join } from "node:path";
import { AgentSession, type AgentTransport } from "../../../core/agent/session.js";
import type { Display } from "../../../core/agent/messages.js";
import { compilerProblem, startHostAgent, type HostAgent } from "../../support/host-agent.js";

const problem = compilerProblem();
if (problem) console.warn(`umagent host test skipped: ${problem}`);

describe.skipIf(problem !== undefined)("umagent on a pseudo-terminal, driven by AgentSession", () => {
  let host: HostAgent;
  let clipboard: string;
  let agent: ChildProcess;
  let transport: AgentTransport;
  let session: AgentSession;
  const clips: string[] = [];
  const displays: Display[] = [];

  beforeAll(async () => {
    host = await startHostAgent({
      // Never the X display of the machine the tests run on (a developer's desktop): none at all.
      defines: [`X_SOCKET="${join(tmpdir(), "unmachine-no-such-display")}"`],
      args: (dir) => ["-c", join(dir, "run", "unmachine", "clipboard")],
      listen: (s) => {
        s.onClipboard((text) => clips.push(text));
        s.onDisplay((display) => displays.push(display));
      },
    });
    ({ agent, transport, session } = host);
    clipboard = join(host.dir, "run", "unmachine", "clipboard");
  });

  afterAll(() => {
    session?.dispose();
    host?.dispose();
  });

  it("says hello with the system's uname, its pid and capabilities", () => {
    expect(session.version).toBe(1);
    expect(session.info).toMatchObject({
      software: "umagent 1.0.0",
      os: type(),
      hostname: hostname(),
      pid: agent.pid,
      capabilities: ["ping", "exec", "clipboard", "display", "time", "windows", "apps", "launch", "window-action", "display.size", "clipboard.png"],
      minVersion: 1,
      maxVersion: 1,
    });
  });

  it("reports the display (80x25 text without a framebuffer)", async () => {
    await vi.waitFor(() => expect(displays.length).toBeGreaterThan(0), { timeout: 3000 });
    const expected = existsSync("/sys/class/graphics/fb0/virtual_size") ? { mode: "graphics" } : { mode: "text", width: 80, height: 25 };
    expect(displays[0]).toMatchObject(expected);
  });

  it("answers ping", async () => {
    expect(await session.ping(2000)).toBeLessThan(2000);
  });

  it("runs a command: output and exit status", async () => {
    const outcome = await session.exec("echo hi; exit 3", { timeoutMs: 5000 });
    expect(outcome).toMatchObject({ output: "hi\n", status: 3, signal: 0, timedOut: false, truncated: false });
  });

  it("combines stdout and stderr, with stdin empty", async () => {
    const outcome = await session.exec("echo out; echo err >&2; cat; echo done");
    expect(outcome.output).toBe("out\nerr\ndone\n");
    expect(outcome.status).toBe(0);
  });

  it("kills a command at its timeout, with everything it started", async () => {
    const started = Date.now();
    const outcome = await session.exec("echo before; sleep 30 & sleep 30", { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(outcome).toMatchObject({ output: "before\n", timedOut: true, signal: 9, status: 137 });
  });

  it("caps the output and says it did", async () => {
    const outcome = await session.exec("head -c 200000 /dev/zero | tr '\\0' a; echo; exit 7", { maxOutput: 1000 });
    expect(outcome.outputBytes.length).toBe(1000);
    expect(outcome.output).toBe("a".repeat(1000));
    expect(outcome).toMatchObject({ truncated: true, status: 7 });
  });

  it("returns when the shell ends even if a background child keeps the output open", async () => {
    const started = Date.now();
    const outcome = await session.exec("sleep 3 & echo bg");
    expect(outcome.output).toBe("bg\n");
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it("stays responsive while commands run", async () => {
    const slow = session.exec("sleep 1; echo late");
    const started = Date.now();
    await session.ping(2000);
    expect(Date.now() - started).toBeLessThan(800);
    const parallel = await Promise.all([1, 2, 3, 4].map((n) => session.exec(`echo ${n}`)));
    expect(parallel.map((o) => o.output)).toEqual(["1\n", "2\n", "3\n", "4\n"]);
    expect((await slow).output).toBe("late\n");
  });

  it("drops a clipboard of an unknown type or a lying PNG, saying so, and keeps answering", async () => {
    const field = (tag: number, value: Uint8Array): number[] => [tag, value.length & 0xff, (value.length >> 8) & 0xff, 0, 0, ...value];
    const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
    const frame = (fields: number[]): Uint8Array => {
      const payload = [1, 6, 0, 0, 0, 0, ...fields];
      return Uint8Array.from([0x55, 0x4d, payload.length & 0xff, (payload.length >> 8) & 0xff, 0, 0, ...payload]);
    };
    transport.send(frame([...field(2, bytes("image/gif")), ...field(3, bytes("GIF89a"))]));
    transport.send(frame([...field(2, bytes("image/png")), ...field(3, bytes("<svg/>, not a PNG"))]));
    await vi.waitFor(() => expect(host.log()).toContain("ignoring a clipboard of an unknown type"), { timeout: 3000 });
    await vi.waitFor(() => expect(host.log()).toContain("ignoring a clipboard image that is not a PNG of at most 8388608 bytes"), { timeout: 3000 });
    expect(await session.ping(2000)).toBeLessThan(2000);
    expect(existsSync(clipboard)).toBe(false);
  });

  it("sets the guest's clipboard file and does not send it back", async () => {
    const text = "héllo\nwörld 🙂";
    session.setClipboard(text);
    await vi.waitFor(() => expect(readFileSync(clipboard, "utf8")).toBe(text), { timeout: 3000 });
    await new Promise((r) => setTimeout(r, 1000));
    expect(clips).toEqual([]);
  });

  it("sends changes made to the clipboard file in the guest", async () => {
    writeFileSync(clipboard, "from the guest\n");
    await vi.waitFor(() => expect(clips).toEqual(["from the guest\n"]), { timeout: 3000 });
    writeFileSync(clipboard, Buffer.from([0x61, 0xff, 0x62]));
    await vi.waitFor(() => expect(clips.at(-1)).toBe("a\ufffdb"), { timeout: 3000 });
  });

  it("takes a large clipboard from the host in pieces", async () => {
    const text = "0123456789abcdef".repeat(20_000);
    session.setClipboard(text);
    await vi.waitFor(() => expect(readFileSync(clipboard, "utf8")).toBe(text), { timeout: 5000 });
  });

  it("skips bytes that are not frames and keeps answering", async () => {
    transport.send(Buffer.from("this is not a frame UUUMMM\n"));
    transport.send(Buffer.from([0x55, 0x4d, 0xff, 0xff, 0xff, 0xff]));
    expect(await session.ping(2000)).toBeLessThan(2000);
    const outcome = await session.exec("echo still here");
    expect(outcome.output).toBe("still here\n");
  });

  it("survives random frames of every type but exec (seeded) and keeps answering", async () => {
    let seed = 0x7e57;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let i = 0; i < 500; i++) {
      const types = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 200];
      const body = Buffer.alloc(next(64));
      for (let k = 0; k < body.length; k++) body[k] = next(256);
      const payload = Buffer.concat([Buffer.from([1 + next(2), types[next(types.length)]!, next(256), 0, 0, 0]), body]);
      const header = Buffer.from([0x55, 0x4d, 0, 0, 0, 0]);
      header.writeUInt32LE(payload.length, 2);
      transport.send(Buffer.concat([header, payload]));
    }
    expect(await session.ping(5000)).toBeLessThan(5000);
    expect(agent.exitCode).toBeNull();
  });

  it("without an X display, lists no windows and refuses a launch, saying why", async () => {
    await new Promise((r) => setTimeout(r, 1500)); // past one of its retries to reach :0
    expect(session.windows).toBeUndefined();
    await expect(session.launch("xcalc", 5000)).rejects.toThrow("the guest agent refused launch: the guest has no X display (:0) to show an app on");
    expect(agent.exitCode).toBeNull();
  });

  it("lists the apps of the system's .desktop files", async () => {
    const apps = await session.apps(5000);
    for (const app of apps) {
      const entry = readFileSync(join("/usr/share/applications", `${app.id}.desktop`), "utf8");
      expect(entry).toMatch(/^Type=Application$/m);
      expect(app.exec).not.toMatch(/%[a-zA-Z]/);
    }
    expect(apps.map((app) => app.id)).toEqual([...apps.map((app) => app.id)].sort());
  });

  it("introduces itself again to a new session that asks (as after a restore)", async () => {
    session.dispose();
    session = new AgentSession(transport, { probe: true });
    const info = await session.whenReady(5000);
    expect(info.pid).toBe(agent.pid);
    expect((await session.exec("echo again")).output).toBe("again\n");
    expect(host.log()).not.toMatch(/cannot|failed/);
  });
});
