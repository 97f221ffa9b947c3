// Settings on disk: saved atomically and privately, read back, share folders checked, a broken
// file named, and temporary files of a killed save cleared away.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SettingsStore } from "../../../main/guests/settings-store.js";

function fresh(): { store: SettingsStore; data: string; share: string } {
  const root = mkdtempSync(join(tmpdir(), "unmachine-settings-"));
  const share = join(root, "shared");
  mkdirSync(share);
  return { store: new SettingsStore(join(root, "data")), data: join(root, "data"), share };
}

describe("SettingsStore", () => {
  it("gives defaults for a guest never configured, and reads back what was saved", () => {
    const { store, share } = fresh();
    expect(store.load("tiny")).toEqual({ shares: [], forwards: [], allowHost: false, clipboard: false });
    const saved = store.save("tiny", { shares: [{ hostPath: share, tag: "work", readOnly: true, quotaMiB: 10 }], forwards: [{ hostPort: 2222, guestPort: 22 }], allowHost: true, clipboard: false });
    expect(new SettingsStore(join(share, "..", "data")).load("tiny")).toEqual(saved);
  });

  it("leaves no temporary file behind", () => {
    const { store, data } = fresh();
    store.save("tiny", { shares: [], forwards: [], allowHost: false, clipboard: true });
    expect(readdirSync(join(data, "guests", "tiny"))).toEqual(["settings.json"]);
  });

  it("refuses a share whose folder is missing or is a file, and keeps the old settings", () => {
    const { store, share } = fresh();
    store.save("tiny", { shares: [{ hostPath: share, tag: "a", readOnly: false }], forwards: [], allowHost: false, clipboard: true });
    expect(() => store.save("tiny", { shares: [{ hostPath: join(share, "gone"), tag: "b", readOnly: false }], forwards: [], allowHost: false, clipboard: true })).toThrow(/share "b": .*gone does not exist/);
    writeFileSync(join(share, "file.txt"), "x");
    expect(() => store.save("tiny", { shares: [{ hostPath: join(share, "file.txt"), tag: "c", readOnly: false }], forwards: [], allowHost: false, clipboard: true })).toThrow(/is not a folder/);
    expect(store.load("tiny").shares.map((s) => s.tag)).toEqual(["a"]);
  });

  it("names a settings file that is not JSON", () => {
    const { store, data } = fresh();
    mkdirSync(join(data, "guests", "tiny"), { recursive: true });
    writeFileSync(join(data, "guests", "tiny", "settings.json"), "{oops");
    expect(() => store.load("tiny")).toThrow(/settings\.json: not valid JSON; fix or delete it/);
    expect(() => store.load("../etc")).toThrow(/is not a guest name/);
  });

  it("keeps settings private to the user, even with umask 0", () => {
    const { store, data } = fresh();
    const old = process.umask(0);
    try {
      store.save("tiny", { shares: [], forwards: [], allowHost: false, clipboard: true });
    } finally {
      process.umask(old);
    }
    expect(statSync(join(data, "guests", "tiny", "settings.json")).mode & 0o777).toBe(0o600);
    for (const folder of [data, join(data, "guests"), join(data, "guests", "tiny")]) expect(statSync(folder).mode & 0o777).toBe(0o700);
  });

  it("clears the temporary files a killed save left, and nothing else", () => {
    const { store, data } = fresh();
    const folder = join(data, "guests", "tiny");
    mkdirSync(folder, { recursive: true });
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    const leftovers = [`settings.json.${dead}.tmp`, `settings.json.${dead}.1f2e3d4c.tmp`];
    const others = ["settings.json.bak", "notes.tmp", `other.json.${dead}.tmp`, `settings.json.${process.pid}.0a0b0c0d.tmp`, "settings.json.1.bak.tmp"];
    for (const name of [...leftovers, ...others]) writeFileSync(join(folder, name), "{");
    store.save("tiny", { shares: [], forwards: [], allowHost: false, clipboard: true });
    expect(readdirSync(folder).sort()).toEqual([...others, "settings.json"].sort());

    // A load clears them too; so does age, whoever wrote them.
    const old = join(folder, `settings.json.${process.pid}.0a0b0c0d.tmp`);
    utimesSync(old, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    writeFileSync(join(folder, `settings.json.${dead}.tmp`), "{");
    expect(store.load("tiny").clipboard).toBe(true);
    expect(readdirSync(folder).sort()).toEqual(["settings.json.bak", "notes.tmp", `other.json.${dead}.tmp`, "settings.json.1.bak.tmp", "settings.json"].sort());
  });
});
