// An impatient user's Ctrl-C: pressed again while the run saves its guest, it does not cut
// the save short. The run ends with the shell's status for the signal and the next start
// resumes the state it saved.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");
let data: string;
let runtime: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  data = mkdtempSync(join(tmpdir(), "unm-interrupt-data-"));
  runtime = mkdtempSync(join(tmpdir(), "unm-interrupt-run-"));
  env = { ...process.env, UNMACHINE_DATA: data, XDG_RUNTIME_DIR: runtime };
});
afterAll(() => {
  rmSync(data, { recursive: true, force: true });
  rmSync(runtime, { recursive: true, force: true });
});

/** True once the run of tiny takes commands (its control socket is up): it is running. */
function listening(): boolean {
  return readdirSync(runtime, { recursive: true }).some((name) => String(name).endsWith("tiny.sock"));
}

describe("Ctrl-C pressed twice while a run of tiny saves it", () => {
  it("still saves it whole, and the next start resumes it", async () => {
    const child = spawn(process.execPath, [bin, "run", "tiny", "--headless"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<[number | null, string | null]>((done) => child.on("exit", (code, signal) => done([code, signal])));
    const deadline = Date.now() + 120_000;
    while (!listening()) {
      if (Date.now() > deadline) throw new Error(`tiny never ran: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGINT");
    expect(await exited).toEqual([130, null]);
    expect(existsSync(join(data, "guests", "tiny", "suspend.state"))).toBe(true);

    const next = spawnSync(process.execPath, [bin, "run", "tiny", "--headless", "--exec", "echo answered"], { encoding: "utf8", env, timeout: 170_000 });
    expect(next.stderr).toBe("");
    expect(next.stdout).toBe("answered\n");
  }, 300_000);
});
