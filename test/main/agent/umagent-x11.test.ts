// The guest agent's X clipboard against a real X server (Debian's Xvfb) and an application that
// answers late: a copy whose owner misses the agent's 3 s wait is asked for again and reaches
// the host; an owner that never answers is given up after three tries, in one line, and the
// next copy still arrives. The agent is compiled for this host, pointed at Xvfb's display.

import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { compilerProblem, startHostAgent, type HostAgent } from "../../support/host-agent.js";
import { ownClipboard, type SelectionOwner } from "../../support/x-selection-owner.js";

function problem(): string | undefined {
  const cc = compilerProblem();
  if (cc) return cc;
  if (spawnSync("Xvfb", ["-help"], { encoding: "utf8" }).error) return "no X server: Xvfb is not installed (Debian's xvfb; scripts/system-deps.sh test installs it)";
  return undefined;
}
const skip = problem();
if (skip) console.warn(`umagent X11 test skipped: ${skip}`);

/** A display number no other X server here uses. */
function freeDisplay(): number {
  for (let n = 90 + (process.pid % 50); ; n++) if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) return n;
}

describe.skipIf(skip !== undefined)("umagent's X clipboard with an owner that answers late or never", () => {
  let xvfb: ChildProcess;
  let socket: string;
  let host: HostAgent;
  const clips: string[] = [];
  const owners: SelectionOwner[] = [];

  beforeAll(async () => {
    const display = freeDisplay();
    socket = `/tmp/.X11-unix/X${display}`;
    xvfb = spawn("Xvfb", [`:${display}`, "-ac", "-nolisten", "tcp", "-screen", "0", "640x480x24"], { stdio: "ignore" });
    await vi.waitFor(() => expect(existsSync(socket)).toBe(true), { timeout: 10_000, interval: 50 });
    host = await startHostAgent({ defines: [`X_SOCKET="${socket}"`], listen: (session) => session.onClipboard((text) => clips.push(text)) });
    // The agent reaches the display within its retry (1 s) and watches the selections.
    await vi.waitFor(() => expect(host.session.windows).toBeDefined(), { timeout: 10_000 });
  }, 30_000);

  afterAll(() => {
    for (const owner of owners) owner.close();
    host?.dispose();
    xvfb?.kill("SIGTERM");
  });

  it("asks again an owner that missed its 3 s wait, and the copy reaches the host", async () => {
    // The first request (TARGETS) is answered after 4 s, past the agent's wait; the rest at once.
    const owner = await ownClipboard(socket, "copied by a busy application", (n) => ({ delay: n === 0 ? 4000 : 0 }));
    owners.push(owner);
    await vi.waitFor(() => expect(clips.at(-1)).toBe("copied by a busy application"), { timeout: 12_000, interval: 100 });
    expect(owner.requests.slice(0, 2)).toEqual(["TARGETS", "TARGETS"]);
    expect(owner.requests).toContain("UTF8_STRING");
    expect(host.log()).toContain("the X clipboard's owner did not answer within 3000 ms; asking again");
  }, 20_000);

  it("gives up an owner that never answers after three tries, in one line, and takes the next copy", async () => {
    const silent = await ownClipboard(socket, "never sent", () => "never");
    owners.push(silent);
    await vi.waitFor(() => expect(host.log()).toContain("the X clipboard's owner did not answer within 3000 ms, 3 times; that copy is not sent"), {
      timeout: 15_000,
      interval: 200,
    });
    expect(silent.requests).toEqual(["TARGETS", "TARGETS", "TARGETS"]);
    expect(clips).not.toContain("never sent");

    const prompt = await ownClipboard(socket, "the next copy", () => ({ delay: 0 }));
    owners.push(prompt);
    await vi.waitFor(() => expect(clips.at(-1)).toBe("the next copy"), { timeout: 5000, interval: 100 });
    expect(await host.session.ping(2000)).toBeLessThan(2000);
  }, 30_000);
});
