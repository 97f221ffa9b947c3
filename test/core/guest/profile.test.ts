// Guest profiles are files a user may edit: the shipped one must parse, and each kind of
// mistake must be refused with a message that names the file and what is wrong.

import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { MEMORY_LIMITS, ProfileError, checkMemory, parseProfile } from "../../../core/guest/profile.js";

const TINY = new URL("../../../guests/tiny/guest.json", import.meta.url);
const DESKTOP = new URL("../../../guests/desktop/guest.json", import.meta.url);
const SOURCE = "guests/demo/guest.json";

function valid(): Record<string, unknown> {
  return { name: "demo", title: "Demo", memory: 96, media: { bzimage: "vmlinuz", initrd: "initrd.img" } };
}

/** The message parseProfile throws for `json`; fails the test if it does not throw a ProfileError. */
function refusal(json: unknown): string {
  try {
    parseProfile(json, SOURCE);
  } catch (error) {
    expect(error).toBeInstanceOf(ProfileError);
    const message = (error as Error).message;
    expect(message.startsWith(`${SOURCE}: `)).toBe(true);
    return message;
  }
  throw new Error(`accepted ${JSON.stringify(json)}`);
}

describe("parseProfile", () => {
  it("accepts the tiny guest's profile as shipped", () => {
    const json: unknown = JSON.parse(readFileSync(TINY, "utf8"));
    const profile = parseProfile(json, "guests/tiny/guest.json");
    expect(profile.name).toBe("tiny");
    expect(profile.media.bzimage).toBeTruthy();
    expect(profile.media.initrd).toBeTruthy();
    expect(profile.memory).toBeGreaterThanOrEqual(MEMORY_LIMITS.min);
    expect(profile.memory).toBeLessThanOrEqual(MEMORY_LIMITS.max);
    expect(profile.cmdline).toContain("console=ttyS0");
    expect(profile.net).toBe("virtio");
    expect(profile.acpi).toBe(false);
    expect(new RegExp(`(?:${profile.prompt})$`).test("tiny:/# ")).toBe(true);
  });

  it("accepts the desktop guest's profile as shipped: its root folder, shell prompt and 9P", () => {
    const profile = parseProfile(JSON.parse(readFileSync(DESKTOP, "utf8")), "guests/desktop/guest.json");
    expect(profile.root).toBe("root");
    expect(profile.shares).toBe(true);
    expect(profile.agent).toBe(true);
    expect(profile.windows).toBe(true);
    expect(new RegExp(`(?:${profile.prompt})$`).test("desktop:/# ")).toBe(true);
  });

  it("takes \"windows\" as true or false, for a guest with the agent that reports them", () => {
    const base = { name: "d", media: { bzimage: "vmlinuz" }, agent: true };
    expect(parseProfile({ ...base, windows: true }, SOURCE).windows).toBe(true);
    expect(parseProfile({ ...base, windows: false }, SOURCE).windows).toBeUndefined();
    expect(() => parseProfile({ ...base, windows: "yes" }, SOURCE)).toThrow(/"windows" must be true or false/);
    expect(() => parseProfile({ ...base, agent: false, windows: true }, SOURCE)).toThrow(/"windows" needs "agent"/);
  });

  it("takes a root folder only as a plain folder name, for a guest that mounts 9P", () => {
    const base = { name: "d", media: { bzimage: "vmlinuz" }, shares: true };
    for (const root of ["../x", "a/b", ".hidden", "", 3]) {
      expect(() => parseProfile({ ...base, root }, SOURCE)).toThrow(/"root" must be/);
    }
    expect(() => parseProfile({ ...base, root: "root", shares: false }, SOURCE)).toThrow(/"root" needs "shares"/);
  });

  it("fills in defaults for optional fields", () => {
    const profile = parseProfile({ name: "bare", media: { fda: "disk.img" } }, SOURCE);
    expect(profile).toEqual({
      name: "bare",
      title: "bare",
      description: "",
      memory: MEMORY_LIMITS.defaultMiB,
      media: { fda: "disk.img" },
      net: "none",
      acpi: false,
      agent: false,
      shares: false,
      balloon: false,
    });
  });

  it("refuses anything that is not a JSON object", () => {
    for (const json of [null, undefined, 42, "tiny", [], [valid()]]) {
      expect(refusal(json)).toContain("expected a JSON object");
    }
  });

  it("refuses a missing or badly formed name", () => {
    for (const name of [undefined, "", 7, "Tiny", "my guest", "a/b", "../etc", "-dash", "x".repeat(41)]) {
      expect(refusal({ ...valid(), name })).toContain('"name"');
    }
    expect(parseProfile({ ...valid(), name: "x".repeat(40) }, SOURCE).name).toHaveLength(40);
  });

  it("refuses memory outside the limits, saying what the limits are", () => {
    for (const memory of [0, 8, MEMORY_LIMITS.min - 1, MEMORY_LIMITS.max + 1, 100_000, 64.5, -128]) {
      const message = refusal({ ...valid(), memory });
      expect(message).toContain(String(MEMORY_LIMITS.min));
      expect(message).toContain(String(MEMORY_LIMITS.max));
    }
    expect(refusal({ ...valid(), memory: "128" })).toContain('"memory"');
    expect(parseProfile({ ...valid(), memory: MEMORY_LIMITS.min }, SOURCE).memory).toBe(MEMORY_LIMITS.min);
    expect(parseProfile({ ...valid(), memory: MEMORY_LIMITS.max }, SOURCE).memory).toBe(MEMORY_LIMITS.max);
  });

  it("refuses an unknown media role, listing the known ones", () => {
    const message = refusal({ ...valid(), media: { hdc: "disk.img" } });
    expect(message).toContain('"hdc"');
    expect(message).toContain("bzimage");
    expect(message).toContain("cdrom");
  });

  it("refuses media file names that are paths or not names", () => {
    for (const file of ["../vmlinuz", "sub/vmlinuz", "/etc/passwd", "..", ".hidden", "", 5, null]) {
      expect(refusal({ ...valid(), media: { bzimage: file } })).toContain('media "bzimage"');
    }
  });

  it("refuses media that is missing, not an object, or names nothing", () => {
    expect(refusal({ ...valid(), media: undefined })).toContain('"media"');
    expect(refusal({ ...valid(), media: "vmlinuz" })).toContain('"media"');
    expect(refusal({ ...valid(), media: {} })).toContain("nothing to boot");
  });

  it("refuses an unknown network device", () => {
    for (const net of ["e1000", "", 1, true]) {
      expect(refusal({ ...valid(), net })).toContain('"net"');
    }
    for (const net of ["none", "virtio", "ne2k"] as const) {
      expect(parseProfile({ ...valid(), net }, SOURCE).net).toBe(net);
    }
  });

  it("refuses a prompt that is not a valid regular expression", () => {
    for (const prompt of ["(", "[a-", "*#"]) {
      expect(refusal({ ...valid(), prompt })).toContain('"prompt"');
    }
  });

  it("refuses optional strings of the wrong type", () => {
    expect(refusal({ ...valid(), title: 3 })).toContain('"title"');
    expect(refusal({ ...valid(), cmdline: "" })).toContain('"cmdline"');
  });

  it("names the file it was given in every refusal", () => {
    expect(() => parseProfile({ name: "Bad" }, "/home/me/guests/bad/guest.json")).toThrow(
      /^\/home\/me\/guests\/bad\/guest\.json: /,
    );
  });
});

describe("checkMemory", () => {
  it("accepts whole MiB within the limits and names what it checked otherwise", () => {
    expect(checkMemory(128)).toBe(128);
    expect(() => checkMemory(15, "--memory")).toThrow(/^--memory must be a whole number of MiB from 16 to 2048, got 15$/);
    expect(() => checkMemory(Number.NaN)).toThrow(ProfileError);
  });
});
