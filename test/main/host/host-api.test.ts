// The page's library commands on the host (main/host/host-api.ts): a dropped file added by its
// path in Electron (never in a browser tab, which uploads), its hard disk planned as a served
// disk, settings and profile edits, remove/reset with the same refusals as the CLI, and export
// through the shell's save dialog (Electron; a browser tab downloads instead).
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { OverlayDisk } from "../../../main/disk/overlay.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHostApi } from "../../../main/host/host-api.js";
import { HostSessions } from "../../../main/host/sessions.js";
import { registerHostServices } from "../../../main/host/services.js";
import { pageStates } from "../../../main/host/page-states.js";
import { fixture } from "../../support/web-shell.js";
import { buildFatImage, materialize } from "../../../core/fat/image.js";
import { fileFromBytes } from "../../../core/fat/tree.js";
import type { HostInfo } from "../../../core/ipc/contract.js";

function api(shell: HostInfo["shell"], pickSaveFile?: (suggested: string) => Promise<string | null>) {
  const { library, dataDir } = fixture();
  const sessions = new HostSessions(mkdtempSync(join(tmpdir(), "unmachine-logs-")));
  const handlers = createHostApi({
    library,
    sessions,
    settings: library.settings,
    services: registerHostServices(sessions),
    states: pageStates(dataDir, library),
    shell,
    pickSaveFile,
    urls: { media: (guest, role) => `/media/${guest}/${role}`, firmware: (which) => `/firmware/${which}`, state: (guest) => `/state/${guest}` },
  });
  return { handlers, dataDir, sessions };
}

function dosDisk(): string {
  const path = join(mkdtempSync(join(tmpdir(), "unmachine-img-")), "Games Disk.img");
  writeFileSync(path, materialize(buildFatImage([fileFromBytes("IO.SYS", new Uint8Array(4), 0), fileFromBytes("COMMAND.COM", new Uint8Array(4), 0)])));
  return path;
}

describe("the host's library commands", () => {
  it("adds a dropped file by its path in Electron, and plans its hard disk as served from image and overlay", async () => {
    const { handlers, dataDir } = api("electron");
    const image = dosDisk();
    const added = await handlers["library:add"](image);
    expect(added).toMatchObject({ name: "games-disk", family: "dos", builtIn: false, memory: 64, diskUsed: 0, ready: true });
    const plan = await handlers["guests:plan"]("games-disk", 0);
    expect(plan.machine.media.hda).toEqual({ kind: "served", size: added.diskSize });
    expect(plan.services.disks?.hda).toEqual({ base: image, overlay: join(dataDir, "guests", "games-disk", "hda.overlay"), size: added.diskSize });
    expect((await handlers["guests:list"]()).map((g) => g.name)).toEqual(["demo", "games-disk"]);
  });

  it("refuses an added path in a browser tab (the page uploads there)", async () => {
    const { handlers } = api("web");
    expect(() => handlers["library:add"](dosDisk())).toThrow(/in a browser tab, a dropped image is uploaded/);
  });

  it("edits, resets and removes as the CLI does", async () => {
    const { handlers, dataDir } = api("electron");
    const { name } = await handlers["library:add"](dosDisk());
    expect(await handlers["library:set"](name, "memory", "48")).toMatchObject({ memory: 48 });
    expect(await handlers["library:set"](name, "family", "win3x")).toMatchObject({ family: "win3x" });
    expect(() => handlers["library:set"](name, "colour", "blue")).toThrow(/unknown key "colour"/);
    expect(() => handlers["library:set"]("demo", "title", "Mine")).toThrow(/built-in guest/);
    writeFileSync(join(dataDir, "guests", name, "hda.overlay"), "changed");
    expect((await handlers["guests:list"]()).find((g) => g.name === name)?.diskUsed).toBe(7);
    expect(() => handlers["library:remove"](name, false)).toThrow(/has changes to its disk/);
    expect(await handlers["library:reset"](name)).toMatchObject({ diskUsed: 0 });
    await handlers["library:remove"](name, false);
    expect((await handlers["guests:list"]()).map((g) => g.name)).toEqual(["demo"]);
    expect(() => handlers["library:remove"]("demo", true)).toThrow(/built-in guest; it cannot be removed/);
  });

  it("refuses to open a session for a guest whose disk another process (a CLI run) has open", async () => {
    const electron = api("electron");
    const added = await electron.handlers["library:add"](dosDisk());
    await electron.handlers["guests:plan"](added.name, 0);
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
    try {
      writeFileSync(join(electron.dataDir, "guests", added.name, "hda.overlay.lock"), `${holder.pid}\n`);
      expect(() => electron.handlers["sessions:open"](added.name)).toThrow(`guest "${added.name}" is already running in another Unmachine (process ${holder.pid}); stop it there first`);
    } finally {
      const gone = new Promise((done) => holder.once("exit", done));
      holder.kill("SIGKILL");
      await gone;
    }
    expect(electron.handlers["sessions:open"](added.name)).toMatchObject({ guest: added.name });
  });

  it("never shrinks a grown disk for what a page sends (the guest's partitions would reach past its end)", async () => {
    const { handlers } = api("electron");
    const { name } = await handlers["library:add"](dosDisk());
    const saved = await handlers["settings:get"](name);
    expect((await handlers["settings:set"](name, { ...saved, diskMiB: 100 })).diskMiB).toBe(100);
    expect(() => handlers["settings:set"](name, { ...saved, diskMiB: 50 })).toThrow(`disk: a disk may only grow; ${name}'s is 100 MiB, got 50`);
    // Settings sent without the disk's size keep it.
    const rest = { ...saved };
    delete rest.diskMiB;
    expect((await handlers["settings:set"](name, rest)).diskMiB).toBe(100);
    expect((await handlers["settings:get"](name)).diskMiB).toBe(100);
  });

  it("exports a user guest's disk with its changes where the save dialog says, and nothing when cancelled or running", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "unmachine-out-")), "saved.img");
    let answer: string | null = null;
    const asked: string[] = [];
    const { handlers, dataDir, sessions } = api("electron", async (suggested) => {
      asked.push(suggested);
      return answer;
    });
    const image = dosDisk();
    const before = readFileSync(image);
    const { name } = await handlers["library:add"](image);
    const disk = new OverlayDisk(image, join(dataDir, "guests", name, "hda.overlay"));
    disk.write(4096, new Uint8Array(512).fill(0x5a));
    disk.close();

    expect(await handlers["library:export"](name)).toBeNull();
    expect(existsSync(out)).toBe(false);
    answer = out;
    expect(await handlers["library:export"](name)).toBe(out);
    expect(asked).toEqual(["games-disk.img", "games-disk.img"]);
    const written = readFileSync(out);
    expect(written.subarray(4096, 4608).every((b) => b === 0x5a)).toBe(true);
    expect(written.length).toBe(before.length);
    expect(written.subarray(0, 4096).equals(before.subarray(0, 4096)) && written.subarray(4608).equals(before.subarray(4608))).toBe(true);
    expect(readFileSync(image).equals(before)).toBe(true);

    const session = sessions.open(name);
    sessions.report(session.id, "running", "");
    await expect(handlers["library:export"](name)).rejects.toThrow(/games-disk is running; stop it first/);
    await expect(handlers["library:export"]("demo")).rejects.toThrow(/built-in guest; it cannot be exported/);
    expect(asked).toHaveLength(2);
    sessions.dispose();
  });

  it("refuses the export command in a browser tab (the page downloads there)", async () => {
    const { handlers } = api("web");
    await expect(handlers["library:export"]("demo")).rejects.toThrow(/in a browser tab, a guest's disk is exported as a download/);
  });
});
