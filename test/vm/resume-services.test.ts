// Host services across a suspend of the real tiny guest: the guest is booted with share A, writes
// in /mnt/A, keeps a file of A open in a background process, and is suspended (its state and the
// host services' state kept). Resumed with A, the held file reads and writes on; resumed with the
// same tag on folder B, the held file errs and never shows B's content; resumed with a share
// added, it appears under /mnt. After each resume the agent says hello again and the guest's
// clock is the host's, though the state was saved ~20 s before.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyPlan } from "../support/guests.js";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { hostServiceSet, type HostState, type ServiceSet } from "../../main/host/services.js";
import type { AgentSession } from "../../core/agent/session.js";
import type { ShareSetting } from "../../core/guest/settings.js";

const scratch = mkdtempSync(join(tmpdir(), "unmachine-resume-services-"));
const folderA = join(scratch, "a");
const folderB = join(scratch, "b");
const folderC = join(scratch, "c");
const share = (tag: string, hostPath: string): ShareSetting => ({ tag, hostPath, readOnly: false });

/** A background process holding /mnt/A/held.txt open read-write; on /tmp/go it reads the file
 * through that descriptor, then writes a line through it, and reports both in /tmp/out. */
const HOLDER = [
  "echo $$ > /tmp/holder.pid",
  "exec 3<>/mnt/A/held.txt",
  "while :; do",
  "  if [ -e /tmp/go ]; then rm /tmp/go; { cat <&3; echo \"rc=$?\"; echo written-after >&3; echo \"wrc=$?\"; } > /tmp/out 2>&1; touch /tmp/done; fi",
  "  sleep 0.2",
  "done",
].join("\n");

interface Run {
  guest: HeadlessGuest;
  services: ServiceSet;
  errors: string[];
}

function start(shares: ShareSetting[], resumed?: { raw: Uint8Array; host: HostState }): Run {
  const plan = tinyPlan({ net: false, shares });
  if (resumed) plan.machine.initialState = { kind: "bytes", bytes: resumed.raw };
  const errors: string[] = [];
  const services = hostServiceSet(plan, { onError: (message) => errors.push(message), ...(resumed ? { resumed: { host: resumed.host } } : {}) });
  const guest = new HeadlessGuest(plan, { services: services.attach });
  return { guest, services, errors };
}

async function end(run: Run): Promise<void> {
  await run.guest.stop();
  run.guest.dispose();
  run.services.dispose();
}

function agentOf(run: Run): Promise<AgentSession> {
  const now = run.services.agent();
  if (now) return Promise.resolve(now);
  return new Promise((resolve) => {
    const sub = run.services.onAgent((agent) => {
      sub.dispose();
      resolve(agent);
    });
  });
}

async function sh(run: Run, command: string): Promise<string> {
  const agent = await agentOf(run);
  await agent.whenReady(30_000);
  return (await agent.exec(command, { timeoutMs: 30_000 })).output;
}

/** Triggers the holder and returns what it reported. */
async function holderReport(run: Run): Promise<string> {
  await sh(run, "rm -f /tmp/done /tmp/out; touch /tmp/go");
  for (let i = 0; i < 100; i++) {
    const out = await sh(run, "[ -e /tmp/done ] && cat /tmp/out || true");
    if (out !== "") return out;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error("the background process holding the file never answered");
}

/** How far the guest's clock (whole seconds, from `date +%s` right after the agent's hello) is
 * from the host's while the command ran, in seconds; 0 inside that time. */
async function clockSkew(run: Run): Promise<number> {
  const agent = await agentOf(run);
  await agent.whenReady(30_000);
  const before = Date.now() / 1000;
  const guestNow = Number((await agent.exec("date +%s", { timeoutMs: 10_000 })).output.trim());
  const after = Date.now() / 1000;
  if (guestNow < Math.floor(before)) return guestNow - Math.floor(before);
  return guestNow > after ? guestNow - after : 0;
}

describe("host services across a suspend of tiny", () => {
  let saved: { raw: Uint8Array; host: HostState };

  beforeAll(async () => {
    for (const d of [folderA, folderB, folderC]) mkdirSync(d);
    writeFileSync(join(folderA, "held.txt"), "A's held file\n");
    writeFileSync(join(folderB, "held.txt"), "B's secret\n");
    writeFileSync(join(folderC, "new.txt"), "C is new\n");
    const first = start([share("A", folderA)]);
    await first.guest.waitForShell(240_000);
    expect(await sh(first, "echo before > /mnt/A/written.txt && cat /mnt/A/written.txt")).toBe("before\n");
    await sh(first, `cat > /tmp/holder.sh <<'EOF'\n${HOLDER}\nEOF\nsetsid sh /tmp/holder.sh </dev/null >/dev/null 2>&1 &\nsleep 1; echo started`);
    const raw = await first.guest.suspend();
    saved = { raw, host: JSON.parse(JSON.stringify(first.services.saveState())) as HostState };
    await end(first);
    expect(first.errors).toEqual([]);
    // The state is "minutes old" for the guest's clock: it stood still meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 20_000));
  }, 400_000);
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("resumed with the same share: the held file reads and writes, new files work, the clock is the host's", async () => {
    const run = start([share("A", folderA)], saved);
    try {
      const skew = await clockSkew(run);
      console.log(`guest clock minus host clock after the resume: ${skew.toFixed(2)} s`);
      expect(Math.abs(skew)).toBeLessThan(2);
      const report = await holderReport(run);
      expect(report).toBe("A's held file\nrc=0\nwrc=0\n");
      expect(readFileSync(join(folderA, "held.txt"), "utf8")).toBe("A's held file\nwritten-after\n");
      expect(await sh(run, "cat /mnt/A/written.txt; echo after > /mnt/A/after.txt; ls /mnt")).toBe("before\nA\n");
      expect(readFileSync(join(folderA, "after.txt"), "utf8")).toBe("after\n");
      expect(run.errors).toEqual([]);
    } finally {
      await end(run);
    }
  }, 120_000);

  it("resumed with tag A on another folder: the held file errs, never showing that folder's file", async () => {
    const run = start([share("A", folderB)], saved);
    try {
      const report = await holderReport(run);
      expect(report).not.toContain("B's secret");
      expect(report).toMatch(/rc=[1-9]/);
      expect(report).toMatch(/wrc=[1-9]/);
      expect(readFileSync(join(folderB, "held.txt"), "utf8")).toBe("B's secret\n");
      // While the old file is held, the guest's /mnt/A is still the old share's and errs too;
      // once it is let go, a new lookup reaches this run's folder, shared by the user under A.
      expect(await sh(run, "cat /mnt/A/held.txt 2>&1")).toMatch(/Input\/output error/);
      await sh(run, "kill $(cat /tmp/holder.pid); sleep 1");
      expect(await sh(run, "cat /mnt/A/held.txt")).toBe("B's secret\n");
    } finally {
      await end(run);
    }
  }, 120_000);

  it("resumed with a share added and A removed: /mnt lists this run's shares", async () => {
    const run = start([share("C", folderC)], saved);
    try {
      expect(await sh(run, "ls /mnt; cat /mnt/C/new.txt")).toBe("C\nC is new\n");
      expect(await holderReport(run)).toMatch(/rc=[1-9]/);
    } finally {
      await end(run);
    }
  }, 120_000);
});
