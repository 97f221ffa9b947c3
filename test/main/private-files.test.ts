// The host's own files and folders: private whatever the umask, written whole or not at all,
// and a folder someone else made (or a symlink to one) refused rather than used.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensurePrivateDir, makePrivateDir, writePrivateFileAtomic, writePrivateFileAtomicAsync } from "../../main/private-files.js";
import { rootFolderBackend } from "../../main/host/p9-service.js";

let scratch: string;
let umask: number;

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "unmachine-private-"));
  umask = process.umask(0);
});

afterEach(() => {
  process.umask(umask);
});

const mode = (path: string): number => lstatSync(path).mode & 0o777;

describe("private files", () => {
  it("writes files 0600 whole, replacing an open one, with nothing left beside them", async () => {
    const file = join(scratch, "settings.json");
    writeFileSync(file, "old", { mode: 0o644 });
    writePrivateFileAtomic(file, "new");
    expect([readFileSync(file, "utf8"), mode(file)]).toEqual(["new", 0o600]);
    const other = join(scratch, "attrs");
    await writePrivateFileAtomicAsync(other, new Uint8Array([1, 2, 3]));
    expect([[...readFileSync(other)], mode(other)]).toEqual([[1, 2, 3], 0o600]);
    expect(readdirSync(scratch).sort()).toEqual(["attrs", "settings.json"]);
  });

  it("makes folders and their missing parents 0700, here and for a guest's root folder", () => {
    makePrivateDir(join(scratch, "a", "b"));
    expect([mode(join(scratch, "a")), mode(join(scratch, "a", "b"))]).toEqual([0o700, 0o700]);
    rootFolderBackend(join(scratch, "root", "fs"));
    expect([mode(join(scratch, "root")), mode(join(scratch, "root", "fs"))]).toEqual([0o700, 0o700]);
  });

  it("makes a private folder, and refuses one that is open to others, a symlink or a file", () => {
    const own = join(scratch, "own");
    ensurePrivateDir(own);
    ensurePrivateDir(own);
    expect(statSync(own).isDirectory() && mode(own)).toBe(0o700);

    const open = join(scratch, "open");
    mkdirSync(open);
    chmodSync(open, 0o755);
    expect(() => ensurePrivateDir(open, "control folder")).toThrow(`the control folder ${open} is not a private folder of this user (mode 0755)`);
    expect(mode(open)).toBe(0o755);

    const link = join(scratch, "link");
    symlinkSync(own, link);
    expect(() => ensurePrivateDir(link)).toThrow(/is a symlink/);

    const file = join(scratch, "file");
    writeFileSync(file, "");
    expect(() => ensurePrivateDir(file)).toThrow(/is not a folder/);
  });
});
