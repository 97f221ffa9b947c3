// `unmachine windows|apps|launch NAME` against a run's real control socket with a scripted agent:
// one line per window (id, WxH+X+Y, flags, title; topmost first) or JSON, the apps with their
// icons, a launch answered with its window, a guest that is not running refused as bad input,
// and the agent's own refusal passed on.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GuestApp, GuestWindow } from "../../../core/agent/messages.js";
import { AgentError, type LaunchOutcome } from "../../../core/agent/session.js";
import { sendControl, serveControl, type ControlAgent, type ControlGuest, type ControlRun } from "../../../main/cli/control.js";
import { appsCommand, launchCommand, windowsCommand } from "../../../main/cli/windows.js";
import { UsageError } from "../../../main/cli/errors.js";

const saved = process.env.XDG_RUNTIME_DIR;
const XTERM: GuestWindow = { id: 0x200004, title: "xterm", x: 45, y: 58, width: 484, height: 316, minimized: false, focused: false, frame: { x: 40, y: 40, width: 494, height: 339 } };
const XCALC: GuestWindow = { id: 0x800017, title: "Calculator\u001b", x: 10, y: -5, width: 226, height: 320, minimized: false, focused: true, pid: 128, frame: { x: 5, y: -28, width: 236, height: 353 } };

const guest: ControlGuest = { eject: async () => {}, insert: async () => {}, balloon: async (m: number) => m };

function fakeAgent(): ControlAgent & { list: GuestWindow[] } {
  const agent = {
    state: "ready" as const,
    list: [XTERM],
    get windows(): GuestWindow[] {
      return agent.list;
    },
    whenReady: () => Promise.reject(new AgentError("not used")),
    apps: async (): Promise<GuestApp[]> => [
      { id: "debian-xterm", name: "XTerm", exec: "xterm", icon: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2]) },
      { id: "xcalc", name: "Xcalc", exec: "xcalc" },
    ],
    launch: async (app: string): Promise<LaunchOutcome> => {
      if (app !== "xcalc") throw new AgentError(`the guest agent refused launch: no app named "${app}" in /usr/share/applications`);
      agent.list = [XTERM, XCALC];
      return { window: XCALC.id, pid: 128 };
    },
  };
  return agent;
}

function run(agent: ControlAgent | undefined): ControlRun {
  return { end: async () => "", snapshot: async () => "", agent: () => agent };
}

async function output(command: () => Promise<number>): Promise<{ code: number; stdout: string }> {
  let stdout = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const spyErr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    return { code: await command(), stdout };
  } finally {
    spy.mockRestore();
    spyErr.mockRestore();
  }
}

beforeEach(() => {
  process.env.XDG_RUNTIME_DIR = join(mkdtempSync(join(tmpdir(), "unmachine-windows-")), "run");
  mkdirSync(process.env.XDG_RUNTIME_DIR, { mode: 0o700 });
});

afterEach(() => {
  if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
  else process.env.XDG_RUNTIME_DIR = saved;
});

describe("unmachine windows, apps and launch", () => {
  it("lists a running guest's windows, topmost first, as lines or JSON, and its apps", async () => {
    const agent = fakeAgent();
    agent.list = [XTERM, XCALC];
    const control = await serveControl("desktop", guest, undefined, run(agent));
    try {
      expect(await output(() => windowsCommand(["desktop"]))).toEqual({
        code: 0,
        stdout: "0x00800017  226x320+10-5     focused           Calculator\\u001b\n0x00200004  484x316+45+58    -                 xterm\n",
      });
      const json = await output(() => windowsCommand(["desktop", "--json"]));
      expect(JSON.parse(json.stdout)).toEqual([XTERM, XCALC]);
      expect((await output(() => appsCommand(["desktop"]))).stdout).toBe("debian-xterm  XTerm: xterm  (icon, 6 bytes PNG)\nxcalc         Xcalc: xcalc\n");
      expect(JSON.parse((await output(() => appsCommand(["desktop", "--json"]))).stdout)).toEqual([
        { id: "debian-xterm", name: "XTerm", exec: "xterm", iconPng: "iVBORwEC" },
        { id: "xcalc", name: "Xcalc", exec: "xcalc" },
      ]);
    } finally {
      control.dispose();
    }
  });

  it("launches an app and prints its window; passes on the agent's refusal", async () => {
    const control = await serveControl("desktop", guest, undefined, run(fakeAgent()));
    try {
      expect(await output(() => launchCommand(["desktop", "xcalc"]))).toEqual({ code: 0, stdout: "0x00800017  226x320+10-5     focused           Calculator\\u001b\n" });
      await expect(launchCommand(["desktop", "nothing"])).rejects.toThrow('desktop: the guest agent refused launch: no app named "nothing" in /usr/share/applications');
      expect(await sendControl("desktop", { type: "launch", app: "" })).toEqual({ ok: false, error: "app must be a name of 1..256 bytes" });
    } finally {
      control.dispose();
    }
  });

  it("refuses a guest that is not running as bad input, and says when a run has no agent", async () => {
    await expect(windowsCommand(["desktop"])).rejects.toThrow(new UsageError("desktop is not running (running: none)"));
    await expect(launchCommand(["desktop", "xcalc"])).rejects.toBeInstanceOf(UsageError);
    const control = await serveControl("tiny", guest, undefined, run(undefined));
    try {
      await expect(appsCommand(["tiny"])).rejects.toThrow("tiny: the guest has no agent to ask (its profile has none, or it went away)");
    } finally {
      control.dispose();
    }
  });
});
