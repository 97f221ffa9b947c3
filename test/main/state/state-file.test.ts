// The saved-state file: what a user sees when a state cannot be used (one reason each, the same
// whether it is read whole or checked a piece at a time), that it is private to the user, and
// that a save killed midway leaves the previous state whole.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { checkStateFile, emulatorBuild, readStateFile, StateError, writeStateFile, type NewState } from "../../../main/state/state-file.js";
import { compressState } from "../../../core/v86/state-codec.js";
import { machineIdentity } from "../../../core/guest/state-identity.js";
import type { LaunchMachine } from "../../../core/guest/launch-plan.js";

let dir: string;
let path: string;
let overlay: string;

const machine = (memory: number): LaunchMachine => ({
  memory,
  acpi: true,
  net: "virtio",
  firmware: { bios: { kind: "bytes", bytes: new Uint8Array(8) }, vgaBios: { kind: "bytes", bytes: new Uint8Array(4) } },
  media: { bzimage: { kind: "url", url: "x", size: 5000 }, hda: { kind: "served", size: 1 << 20 } },
});
const identity = (memory: number): string => machineIdentity(machine(memory), () => undefined);

function state(): NewState {
  return { emulator: emulatorBuild(), machine: identity(128), guest: "tiny", disks: { hda: { overlayLength: statSync(overlay).size } }, host: { p9: { fids: [1] } } };
}
const expected = (): Parameters<typeof readStateFile>[1] => ({ emulator: emulatorBuild(), machine: identity(128), disks: { hda: overlay } });

function why(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(StateError);
    return (error as Error).message;
  }
  return "no error";
}

/** Why the file cannot be used, as both readers say it (read whole, or checked a piece at a time): they agree. */
function whyBoth(expectation: ReturnType<typeof expected> | undefined = expected()): string {
  const reason = why(() => readStateFile(path, expectation));
  expect(why(() => checkStateFile(path, expectation))).toBe(reason);
  return reason;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unm-state-"));
  path = join(dir, "suspend.state");
  overlay = join(dir, "disk.overlay");
  writeFileSync(overlay, new Uint8Array(64));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("a saved state file", () => {
  it("reads back the payload and header it was written with, private to the user", async () => {
    const payload = await compressState(new Uint8Array(1 << 20).fill(7));
    const old = process.umask(0);
    try {
      writeStateFile(path, state(), payload);
    } finally {
      process.umask(old);
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const saved = readStateFile(path, expected());
    expect(Buffer.compare(saved.payload, payload)).toBe(0);
    expect(saved.header).toMatchObject({ format: 1, guest: "tiny", host: { p9: { fids: [1] } }, disks: { hda: { overlayLength: 64 } } });
    expect(existsSync(`${path}.partial`)).toBe(false);
  });

  it("gives one reason for each way it cannot be used", async () => {
    const payload = await compressState(new Uint8Array(64 * 1024).fill(1));
    writeStateFile(path, state(), payload);
    const good = readFileSync(path);

    const flipped = Buffer.from(good);
    flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 0xff;
    writeFileSync(path, flipped);
    expect(whyBoth()).toBe("damaged: its contents do not match their checksum");

    writeFileSync(path, good.subarray(0, good.length - 10));
    expect(whyBoth()).toMatch(/^damaged: \d+ bytes of state where \d+ were saved$/);
    writeFileSync(path, good.subarray(0, 20));
    expect(whyBoth()).toBe("damaged: its header is cut short");

    writeFileSync(path, Buffer.concat([Buffer.from("NOTSTATE"), good.subarray(8)]));
    expect(whyBoth()).toBe("not a saved state");

    writeFileSync(path, good);
    expect(whyBoth({ ...expected()!, emulator: "v86 0.0.0 0000000000000000" })).toBe("made by another emulator build");
    expect(whyBoth({ ...expected()!, machine: identity(256) })).toBe("made for another machine (128 MiB, now 256 MiB)");
    appendFileSync(overlay, new Uint8Array(512));
    expect(whyBoth()).toBe("its disk changed since it was saved");

    rmSync(path);
    mkdirSync(path);
    expect(whyBoth()).toBe("damaged: it is not a file");
  });

  it("is checked a piece at a time as it is read whole: a byte changed past the first MiB is found", async () => {
    const payload = await compressState(new Uint8Array(randomBytes(3 * 1024 * 1024)));
    expect(payload.length).toBeGreaterThan(2 * 1024 * 1024);
    writeStateFile(path, state(), payload);
    expect(checkStateFile(path, expected())).toEqual(readStateFile(path, expected()).header);
    const bytes = readFileSync(path);
    bytes[bytes.length - 1024 * 1024 - 7] = bytes[bytes.length - 1024 * 1024 - 7]! ^ 1;
    writeFileSync(path, bytes);
    expect(whyBoth()).toBe("damaged: its contents do not match their checksum");
  });

  it("is one whole state when two runs of the guest save it at the same time", async () => {
    const built = fileURLToPath(new URL("../../../dist/main/state/state-file.js", import.meta.url));
    expect(existsSync(built), "run npm run build first").toBe(true);
    const script = (n: number): string => `
      import { writeStateFile } from ${JSON.stringify(built)};
      const payload = new Uint8Array(2 * 1024 * 1024).fill(${n});
      payload.set([0x28, 0xb5, 0x2f, 0xfd]);
      for (let i = 0; i < 40; i++) writeStateFile(${JSON.stringify(path)}, ${JSON.stringify(state())}, payload);`;
    const run = (n: number): Promise<number | null> =>
      new Promise((done) => spawn(process.execPath, ["--input-type=module", "-e", script(n)], { stdio: ["ignore", "ignore", "inherit"] }).on("exit", done));
    expect(await Promise.all([run(1), run(2)])).toEqual([0, 0]);
    expect(readStateFile(path, expected()).payload.length).toBe(2 * 1024 * 1024);
    expect(readdirSync(dir).sort()).toEqual(["disk.overlay", "suspend.state"]);
  }, 30_000);

  it("is left whole when a save is killed midway", async () => {
    const built = fileURLToPath(new URL("../../../dist/main/state/state-file.js", import.meta.url));
    expect(existsSync(built), "run npm run build first").toBe(true);
    const first = await compressState(new Uint8Array(1 << 20).fill(3));
    writeStateFile(path, state(), first);
    // Each save: a 96 MiB payload (zstd's magic first, so it reads as a state), numbered.
    const script = `
      import { writeStateFile } from ${JSON.stringify(built)};
      const state = ${JSON.stringify(state())};
      for (let n = 1; ; n++) {
        const payload = new Uint8Array(96 * 1024 * 1024).fill(n);
        payload.set([0x28, 0xb5, 0x2f, 0xfd]);
        writeStateFile(${JSON.stringify(path)}, state, payload);
      }`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "inherit"] });
    const exited = new Promise((r) => child.on("exit", r));
    // Killed while a file in the folder is being written (longer than the first state, shorter than a whole new one).
    const big = 96 * 1024 * 1024;
    const writing = (): boolean => readdirSync(dir).some((name) => {
      const size = statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0;
      return name !== "disk.overlay" && size > first.length + 4096 && size < big;
    });
    const deadline = Date.now() + 20_000;
    while (!writing()) {
      if (Date.now() > deadline) throw new Error("no save was seen under way");
      await new Promise((r) => setImmediate(r));
    }
    child.kill("SIGKILL");
    await exited;
    const saved = readStateFile(path, expected());
    expect(saved.payload.length === first.length || saved.payload.length === big).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  }, 30_000);
});
