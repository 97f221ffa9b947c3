// `unmachine balloon NAME MiB` and `unmachine run --cpu`, as a user types them: a bad value or
// a guest that is not running is one line and exit 2; a running guest's answer, refusal
// included, travels over its control socket and is printed as one line.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { controlDir, serveControl, type ControlGuest } from "../../../main/cli/control.js";
import { balloonRange } from "../../../core/v86/balloon.js";
import type { Disposable } from "../../../core/disposable.js";

const bin = resolve(import.meta.dirname, "../../../bin/unmachine.js");
const scratch = mkdtempSync(join(tmpdir(), "unmachine-resources-"));
const runtime = join(scratch, "run");
mkdirSync(runtime, { mode: 0o700 });

function unmachine(...args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, XDG_RUNTIME_DIR: runtime, UNMACHINE_DATA: join(scratch, "data"), UNMACHINE_CACHE: join(scratch, "cache") },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("exit", (status) => resolveRun({ status, stderr }));
  });
}

/** A running guest booted with 128 MiB whose balloon takes what its range allows. */
function ballooned(): ControlGuest & { memory: number } {
  const guest = {
    memory: 128,
    insert: async () => {},
    eject: async () => {},
    balloon: async (memory: number) => {
      const { min, max } = balloonRange(128);
      if (memory < min || memory > max) throw new Error(`memory must be a whole number of MiB from ${min} to ${max} (its boot RAM), got ${memory}`);
      guest.memory = memory;
      return memory;
    },
  };
  return guest;
}

describe("unmachine balloon", () => {
  const guest = ballooned();
  let control: { name: string } & Disposable;
  beforeAll(async () => {
    process.env.XDG_RUNTIME_DIR = runtime;
    control = await serveControl("tiny", guest, controlDir({ XDG_RUNTIME_DIR: runtime, UNMACHINE_DATA: join(scratch, "data") }));
  });
  afterAll(() => control.dispose());

  it("gives a running guest the RAM asked for, and says so in one line", async () => {
    const r = await unmachine("balloon", "tiny", "80");
    expect(r).toEqual({ status: 0, stderr: "tiny: the guest now has 80 MiB of RAM\n" });
    expect(guest.memory).toBe(80);
  });

  it("refuses a size out of the guest's range with the range, exit 2", async () => {
    const r = await unmachine("balloon", "tiny", "16");
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("unmachine: tiny: memory must be a whole number of MiB from 64 to 128 (its boot RAM), got 16\n");
    expect(guest.memory).toBe(80);
  });

  it("says which guests run when the one named does not, exit 2", async () => {
    const r = await unmachine("balloon", "dos", "64");
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('unmachine: no running guest named "dos" (running: tiny)\n');
  });

  it("refuses a size that is not a number, exit 2", async () => {
    const r = await unmachine("balloon", "tiny", "lots");
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('unmachine: the RAM must be a number, got "lots"\n');
  });
});

describe("unmachine run --cpu", () => {
  it("refuses a cap outside 1 to 100 percent in one line, exit 2", async () => {
    for (const value of ["0", "101", "2.5"]) {
      const r = await unmachine("run", "tiny", "--cpu", value, "--headless", "--until", "x");
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`unmachine: --cpu must be a whole percent from 1 to 100, got ${value}\n`);
    }
  });
});
