// v86's code loaded with a V8 code cache (main/headless/v86-code.ts): a first load compiles and
// keeps the cache (the user's own file), the next one uses it, and a damaged or stale cache is
// rejected by V8, replaced, and never stops the emulator from loading.

import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadV86 } from "../../../main/headless/v86-code.js";
import { v86Dir } from "../../../main/paths.js";

const built = resolve(import.meta.dirname, "../../../dist/main/headless/v86-code.js");

/**
 * Loads v86 in a process of its own, as the worker does (in this one, V8's compilation cache
 * would hand back the code compiled before, and the file would not be read): whether the file
 * was used, and whether V86 came out. `keep` writes the cache after.
 */
function loadApart(folder: string, keep: boolean): { cached: boolean; v86: string } {
  const script = `const { loadV86 } = await import(${JSON.stringify(built)});
    const loaded = loadV86(${JSON.stringify(v86Dir)}, ${JSON.stringify(folder)});
    if (${keep}) loaded.keepCache();
    console.log(JSON.stringify({ cached: loaded.cached, v86: typeof loaded.V86.prototype.run }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`loading v86 failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { cached: boolean; v86: string };
}

describe("v86's code cache", () => {
  it("is kept after a first load, used by the next, and private to the user", () => {
    const folder = join(mkdtempSync(join(tmpdir(), "unmachine-code-")), "code");
    expect(loadApart(folder, true)).toEqual({ cached: false, v86: "function" });
    const [file] = readdirSync(folder);
    expect(file).toMatch(/^libv86-[0-9a-f]{24}\.cache$/);
    expect(statSync(join(folder, file!)).mode & 0o777).toBe(0o600);
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    expect(loadApart(folder, false)).toEqual({ cached: true, v86: "function" });
  });

  it("loads v86 past a damaged cache, and writes a good one in its place; other builds' caches go", () => {
    const folder = join(mkdtempSync(join(tmpdir(), "unmachine-code-")), "code");
    loadApart(folder, true);
    const [file] = readdirSync(folder);
    const path = join(folder, file!);
    const damaged = Buffer.alloc(statSync(path).size, 0x5a);
    writeFileSync(path, damaged);
    writeFileSync(join(folder, "libv86-0123456789abcdef01234567.cache"), "an older build's");

    expect(loadApart(folder, true)).toEqual({ cached: false, v86: "function" });
    expect(readdirSync(folder)).toEqual([file]);
    expect(readFileSync(path).equals(damaged)).toBe(false);
    expect(loadApart(folder, false)).toEqual({ cached: true, v86: "function" });
  });

  it("loads v86 when the cache folder cannot be made, keeping nothing", () => {
    const folder = join(mkdtempSync(join(tmpdir(), "unmachine-code-")), "no", "such", "parent");
    const loaded = loadV86(v86Dir, folder);
    expect(() => loaded.keepCache()).not.toThrow();
    expect(typeof loaded.V86).toBe("function");
  });

  it("says which file is wrong when v86's build defines no V86", () => {
    const dir = mkdtempSync(join(tmpdir(), "unmachine-v86-"));
    writeFileSync(join(dir, "libv86.js"), "module.exports.nothing = 1;");
    expect(() => loadV86(dir, join(dir, "code"))).toThrow(`${join(dir, "libv86.js")} did not define V86: is the v86 package whole?`);
  });
});
