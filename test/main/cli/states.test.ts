// A guest's saved states from the command line, run as a user runs it (node bin/unmachine.js,
// built): a snapshot is neither restored nor kept while another process (a shell's tab) has the
// guest's disk open, and a stopped guest with nothing saved is told so in one line.

import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildFatImage, materialize } from "../../../core/fat/image.js";
import { fileFromBytes } from "../../../core/fat/tree.js";
import { GuestStates } from "../../../main/state/guest-states.js";
import { emulatorBuild } from "../../../main/state/state-file.js";
import { compressState } from "../../../core/v86/state-codec.js";

const bin = resolve(import.meta.dirname, "../../../bin/unmachine.js");
const scratch = mkdtempSync(join(tmpdir(), "unmachine-states-"));

function unmachine(data: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, UNMACHINE_DATA: data }, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function dosDisk(name: string): string {
  const image = materialize(buildFatImage([fileFromBytes("COMMAND.COM", new TextEncoder().encode("cmd"), Date.UTC(1994, 0, 1))]));
  const path = join(scratch, name);
  writeFileSync(path, image);
  return path;
}

describe("unmachine snapshot of a guest whose disk another process has open", () => {
  it("refuses to restore or keep one, in one line, leaving its disk's changes as they were", async () => {
    const data = join(mkdtempSync(join(scratch, "home-")), "data");
    expect(unmachine(data, "add", dosDisk("held.img"), "--name", "held").status).toBe(0);
    const folder = join(data, "guests", "held");
    const overlay = join(folder, "hda.overlay");
    writeFileSync(overlay, "the changes of the run under way");
    // A snapshot kept earlier, with its own copy of the disk's changes.
    const states = GuestStates.of("held", data);
    const payload = await compressState(new Uint8Array(4096));
    states.save({ emulator: emulatorBuild(), machine: "m", guest: "held", disks: {} }, payload);
    writeFileSync(join(folder, "older.overlay"), "older changes");
    states.snapshotSuspended("older", { hda: join(folder, "older.overlay") });
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
    try {
      writeFileSync(`${overlay}.lock`, `${holder.pid}\n`);
      for (const args of [["restore", "older"], ["save", "newer"]]) {
        const r = unmachine(data, "snapshot", "held", ...args);
        expect(r.status).toBe(2);
        expect(r.stderr.trim()).toBe(`unmachine: held is running (process ${holder.pid}); stop it first`);
      }
      expect(readFileSync(overlay, "utf8")).toBe("the changes of the run under way");
      expect(unmachine(data, "snapshot", "held").stdout).not.toMatch(/newer/);
    } finally {
      const gone = new Promise((done) => holder.once("exit", done));
      holder.kill("SIGKILL");
      await gone;
    }
  });
});

describe("unmachine poweroff of a stopped guest", () => {
  it("with nothing saved says so in one line, exit 0", () => {
    const data = join(mkdtempSync(join(scratch, "home-")), "data");
    const r = unmachine(data, "poweroff", "tiny");
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("tiny is off already (it has no saved state)\n");
  });
});
