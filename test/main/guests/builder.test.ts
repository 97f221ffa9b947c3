// A start asks a guest's recipe whether its files are current only when a recipe changed since
// the recipe last said so (or built them), or a file of the guest is missing; `unmachine build`
// always asks. The recipe here counts how often it runs.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { GuestLibrary } from "../../../main/guests/library.js";
import { ensureGuestBuilt } from "../../../main/guests/builder.js";

let root: string;
let library: GuestLibrary;
let savedCache: string | undefined;
const runs = (): number => readFileSync(join(root, "runs"), "utf8").length;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "unmachine-builder-"));
  const guests = join(root, "guests");
  const cache = join(root, "cache");
  mkdirSync(join(guests, "demo"), { recursive: true });
  mkdirSync(join(guests, "lib"), { recursive: true });
  writeFileSync(join(guests, "demo", "guest.json"), JSON.stringify({ name: "demo", memory: 96, media: { bzimage: "kernel" } }));
  writeFileSync(join(guests, "lib", "common.sh"), "# shared by the recipes\n");
  // The recipe: counts its run, (re)makes the guest's files.
  writeFileSync(
    join(guests, "demo", "build.sh"),
    `printf x >> "${join(root, "runs")}"\nmkdir -p "$UNMACHINE_CACHE/firmware" "$UNMACHINE_CACHE/guests/demo"\nprintf b > "$UNMACHINE_CACHE/firmware/bios.bin"\nprintf v > "$UNMACHINE_CACHE/firmware/vgabios-stdvga.bin"\nprintf k > "$UNMACHINE_CACHE/guests/demo/kernel"\necho "demo: up to date"\n`,
  );
  writeFileSync(join(root, "runs"), "");
  savedCache = process.env.UNMACHINE_CACHE;
  process.env.UNMACHINE_CACHE = cache;
  library = new GuestLibrary(guests, [cache], join(root, "data"));
});

afterEach(() => {
  if (savedCache === undefined) delete process.env.UNMACHINE_CACHE;
  else process.env.UNMACHINE_CACHE = savedCache;
  rmSync(root, { recursive: true, force: true });
});

describe("ensureGuestBuilt", () => {
  it("asks the recipe once, then not again while no recipe changed", async () => {
    await ensureGuestBuilt(library, "demo");
    expect(runs()).toBe(1);
    expect(library.problem("demo")).toBeUndefined();
    await ensureGuestBuilt(library, "demo");
    await ensureGuestBuilt(library, "demo");
    expect(runs()).toBe(1);
  });

  it("asks again when any recipe file changed since, even a shared one", async () => {
    await ensureGuestBuilt(library, "demo");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = new Date();
    utimesSync(join(root, "guests", "lib", "common.sh"), now, now);
    await ensureGuestBuilt(library, "demo");
    expect(runs()).toBe(2);
    await ensureGuestBuilt(library, "demo");
    expect(runs()).toBe(2);
  });

  it("asks again when a file of the guest is missing", async () => {
    await ensureGuestBuilt(library, "demo");
    rmSync(join(root, "cache", "guests", "demo", "kernel"));
    await ensureGuestBuilt(library, "demo");
    expect(runs()).toBe(2);
    expect(library.problem("demo")).toBeUndefined();
  });

  it("asks again when another checkout's recipes share the cache", async () => {
    await ensureGuestBuilt(library, "demo");
    const other = join(root, "other-checkout", "guests");
    cpSync(join(root, "guests"), other, { recursive: true, preserveTimestamps: true });
    const theirs = new GuestLibrary(other, [join(root, "cache")], join(root, "data"));
    await ensureGuestBuilt(theirs, "demo");
    expect(runs()).toBe(2);
    await ensureGuestBuilt(library, "demo");
    expect(runs()).toBe(3);
  });

  it("always asks when told to build (unmachine build)", async () => {
    await ensureGuestBuilt(library, "demo");
    await ensureGuestBuilt(library, "demo", { force: true, progress: devNull() });
    await ensureGuestBuilt(library, "demo", { summary: true, progress: devNull() });
    expect(runs()).toBe(3);
  });
});

function devNull(): Writable {
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}
