// The guest agent in the real tiny guest, over v86's virtio-console: hello, exec with exact
// bytes and exit status, the clipboard both ways, the display; and the CLI's --exec using it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { tinyPlan } from "../support/guests.js";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { AgentSession, pipeTransport } from "../../core/agent/session.js";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");

describe("the agent in tiny", () => {
  let guest: HeadlessGuest;
  let agent: AgentSession | undefined;

  beforeAll(async () => {
    guest = new HeadlessGuest(tinyPlan(), { services: { agent: (pipe) => (agent = new AgentSession(pipeTransport(pipe))) } });
    await guest.waitForShell(120_000);
    await agent!.whenReady(30_000);
  });
  afterAll(async () => {
    await guest.stop();
    guest.dispose();
  });

  it("says hello with the guest's system", () => {
    expect(agent!.info).toMatchObject({ os: "Linux", machine: "i686", hostname: "tiny" });
    expect(agent!.info!.capabilities).toEqual(expect.arrayContaining(["exec", "clipboard"]));
  });

  it("runs a command and returns its exact bytes and exit status", async () => {
    const outcome = await agent!.exec("printf 'a\\r\\nb'; echo err >&2; exit 3");
    expect(outcome.output).toBe("a\r\nberr\n");
    expect(outcome.status).toBe(3);
    expect(await agent!.ping()).toBeGreaterThanOrEqual(0);
  });

  it("starts a command as a program expects: stdin empty, a session of its own, no signal blocked or ignored", async () => {
    // /proc/PID/stat's sixth field is the session: the shell leads its own. SigBlk and SigIgn, as
    // the command's programs see them (sed's own): the agent ignores SIGPIPE, and its shell
    // started it with SIGINT and SIGQUIT ignored; a program gets every signal at its default (1
    // to 31: the C library's own above those are its business).
    const outcome = await agent!.exec("cat; sed -n 's/^Sig\\(Blk\\|Ign\\):\t//p' /proc/self/status; set -- $(cat /proc/$$/stat); [ \"$6\" = $$ ] && echo own-session");
    // (sed not last: busybox's sh runs a command's last program in its own place, with the SIGQUIT it ignores itself.)
    const [blocked, ignored, session] = outcome.output.split("\n");
    expect(session).toBe("own-session");
    expect(BigInt(`0x${blocked}`) & 0x7fffffffn).toBe(0n);
    expect(BigInt(`0x${ignored}`) & 0x7fffffffn).toBe(0n);
    expect(outcome.status).toBe(0);
  });

  it("stops a command that outlives its time, and what it started", async () => {
    const outcome = await agent!.exec("sleep 300 & echo started; wait", { timeoutMs: 2_000 });
    expect(outcome).toMatchObject({ timedOut: true, output: "started\n" });
    // The whole session was killed: no sleep is left in the guest.
    expect((await agent!.exec("ps | grep -c '[s]leep 300'")).output).toBe("0\n");
  });

  it("says why when the guest cannot start the shell", async () => {
    // No /bin/sh for a moment: the exec request is answered with an error that names it, and the agent goes on.
    const moved = await agent!.exec("mv /bin/sh /bin/sh.away && echo moved");
    expect(moved.output).toBe("moved\n");
    try {
      await expect(agent!.exec("echo never")).rejects.toThrow(/cannot start \/bin\/sh in the guest/);
    } finally {
      await guest.exec("mv /bin/sh.away /bin/sh", 30_000);
    }
    expect((await agent!.exec("echo back")).output).toBe("back\n");
  });

  it("carries the clipboard both ways", async () => {
    agent!.setClipboard("from the host ✓");
    await expect.poll(async () => (await agent!.exec("cat /run/unmachine/clipboard")).output, { timeout: 10_000 }).toBe("from the host ✓");
    const changed = new Promise<string>((r) => agent!.onClipboard((text) => r(text)));
    await agent!.exec("printf 'copied in the guest' > /run/unmachine/clipboard");
    expect(await changed).toBe("copied in the guest");
  });
});

describe("unmachine run tiny --exec", () => {
  it("goes through the agent: bytes arrive exactly as the command wrote them", () => {
    const r = spawnSync(process.execPath, [bin, "run", "tiny", "--headless", "--exec", "printf 'line\\r\\nend'"], { encoding: "utf8", timeout: 150_000 });
    expect(r.stdout).toBe("line\r\nend");
    expect(r.status).toBe(0);
  });
});

describe("the agent on COM2, for guests without virtio", () => {
  it("says hello and runs commands over the second serial port", async () => {

    let agent: AgentSession | undefined;
    const guest = new HeadlessGuest(tinyPlan({ net: false, agentPort: "com2" }), { services: { agent: (pipe) => (agent = new AgentSession(pipeTransport(pipe))) } });
    try {
      await guest.waitForShell(120_000);
      await agent!.whenReady(30_000);
      expect((await guest.exec("ls /dev/hvc0 2>&1; ps | grep -c '[u]magent /dev/ttyS1'", 30_000)).output).toMatch(/No such file or directory\n1\n/);
      expect(await agent!.exec("echo over-com2; exit 4")).toMatchObject({ output: "over-com2\n", status: 4 });
      // A guest set to have no network has no card at all (and so never waits for DHCP).
      expect((await guest.exec("ls /sys/class/net", 30_000)).output).toBe("lo\n");
      expect(guest.transcript).not.toContain("no DHCP answer");
    } finally {
      await guest.stop();
      guest.dispose();
    }
  });
});
