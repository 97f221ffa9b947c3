// The CLI's answers to bad input, run as a user runs it (node bin/unmachine.js, built):
// one clear line naming the file or flag and what was expected, exit status 2, and nothing
// created in the cache or data folders.

import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";

const bin = resolve(import.meta.dirname, "../../../bin/unmachine.js");
const scratch = mkdtempSync(join(tmpdir(), "unmachine-cli-"));

function unmachine(...args: string[]): { status: number | null; stdout: string; stderr: string; cache: string; data: string } {
  const home = mkdtempSync(join(scratch, "home-"));
  const cache = join(home, "cache");
  const data = join(home, "data");
  const result = spawnSync(process.execPath, [bin, ...args], {
    encoding: "utf8",
    env: { ...process.env, UNMACHINE_CACHE: cache, UNMACHINE_DATA: data },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, cache, data };
}

function file(name: string, bytes: Uint8Array): string {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
}

describe("unmachine run with bad input", () => {
  const cases: [string, () => string, RegExp][] = [
    ["a missing path", () => join(scratch, "nowhere.img"), /nowhere\.img: no such file; expected a floppy, hard disk or CD\/ISO image/],
    ["an empty file", () => file("empty.img", new Uint8Array()), /empty\.img: the file is empty; expected/],
    ["random bytes", () => file("noise.iso", randomBytes(3 * 1000 * 1000 + 7)), /noise\.iso: not a disk image or kernel this can boot .*; expected/],
    ["a directory", () => {
      const dir = join(scratch, "a-folder");
      mkdirSync(dir, { recursive: true });
      return dir;
    }, /a-folder: is a directory; expected an image file/],
    ["an unknown guest name", () => "nosuchguest", /no guest named "nosuchguest" and no such file \(known guests: .*tiny/],
  ];

  for (const [what, make, message] of cases) {
    it(`refuses ${what} with one line, exit 2, nothing created`, () => {
      const r = unmachine("run", make(), "--headless", "--until", "x", "--timeout", "5");
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
      expect(existsSync(r.cache)).toBe(false);
      expect(existsSync(r.data)).toBe(false);
    });
  }

  it("names a bad flag value", () => {
    const r = unmachine("run", "tiny", "--memory", "lots");
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('unmachine: --memory must be a number, got "lots"\n');
    const tooBig = unmachine("run", "tiny", "--memory", "99999");
    expect(tooBig.status).toBe(2);
    expect(tooBig.stderr).toMatch(/--memory must be a whole number of MiB from 16 to 2048/);
    const until = unmachine("run", "tiny", "--until", "x");
    expect(until.stderr).toMatch(/--until and --exec go with --headless/);
    const regex = unmachine("run", "tiny", "--headless", "--until", "(");
    expect(regex.status).toBe(2);
    expect(regex.stderr).toMatch(/--until: "\(" is not a valid regular expression/);
    const unknown = unmachine("run", "tiny", "--turbo");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/--turbo/);
  });

  it("refuses --share of /, or of the home folder, unless confirmed with --share-sensitive", () => {
    const home = mkdtempSync(join(scratch, "user-"));
    const run = (target: string, ...args: string[]) =>
      spawnSync(process.execPath, [bin, "run", target, ...args, "--headless", "--until", "x", "--timeout", "5"], {
        encoding: "utf8",
        env: { ...process.env, HOME: home, UNMACHINE_CACHE: join(home, "cache"), UNMACHINE_DATA: join(home, "data") },
        timeout: 30_000,
      });
    const root = run("tiny", "--share", "/");
    expect(root.status).toBe(2);
    expect(root.stderr).toMatch(/^unmachine: --share: \/ is the root of the whole file system: the guest could read and change every file in it that you can\. Add --share-sensitive to share it anyway\.\n$/);
    const mine = run("tiny", "--share", `${home}:me:ro`);
    expect(mine.status).toBe(2);
    expect(mine.stderr).toContain(`${home} is your home folder: the guest could read every file`);
    expect(existsSync(join(home, "cache"))).toBe(false);
    expect(existsSync(join(home, "data"))).toBe(false);
    // Confirmed, the run goes on to its next step: opening the image (missing here).
    const missing = join(scratch, "nowhere.img");
    expect(run(missing, "--share", "/").stderr).toMatch(/--share: \/ is the root/);
    const confirmed = run(missing, "--share", "/", "--share-sensitive");
    expect(confirmed.status).toBe(2);
    expect(confirmed.stderr).toMatch(/nowhere\.img: no such file/);
  });

  it("prints help with exit 0, and usage with exit 2 when called with nothing", () => {
    const help = unmachine("--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/unmachine run <guest\|image>/);
    expect(help.stdout).toMatch(/Ctrl-\]/);
    expect(unmachine().status).toBe(2);
    expect(unmachine("frobnicate").stderr).toMatch(/unknown command "frobnicate"/);
  });

  it("lists the guest library", () => {
    const r = unmachine("list");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+FAMILY\s+RAM\s+CHANGES\s+DISK\s+STATE\s+TITLE$/m);
    expect(r.stdout).toMatch(/^tiny\s+linux\s+128 MiB\s+-\s+-\s+(ready|not built)\s+Tiny Linux$/m);
  });
});
