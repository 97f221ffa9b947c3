// Saved states found in a guest's folder are untrusted: a header crafted to break the host, a
// state saved for another guest, symlinks and links planted where states are written. Each is
// set aside or refused with one line; nothing crashes and no write lands outside the folder.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { emulatorBuild, encodeStateFile, stateHeader, writeStateFile, type NewState, type StateHeader } from "../../../main/state/state-file.js";
import { GuestStates } from "../../../main/state/guest-states.js";
import { compressState } from "../../../core/v86/state-codec.js";

let data: string;
let payload: Uint8Array;
const expected = { emulator: "", machine: "machine-of-tiny", disks: {} };

function newState(guest = "tiny"): NewState {
  return { emulator: emulatorBuild(), machine: "machine-of-tiny", guest, disks: {} };
}

/** Plants a state file whose header is `header` with `change` applied (its payload stays valid). */
function plant(path: string, change: (header: Record<string, unknown>) => void): void {
  const header = stateHeader(newState(), payload) as unknown as Record<string, unknown>;
  change(header);
  writeFileSync(path, encodeStateFile(header as unknown as StateHeader, payload));
}

beforeEach(async () => {
  data = mkdtempSync(join(tmpdir(), "unm-untrusted-"));
  payload = await compressState(new Uint8Array(4096).fill(3));
  expected.emulator = emulatorBuild();
});
afterEach(() => rmSync(data, { recursive: true, force: true }));

describe("a crafted state in a guest's folder", () => {
  const crafted: [string, (h: Record<string, unknown>) => void][] = [
    ["a disk named __proto__", (h) => (h.disks = JSON.parse('{"__proto__": {"overlayLength": 0}}') as unknown)],
    ["a disk named toString", (h) => (h.disks = { toString: { overlayLength: 0 } })],
    ["a saved time no clock has", (h) => (h.savedAt = 1e300)],
    ["a saved time that is not a number", (h) => (h.savedAt = "yesterday")],
  ];
  for (const [what, change] of crafted) {
    it(`with ${what} is set aside with one line, and the guest starts cold`, () => {
      const states = GuestStates.of("tiny", data);
      mkdirSync(states.folder, { recursive: true });
      plant(states.suspendPath, change);
      const lines: string[] = [];
      expect(states.load(expected, (line) => lines.push(line))).toBeUndefined();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^tiny: its saved state cannot be used \(damaged: .*\); it starts cold$/);
      expect(readdirSync(states.folder)).toEqual(["suspend.state.unusable"]);
    });
  }

  const machines: [string, string][] = [
    ["null", "null"],
    ["a list", "[1,2]"],
    ["nested deeper than any machine", `{"media":${"[".repeat(20000)}${"]".repeat(20000)}}`],
    ["a very long value", `{"cmdline":${JSON.stringify("x".repeat(100_000))}}`],
  ];
  for (const [what, machine] of machines) {
    it(`made for a machine that is ${what} is set aside with one short line`, () => {
      const states = GuestStates.of("tiny", data);
      mkdirSync(states.folder, { recursive: true });
      plant(states.suspendPath, (h) => (h.machine = machine));
      const lines: string[] = [];
      expect(states.load({ ...expected, machine: '{"cmdline":"console=ttyS0","memory":128}' }, (line) => lines.push(line))).toBeUndefined();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^tiny: its saved state cannot be used \(made for another machine \(.*\)\); it starts cold$/);
      expect(lines[0]!.length).toBeLessThan(400);
    });
  }

  it("listed as a snapshot, shows as unreadable rather than a time no clock has", () => {
    const states = GuestStates.of("tiny", data);
    mkdirSync(join(states.folder, "snapshots"), { recursive: true });
    plant(join(states.folder, "snapshots", "odd.state"), (h) => (h.savedAt = 1e300));
    const [odd] = states.snapshots();
    expect(odd?.tag).toBe("odd");
    expect(() => new Date(odd!.savedAt).toISOString()).not.toThrow();
  });

  it("saved for another guest is not resumed by this one", () => {
    const other = GuestStates.of("other", data);
    other.save(newState("other"), payload);
    const tiny = GuestStates.of("tiny", data);
    mkdirSync(tiny.folder, { recursive: true });
    writeFileSync(tiny.suspendPath, readFileSync(other.suspendPath));
    const lines: string[] = [];
    expect(tiny.load(expected, (line) => lines.push(line))).toBeUndefined();
    expect(lines).toEqual(['tiny: its saved state cannot be used (saved for guest "other"); it starts cold']);
    // Its own state still resumes.
    expect(other.load(expected, () => undefined)?.from).toBe("suspend");
  });
});

describe("something other than a file where the state should be", () => {
  const cases: [string, (path: string) => void][] = [
    ["a named pipe", (path) => execFileSync("mkfifo", [path])],
    ["a link to an endless device", (path) => symlinkSync("/dev/zero", path)],
  ];
  for (const [what, make] of cases) {
    it(`${what} is set aside with one line at once, never waited on`, () => {
      const built = fileURLToPath(new URL("../../../dist/main/state/guest-states.js", import.meta.url));
      expect(existsSync(built), "run npm run build first").toBe(true);
      const states = GuestStates.of("tiny", data);
      mkdirSync(states.folder, { recursive: true });
      make(states.suspendPath);
      // In a process of its own: a read that blocks would block this one for good.
      const script = `
        import { GuestStates } from ${JSON.stringify(built)};
        const loaded = GuestStates.of("tiny", ${JSON.stringify(data)}).load(${JSON.stringify(expected)}, (line) => console.log(line));
        console.log(loaded === undefined ? "cold" : "resumed");`;
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 10_000 });
      expect(r.stdout).toBe("tiny: its saved state cannot be used (damaged: it is not a file); it starts cold\ncold\n");
      expect(readdirSync(states.folder)).toEqual(["suspend.state.unusable"]);
    });
  }
});

describe("a snapshot whose copy of the disk is a named pipe", () => {
  it("is refused at once, the guest's disk changes as they were", () => {
    const built = fileURLToPath(new URL("../../../dist/main/state/guest-states.js", import.meta.url));
    const states = GuestStates.of("tiny", data);
    states.save(newState(), payload);
    states.snapshotSuspended("piped", {});
    execFileSync("mkfifo", [join(states.folder, "snapshots", "piped.hda.overlay")]);
    const overlay = join(data, "tiny.overlay");
    writeFileSync(overlay, "my disk");
    const script = `
      import { GuestStates } from ${JSON.stringify(built)};
      try {
        GuestStates.of("tiny", ${JSON.stringify(data)}).restoreSnapshot("piped", { hda: ${JSON.stringify(overlay)} });
      } catch (error) {
        console.log(error.message);
      }`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 10_000 });
    expect(r.stdout).toBe('tiny: snapshot "piped" cannot be used (its copy of hda is not a file)\n');
    expect(readFileSync(overlay, "utf8")).toBe("my disk");
  });
});

describe("a snapshot of a suspended guest whose state is a named pipe", () => {
  it("is refused at once, nothing kept", () => {
    const built = fileURLToPath(new URL("../../../dist/main/state/guest-states.js", import.meta.url));
    const states = GuestStates.of("tiny", data);
    mkdirSync(states.folder, { recursive: true });
    execFileSync("mkfifo", [states.suspendPath]);
    const script = `
      import { GuestStates } from ${JSON.stringify(built)};
      try {
        GuestStates.of("tiny", ${JSON.stringify(data)}).snapshotSuspended("kept", {});
      } catch (error) {
        console.log(error.message);
      }`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 10_000 });
    expect(r.stdout).toBe("tiny: its saved state cannot be kept (damaged: it is not a file)\n");
    expect(states.snapshots()).toEqual([]);
  });
});

describe("a snapshot copied from another guest's folder", () => {
  it("is not restored: this guest's disk changes and state stay as they were", () => {
    const other = GuestStates.of("other", data);
    other.save(newState("other"), payload);
    other.snapshotSuspended("theirs", {});
    const tiny = GuestStates.of("tiny", data);
    tiny.save(newState("tiny"), payload);
    const mine = readFileSync(tiny.suspendPath);
    mkdirSync(join(tiny.folder, "snapshots"));
    writeFileSync(join(tiny.folder, "snapshots", "theirs.state"), readFileSync(join(other.folder, "snapshots", "theirs.state")));
    writeFileSync(join(tiny.folder, "snapshots", "theirs.hda.overlay"), "their disk");
    const overlay = join(data, "tiny.overlay");
    writeFileSync(overlay, "my disk");
    expect(() => tiny.restoreSnapshot("theirs", { hda: overlay })).toThrow('tiny: snapshot "theirs" cannot be used (saved for guest "other")');
    expect(readFileSync(overlay, "utf8")).toBe("my disk");
    expect(readFileSync(tiny.suspendPath)).toEqual(mine);
  });
});

describe("links planted where states are written", () => {
  it("a snapshots folder that is a symlink elsewhere is refused, nothing written there", () => {
    const states = GuestStates.of("tiny", data);
    const elsewhere = join(data, "elsewhere");
    mkdirSync(elsewhere);
    mkdirSync(states.folder, { recursive: true });
    symlinkSync(elsewhere, join(states.folder, "snapshots"));
    expect(() => states.saveSnapshot("one", newState(), payload, {})).toThrow(/snapshots.* is a symlink/);
    states.save(newState(), payload);
    expect(() => states.snapshotSuspended("two", {})).toThrow(/snapshots.* is a symlink/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it("a file in place of the snapshots folder is told in one line", () => {
    const states = GuestStates.of("tiny", data);
    mkdirSync(states.folder, { recursive: true });
    writeFileSync(join(states.folder, "snapshots"), "not a folder");
    expect(() => states.saveSnapshot("one", newState(), payload, {})).toThrow(/snapshots is not a folder; states are kept only in a folder of their own/);
  });

  it("a guest folder that is a symlink elsewhere is refused, nothing written there", () => {
    const elsewhere = join(data, "elsewhere");
    mkdirSync(elsewhere);
    mkdirSync(join(data, "guests"));
    symlinkSync(elsewhere, join(data, "guests", "tiny"));
    const states = GuestStates.of("tiny", data);
    expect(() => states.save(newState(), payload)).toThrow(/tiny.* is a symlink/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it("a file linked in place of the save's file aside keeps its content", () => {
    const victim = join(data, "victim.txt");
    writeFileSync(victim, "the user's own file\n");
    const path = join(data, "suspend.state");
    // Where a killed save of an older build, and where this process, writes aside.
    linkSync(victim, `${path}.partial`);
    linkSync(victim, `${path}.${process.pid}.partial`);
    writeStateFile(path, newState(), payload);
    expect(readFileSync(victim, "utf8")).toBe("the user's own file\n");
  });
});
