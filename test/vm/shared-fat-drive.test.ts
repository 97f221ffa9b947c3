// A guest of a family without 9P (DOS) is offered its saved shared folder as a read-only FAT
// hard disk, by its launch plan alone: tiny's kernel and initrd added as a user guest of family
// dos stand in for DOS (what matters is the drive the guest is given), a share saved in its
// settings, then `unmachine run NAME` and the guest mounts its first hard disk and reads the file.
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { tinyPrompt } from "../support/guests.js";
import { SettingsStore } from "../../main/guests/settings-store.js";
import { DEFAULT_SETTINGS } from "../../core/guest/settings.js";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");
const scratch = mkdtempSync(join(tmpdir(), "unmachine-vm-shared-fat-"));
const data = join(scratch, "data");
const tiny = join(process.env.UNMACHINE_CACHE ?? join(homedir(), ".cache", "unmachine"), "guests", "tiny");
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function unmachine(timeoutMs: number, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, UNMACHINE_DATA: data }, timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("a DOS-family guest with a saved shared folder", () => {
  it("gets the folder as a read-only FAT hard disk, not 9P, and reads the host's file from it", () => {
    const added = unmachine(30_000, "add", join(tiny, "vmlinuz"), "--initrd", join(tiny, "initrd.img"), "--prompt", tinyPrompt(), "--family", "dos", "--name", "like-dos");
    expect(added.status, added.stderr).toBe(0);
    const shared = join(scratch, "Host Files");
    mkdirSync(shared);
    writeFileSync(join(shared, "HELLO.TXT"), "from the host's folder\n");
    const blob = randomBytes(300_000);
    writeFileSync(join(shared, "data.bin"), blob);
    new SettingsStore(data).save("like-dos", { ...DEFAULT_SETTINGS, shares: [{ hostPath: shared, tag: "files", readOnly: false }] });

    const script = [
      "mkdir -p /d && mount -t vfat -o ro /dev/sda1 /d",
      "cat /d/HELLO.TXT",
      "sha256sum /d/data.bin",
      "touch /d/new 2>&1 | grep -c Read-only",
      "test -e /mnt/files || echo no-9p-share",
    ].join(" && ");
    const r = unmachine(240_000, "run", "like-dos", "--headless", "--timeout", "200", "--exec", script);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("from the host's folder\n");
    expect(r.stdout).toContain(createHash("sha256").update(blob).digest("hex"));
    expect(r.stdout).toMatch(/^1$/m);
    expect(r.stdout).toContain("no-9p-share");
    expect(r.status).toBe(0);
    expect(readdirSync(shared).sort()).toEqual(["HELLO.TXT", "data.bin"]);
  }, 300_000);

  it("names the share when its folder is gone, with exit 2", () => {
    const gone = join(scratch, "gone");
    mkdirSync(gone);
    new SettingsStore(data).save("like-dos", { ...DEFAULT_SETTINGS, shares: [{ hostPath: gone, tag: "files", readOnly: false }] });
    rmSync(gone, { recursive: true });
    const r = unmachine(30_000, "run", "like-dos", "--headless", "--exec", "true");
    expect(r.stderr).toBe(`unmachine: share "files": ${gone} is not a folder\n`);
    expect(r.status).toBe(2);
  });
});
