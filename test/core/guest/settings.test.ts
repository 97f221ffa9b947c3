// Guest settings as a user writes them: --share specs from the CLI and settings files.
import { describe, expect, it } from "vitest";
import { parseSettings, parseShareSpec, tagFromPath, SettingsError, DEFAULT_SETTINGS } from "../../../core/guest/settings.js";

describe("--share HOSTDIR[:TAG][:ro]", () => {
  it("takes the tag from the folder's name unless given, read-write unless :ro", () => {
    expect(parseShareSpec("/home/me/Projects")).toEqual({ hostPath: "/home/me/Projects", tag: "Projects", readOnly: false });
    expect(parseShareSpec("/srv/data:stuff")).toEqual({ hostPath: "/srv/data", tag: "stuff", readOnly: false });
    expect(parseShareSpec("/srv/data:stuff:ro")).toEqual({ hostPath: "/srv/data", tag: "stuff", readOnly: true });
    expect(parseShareSpec("/srv/data:ro", 64)).toEqual({ hostPath: "/srv/data", tag: "data", readOnly: true, quotaMiB: 64 });
  });

  it("makes a usable tag from any folder name", () => {
    expect(tagFromPath("/home/me/My Files/")).toBe("My_Files");
    expect(tagFromPath("/")).toBe("share");
    expect(tagFromPath("/x/.hidden")).toBe("hidden");
  });

  it("refuses a bad tag, extra parts, a bad quota, with the spec in the message", () => {
    expect(() => parseShareSpec("/srv:../etc")).toThrow(/share name "..\/etc"/);
    expect(() => parseShareSpec("/a:b:c:ro")).toThrow(/--share "\/a:b:c:ro": expected HOSTDIR\[:TAG\]\[:ro\]/);
    expect(() => parseShareSpec("/a", 0)).toThrow(SettingsError);
    expect(() => parseShareSpec(":tag")).toThrow(/the host folder is missing/);
  });
});

describe("settings files", () => {
  it("leaves the clipboard unshared unless the user turned it on", () => {
    expect(DEFAULT_SETTINGS.clipboard).toBe(false);
    expect(parseSettings({}, "f").clipboard).toBe(false);
    expect(parseSettings({ clipboard: "yes" }, "f").clipboard).toBe(false);
    expect(parseSettings({ clipboard: true }, "f").clipboard).toBe(true);
  });

  it("fills in defaults and keeps only known fields", () => {
    expect(parseSettings({}, "f")).toEqual(DEFAULT_SETTINGS);
    expect(parseSettings({ clipboard: true, allowHost: true, junk: 1 }, "f")).toEqual({ ...DEFAULT_SETTINGS, clipboard: true, allowHost: true });
  });

  it("names the file and the entry that is wrong", () => {
    expect(() => parseSettings({ shares: [{ hostPath: "/a", tag: "ok" }, { hostPath: "b", tag: "x" }] }, "/data/tiny.json")).toThrow(
      '/data/tiny.json: share 2: "hostPath" must be an absolute host folder',
    );
    expect(() => parseSettings({ forwards: [{ hostPort: 0, guestPort: 22 }] }, "f")).toThrow(/forward 1: "hostPort" must be a port number/);
    expect(() => parseSettings({ shares: new Array(65).fill({ hostPath: "/a", tag: "a" }) }, "f")).toThrow(/more than 64/);
  });
});
