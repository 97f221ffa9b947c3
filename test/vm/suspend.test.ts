// Suspend and resume of the tiny guest through the CLI, as a user runs it: every end of a run
// saves the guest, the next run resumes it (the same boot: its boot id, a file in /tmp and a
// background process are still there), snapshots bring back a file's earlier content, a damaged
// state gives one line and a cold boot that answers, and --cold boots cold.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { advisedBytes, hostGivesHugePages } from "../support/huge-pages.js";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");
let data: string;
let runtime: string;
let env: NodeJS.ProcessEnv;
const state = (): string => join(data, "guests", "tiny", "suspend.state");

function unmachine(args: string[], timeoutMs = 170_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: timeoutMs, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const exec = (command: string, ...flags: string[]) => unmachine(["run", "tiny", "--headless", ...flags, "--exec", command]);
const BOOT_ID = "cat /proc/sys/kernel/random/boot_id";

beforeAll(() => {
  data = mkdtempSync(join(tmpdir(), "unm-suspend-data-"));
  // Its own control folder: another run named tiny elsewhere is never the one told to suspend.
  runtime = mkdtempSync(join(tmpdir(), "unm-suspend-run-"));
  env = { ...process.env, UNMACHINE_DATA: data, XDG_RUNTIME_DIR: runtime };
});
afterAll(() => {
  rmSync(data, { recursive: true, force: true });
  rmSync(runtime, { recursive: true, force: true });
});

describe("a library guest's run ends suspended and the next one resumes it", () => {
  let bootId = "";

  it("keeps a file in /tmp and a background process across suspend and resume", () => {
    const first = exec(`echo kept > /tmp/mark; (while true; do sleep 1; done) >/dev/null 2>&1 & echo $! > /tmp/pid; ${BOOT_ID}`, "--cold");
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    bootId = first.stdout.trim();
    expect(bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(statSync(state()).mode & 0o777).toBe(0o600);
    expect(unmachine(["list"]).stdout).toMatch(/^tiny\s.*\ssuspended\s/m);

    const second = exec(`cat /tmp/mark; kill -0 $(cat /tmp/pid) && echo alive; ${BOOT_ID}`);
    expect(second.stderr).toBe("");
    // The same boot: a resume, not a second boot that happened to find the file.
    expect(second.stdout).toBe(`kept\nalive\n${bootId}\n`);
    expect(second.status).toBe(0);
    // The resumed shell redraws its prompt for whoever waits for it.
    const until = unmachine(["run", "tiny", "--headless", "--until", "tiny:/# ", "--timeout", "60"]);
    expect(until.stdout).toBe("tiny:/# \n");
    expect(until.status).toBe(0);
  });

  it("brings back a file's earlier content from a snapshot", () => {
    expect(unmachine(["snapshot", "tiny", "save", "before"]).status).toBe(0);
    expect(exec("echo changed > /tmp/mark; cat /tmp/mark").stdout).toBe("changed\n");
    expect(unmachine(["snapshot", "tiny"]).stdout).toMatch(/^before\s+\d{4}-/m);
    const restored = unmachine(["snapshot", "tiny", "restore", "before"]);
    expect(restored.stderr).toBe('tiny: snapshot "before" restored; the next start resumes it\n');
    expect(exec(`cat /tmp/mark; ${BOOT_ID}`).stdout).toBe(`kept\n${bootId}\n`);
    expect(unmachine(["snapshot", "tiny", "rm", "before"]).status).toBe(0);
    expect(unmachine(["snapshot", "tiny"]).stdout).toBe("");
  });

  it("is suspended by `unmachine suspend` and snapshotted while it runs", async () => {
    const child = spawn(process.execPath, [bin, "run", "tiny", "--headless"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    const deadline = Date.now() + 60_000;
    while (!/^running: tiny$/m.test(unmachine(["list"]).stdout)) {
      if (Date.now() > deadline) throw new Error(`the run never took commands: ${stderr}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    // Resumed into RAM marked for huge pages (main/native/huge-pages.ts) where the host gives them: tiny's 128 MiB at least.
    if (hostGivesHugePages) expect(advisedBytes(child.pid!)).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    const snap = unmachine(["snapshot", "tiny", "save", "live"]);
    expect(snap.stderr).toBe('tiny: snapshot "live" saved\n');
    const suspended = unmachine(["suspend", "tiny"]);
    expect(suspended.stderr).toBe("tiny: suspended\n");
    expect(await exited).toBe(0);
    expect(stderr).toBe("");
    expect(existsSync(state())).toBe(true);
    expect(exec(`cat /tmp/mark; ${BOOT_ID}`).stdout).toBe(`kept\n${bootId}\n`);
  });

  it("sends a resumed guest's command to its agent at once; an agent that no longer answers is said so in one line, and the shell takes the next command", async () => {
    // The agent said hello in this run; then it is stopped from the serial console, unknown to
    // the host, and the guest is suspended with it stopped.
    const child = spawn(process.execPath, [bin, "run", "tiny", "--pty"], { env, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      const path = await new Promise<string>((resolvePath, reject) => {
        child.stdout.once("data", (d: Buffer) => resolvePath(d.toString().trim()));
        child.once("exit", (code) => reject(new Error(`exited ${code}`)));
      });
      const reader = createReadStream(path);
      const writer = createWriteStream(path);
      let seen = "";
      reader.on("data", (d) => (seen += d.toString()));
      reader.on("error", () => {});
      writer.on("error", () => {});
      await expect.poll(() => seen, { timeout: 60_000, interval: 200 }).toMatch(/tiny:\/# /);
      await new Promise((r) => setTimeout(r, 2000)); // its agent says hello again
      writer.write("kill -STOP $(pidof umagent) && echo agent-$((6*7))-stopped\r");
      await expect.poll(() => seen, { timeout: 30_000, interval: 200 }).toContain("agent-42-stopped");
      expect(unmachine(["suspend", "tiny"]).stderr).toBe("tiny: suspended\n");
      reader.destroy();
      writer.destroy();
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);

    const stopped = exec("echo never-answered");
    expect(stopped.stderr).toBe(
      "unmachine: tiny: its agent did not answer within 2 s of the resume; the command was sent to it and may yet run, so it is not run again on the serial console\n",
    );
    expect(stopped.status).toBe(1);
    // That run kept no agent of its own: the next one waits for a hello, then takes the shell.
    const shell = exec("kill -CONT $(pidof umagent); echo agent-$((6*7))-back");
    expect(shell.stdout).toBe("agent-42-back\n");
    expect(shell.status).toBe(0);
    const agent = exec(`printf 'through\\tthe agent'`);
    expect(agent.stdout).toBe("through\tthe agent");
    expect(agent.status).toBe(0);
  });

  it("sets a damaged state aside with one line and boots cold, answering", () => {
    const bytes = readFileSync(state());
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    writeFileSync(state(), bytes);
    const r = exec(`echo answered; ${BOOT_ID}`);
    expect(r.stderr).toBe("unmachine: tiny: its saved state cannot be used (damaged: its contents do not match their checksum); it starts cold\n");
    expect(r.status).toBe(0);
    const [answered, id] = r.stdout.trim().split("\n");
    expect(answered).toBe("answered");
    expect(id).not.toBe(bootId);
    expect(existsSync(`${state()}.unusable`)).toBe(true);
    bootId = id!;
  });

  it("sets aside a state the emulator cannot restore (whole and checksummed, but not a machine's) and boots cold, answering", async () => {
    // Made as a save makes one: this run's header, a compressed payload, its checksum; inside, noise.
    const { decodeStateFile, encodeStateFile } = await import("../../dist/main/state/state-file.js");
    const { compressState } = await import("../../dist/core/v86/state-codec.js");
    const { header } = decodeStateFile(readFileSync(state()));
    const noise = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
    const payload = await compressState(noise);
    const forged = { ...header, payloadLength: payload.length, payloadSha256: createHash("sha256").update(payload).digest("hex") };
    writeFileSync(state(), encodeStateFile(forged, payload));
    const r = exec(`echo answered; ${BOOT_ID}`);
    expect(r.stderr).toMatch(/^unmachine: tiny: its saved state cannot be used \(the emulator could not restore it: .+\); it starts cold\n$/);
    expect(r.status).toBe(0);
    const [answered, id] = r.stdout.trim().split("\n");
    expect(answered).toBe("answered");
    expect(id).not.toBe(bootId);
    expect(readFileSync(`${state()}.unusable`).length).toBe(encodeStateFile(forged, payload).length);
    bootId = id!;
  });

  it("boots cold with --cold, and powers off with `unmachine poweroff`", () => {
    expect(existsSync(state())).toBe(true);
    const r = exec(`cat /tmp/mark 2>/dev/null || echo no-mark; ${BOOT_ID}`, "--cold");
    expect(r.stderr).toBe("");
    const [mark, id] = r.stdout.trim().split("\n");
    expect(mark).toBe("no-mark");
    expect(id).not.toBe(bootId);
    const off = unmachine(["poweroff", "tiny"]);
    expect(off.stderr).toBe("tiny: powered off (its saved state was discarded)\n");
    expect(existsSync(state())).toBe(false);
    expect(unmachine(["list"]).stdout).toMatch(/^tiny\s.*\sready\s/m);
  });

  it("keeps no state of a guest stopped before its prompt (it would not answer when resumed)", () => {
    const r = unmachine(["run", "tiny", "--cold", "--headless", "--until", "words the guest never prints", "--timeout", "3"]);
    expect(r.status).toBe(1);
    expect(existsSync(state())).toBe(false);
  });
});
