// The guest agent's X clipboard against a real X server (Debian's Xvfb) and an application that
// answers late: a copy whose owner misses the agent's 3 s wait is asked for again and reaches
// the host; an answer that comes after the agent asked again is never taken for the new one's;
// an owner that never answers is given up after three tries, in one line, and the next copy
// still arrives; a host's copy made meanwhile is not read back. The agent is compiled for this
// host, pointed at Xvfb's display.

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
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
  let xvfbLog = "";
  let socket: string;
  let host: HostAgent;
  const clips: string[] = [];
  const owners: SelectionOwner[] = [];

  beforeAll(async () => {
    const display = freeDisplay();
    socket = `/tmp/.X11-unix/X${display}`;
    xvfb = spawn("Xvfb", [`:${display}`, "-ac", "-nolisten", "tcp", "-screen", "0", "640x480x24"], { stdio: ["ignore", "ignore", "pipe"] });
    xvfb.stderr!.on("data", (data: Buffer) => (xvfbLog += data.toString()));
    await vi.waitFor(
      () => {
        if (xvfb.exitCode !== null) throw new Error(`Xvfb :${display} ended (${xvfb.exitCode}): ${xvfbLog}`);
        expect(existsSync(socket), `Xvfb :${display} made no socket yet: ${xvfbLog}`).toBe(true);
      },
      { timeout: 10_000, interval: 50 },
    );
    host = await startHostAgent({ defines: [`X_SOCKET="${socket}"`], listen: (session) => session.onClipboard((text) => clips.push(text)) });
    // The agent reaches the display within its retry (1 s) and watches the selections.
    await vi.waitFor(() => expect(host.session.windows).toBeDefined(), { timeout: 10_000 });
  }, 30_000);

  // Each test's owners go with it: a late answer of theirs never reaches the next test.
  afterEach(() => {
    for (const owner of owners.splice(0)) {
      owner.close();
      expect(owner.errors).toEqual([]);
    }
  });

  afterAll(() => {
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

  it("never takes an answer that came after it asked again for the new one's", async () => {
    // The owner's copy changes while the agent waits: its late answer to the first request for
    // the text (asked at 0 s, answered at 3.5 s) holds the old copy, and comes while the agent
    // waits for its second (asked at 3 s, answered at 4 s), which holds the new one.
    const plan = (n: number): { delay: number; text?: string } => (n === 1 ? { delay: 3500, text: "the old copy" } : n === 3 ? { delay: 1000, text: "the new copy" } : { delay: 0 });
    const owner = await ownClipboard(socket, "the new copy", plan);
    owners.push(owner);
    await vi.waitFor(() => expect(clips.at(-1)).toBe("the new copy"), { timeout: 12_000, interval: 100 });
    await new Promise((r) => setTimeout(r, 500));
    expect(owner.requests.slice(0, 4)).toEqual(["TARGETS", "UTF8_STRING", "TARGETS", "UTF8_STRING"]);
    expect(clips).not.toContain("the old copy");
  }, 20_000);

  it("does not read back the host's copy that took the selection while it waited", async () => {
    const silent = await ownClipboard(socket, "never sent", () => "never");
    owners.push(silent);
    await vi.waitFor(() => expect(silent.requests).toEqual(["TARGETS"]), { timeout: 5000, interval: 50 });
    host.session.setClipboard("the host's copy");
    await vi.waitFor(() => expect(host.log()).toContain("the X clipboard's owner did not answer within 3000 ms; the host's copy has replaced it"), {
      timeout: 8000,
      interval: 100,
    });
    expect(silent.requests).toEqual(["TARGETS"]);
    expect(clips).not.toContain("the host's copy");
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
