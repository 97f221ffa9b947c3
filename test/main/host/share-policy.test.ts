// Which folders a guest gets only when the user confirms: the whole file system, the home
// folder and what holds it, hidden folders in it, system folders; reached directly, through
// "..", or through a symbolic link. Ordinary folders pass without a question.

import { describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { checkShares, servableShares, SensitiveShareError, sensitiveFolder } from "../../../main/host/share-policy.js";
import { SettingsError } from "../../../core/guest/settings.js";

const home = mkdtempSync(join(tmpdir(), "unmachine-policy-home-"));
for (const dir of [".ssh", ".config/app", "Projects/site", "Projects/.git"]) mkdirSync(join(home, dir), { recursive: true });
const outside = mkdtempSync(join(tmpdir(), "unmachine-policy-out-"));
symlinkSync("/", join(home, "Projects", "everything"));
symlinkSync(join(home, ".ssh"), join(outside, "keys"));
symlinkSync(home, join(outside, "me"));

describe("sensitive folders", () => {
  const reason = (path: string): string | undefined => sensitiveFolder(path, home)?.reason;

  it("names the whole file system, the home folder and the folders that hold it", () => {
    expect(reason("/")).toBe("the root of the whole file system");
    expect(reason(home)).toBe("your home folder");
    expect(reason(`${home}/`)).toBe("your home folder");
    expect(reason(join(home, "Projects", ".."))).toBe("your home folder");
    expect(reason(dirname(home))).toBe("a folder that holds your home folder");
  });

  it("names hidden folders of the home folder, at any depth", () => {
    expect(reason(join(home, ".ssh"))).toMatch(/^a hidden folder of your home folder \(\.ssh\)/);
    expect(reason(join(home, ".config", "app"))).toMatch(/\(\.config\)/);
    expect(reason(join(home, "Projects", ".git"))).toMatch(/\(\.git\)/);
  });

  it("exempts nothing when the home folder is / (containers, service accounts)", () => {
    expect(sensitiveFolder("/etc", "/")?.reason).toBe("a system folder");
    expect(sensitiveFolder("/root/.ssh", "/")?.reason).toBe("inside the system folder /root");
    expect(sensitiveFolder("/", "/")?.reason).toBe("the root of the whole file system");
  });

  it("follows symbolic links to what they lead to", () => {
    expect(sensitiveFolder(join(home, "Projects", "everything"), home)).toEqual({ real: "/", reason: "the root of the whole file system" });
    expect(reason(join(outside, "keys"))).toMatch(/hidden folder of your home folder \(\.ssh\)/);
    expect(reason(join(outside, "me"))).toBe("your home folder");
  });

  it("names system folders and what is in them", () => {
    expect(reason("/etc")).toBe("a system folder");
    expect(reason("/etc/ssh")).toBe("inside the system folder /etc");
    expect(reason("/usr/lib")).toBe("inside the system folder /usr");
    expect(reason("/proc/self")).toBeDefined();
    expect(reason("/root")).toBeDefined();
  });

  it("lets ordinary folders through", () => {
    expect(reason(join(home, "Projects"))).toBeUndefined();
    expect(reason(join(home, "Projects", "site"))).toBeUndefined();
    expect(reason(outside)).toBeUndefined();
    expect(reason("/etcetera-not-etc")).toBeUndefined();
  });
});

describe("checkShares", () => {
  const share = (hostPath: string, extra: { readOnly?: boolean; confirmedSensitive?: boolean } = {}) => ({ hostPath, tag: "t", readOnly: false, ...extra });

  it("refuses an unconfirmed sensitive share, saying what the guest could do and how to confirm", () => {
    expect(() => checkShares([share(join(home, "Projects")), share(join(home, ".ssh"))], () => "settings", "Confirm it in the page.", home)).toThrow(
      new RegExp(`^settings: ${join(home, ".ssh")} is a hidden folder .*: the guest could read and change every file in it that you can\\. Confirm it in the page\\.$`),
    );
    expect(() => checkShares([share("/", { readOnly: true })], () => "--share", "Add --share-sensitive.", home)).toThrow(/the guest could read every file/);
    expect(() => checkShares([share(join(home, "Projects", "everything"))], () => "--share", "x", home)).toThrow(/everything \(it leads to \/\) is the root/);
    expect(() => checkShares([share("/")], () => "--share", "x", home)).toThrow(SensitiveShareError);
    expect(() => checkShares([share("/")], () => "--share", "x", home)).toThrow(SettingsError);
  });

  it("accepts a sensitive share the user confirmed, and ordinary shares as they are", () => {
    expect(() => checkShares([share("/", { confirmedSensitive: true }), share(home, { confirmedSensitive: true }), share(join(home, "Projects"))], () => "s", "c", home)).not.toThrow();
  });
});

describe("shares when they are served", () => {
  it("serves a saved share of a sensitive folder only if it was confirmed, and says which it dropped", () => {
    const said: string[] = [];
    const kept = servableShares([
      { hostPath: "/", tag: "everything", readOnly: false },
      { hostPath: "/", tag: "confirmed", readOnly: true, confirmedSensitive: true },
      { hostPath: join(home, "Projects"), tag: "work", readOnly: false },
    ], (message) => said.push(message), home);
    expect(kept.map((s) => s.tag)).toEqual(["confirmed", "work"]);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/share "everything": \/ is the root of the whole file system.*not confirmed/);
  });
});
