// electron-builder.yml checked by electron-builder's own configuration validator (its JSON
// schema plus its deprecation checks), since the packager itself cannot run here; the files it
// packages must exist after a build, and the Electron fuses it flips must close the side doors.
// Its defaults are read from app-builder-lib itself: the scheme's npmRebuild default and the
// deb target's default dependencies.
import { describe, expect, it } from "vitest";
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { load as loadYaml } from "js-yaml";

const root = resolve(import.meta.dirname, "../..");
const require = createRequire(import.meta.url);
const { validateConfiguration } = require("app-builder-lib/out/util/config/config.js") as {
  validateConfiguration(config: unknown, logger: unknown): Promise<void>;
};
const { DebugLogger } = require("builder-util") as { DebugLogger: new (enabled: boolean) => unknown };

const scheme = require("app-builder-lib/scheme.json") as { properties: Record<string, { default?: unknown; type?: unknown }> };
const FpmTarget = (require("app-builder-lib/out/targets/FpmTarget.js") as { default: { prototype: { getDefaultDepends(target: string): string[] } } }).default;

const config = loadYaml(readFileSync(resolve(root, "electron-builder.yml"), "utf8")) as Record<string, unknown>;

describe("electron-builder.yml", () => {
  it("passes electron-builder's configuration schema", async () => {
    await expect(validateConfiguration(structuredClone(config), new DebugLogger(false))).resolves.toBeUndefined();
  });

  it("is really checked: a wrong field is refused by the same validator", async () => {
    await expect(validateConfiguration({ ...structuredClone(config), linux: { target: 42, nonsense: true } }, new DebugLogger(false))).rejects.toThrow(/configuration/i);
  });

  it("packages AppImage and deb, with the firmware and default guest as resources", () => {
    expect((config.linux as { target: string[] }).target).toEqual(["AppImage", "deb"]);
    expect(config.extraResources).toEqual([expect.objectContaining({ from: "build/resources/unmachine", to: "unmachine" })]);
    expect(existsSync(resolve(root, (config.linux as { icon: string }).icon))).toBe(true);
    const pkg = JSON.parse(readFileSync(resolve(root, "package.json"), "utf8")) as { main: string };
    expect(pkg.main).toBe("dist/main/electron/main.js");
    expect(existsSync(resolve(root, "main/electron/main.ts"))).toBe(true);
  });

  it("flips the fuses that close Electron's side doors into the main process", () => {
    // Field names as app-builder-lib's FuseOptionsV1 spells them (scheme.json, configuration.d.ts).
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
    });
    // onlyLoadAppFromAsar leaves the app nothing to start unless the code is packed in app.asar.
    expect(config.asar ?? true).not.toBe(false);
  });

  it("refuses a misspelled fuse, so a typo cannot silently leave a fuse at its default", async () => {
    const fuses = config.electronFuses as Record<string, unknown>;
    const { runAsNode, ...rest } = fuses;
    expect(runAsNode).toBe(false);
    const misspelled = { ...structuredClone(config), electronFuses: { ...rest, runAsnode: false } };
    await expect(validateConfiguration(misspelled, new DebugLogger(false))).rejects.toThrow(/configuration\.electronFuses/);
  });

  it("rebuilds no native module for Electron (the app loads none; headers come from outside the registry)", () => {
    // The scheme's own words: npmRebuild is on unless turned off, nodeGypRebuild is a boolean.
    expect(scheme.properties.npmRebuild).toMatchObject({ type: "boolean", default: true });
    expect(scheme.properties.nodeGypRebuild).toMatchObject({ type: "boolean" });
    expect(config.npmRebuild).toBe(false);
    expect(config.nodeGypRebuild ?? scheme.properties.nodeGypRebuild!.default).toBe(false);
    // node-pty (the command line's PTY) and koffi (the headless runner's FFI, with its prebuilt binaries) are left out of the package altogether.
    expect(config.files).toEqual(expect.arrayContaining(["!node_modules/node-pty/**", "!node_modules/koffi/**", "!node_modules/@koromix/**"]));
  });

  it("unpacks nothing from app.asar that the app never loads", () => {
    const unpack = ([] as string[]).concat((config.asarUnpack as string[] | string | undefined) ?? []);
    const excluded = (config.files as string[]).filter((f) => f.startsWith("!")).map((f) => f.slice(1));
    for (const pattern of unpack) {
      expect(pattern, `${pattern}: node-pty and the headless runner are not used by the app`).not.toMatch(/node-pty|headless|v86\/build/);
      expect(excluded, `${pattern} unpacks files excluded from the package`).not.toContain(pattern);
    }
  });

  it("packages no build recipe: a packaged app never builds a guest", () => {
    for (const pattern of config.files as string[]) expect(pattern).not.toMatch(/\.sh$/);
  });

  it("keeps electron-builder's default deb dependencies, which setting depends replaces", () => {
    const defaults = FpmTarget.prototype.getDefaultDepends("deb");
    expect(defaults).toContain("libgtk-3-0");
    const depends = (config.deb as { depends: string[] }).depends;
    expect(depends).toEqual(expect.arrayContaining(defaults));
    expect(depends).toEqual(expect.arrayContaining(["libasound2", "libgbm1"]));
  });
});
