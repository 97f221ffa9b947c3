// Settings on disk: saved atomically, read back, share folders checked, a broken file named.
import { describe, expect, it } from "vitest";
import { mkdtempSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
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
});
