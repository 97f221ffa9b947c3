// A host folder attached as a read-only FAT drive, as a guest without 9P would use it: the
// tiny guest mounts it with its own vfat driver and reads long names and contents.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes, createHash } from "node:crypto";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");

describe("unmachine run --fat-drive", () => {
  it("shows the folder's tree, long names and bytes to the guest", () => {
    const dir = mkdtempSync(join(tmpdir(), "unmachine-fat-"));
    mkdirSync(join(dir, "Old Programs", "Game Saves"), { recursive: true });
    writeFileSync(join(dir, "Old Programs", "Read Me First.txt"), "long names survive\n");
    const blob = randomBytes(2 * 1024 * 1024 + 123);
    writeFileSync(join(dir, "Old Programs", "Game Saves", "slot1.dat"), blob);
    const script = "mkdir -p /fat; mount -t vfat -o ro /dev/sda1 /fat && cat '/fat/Old Programs/Read Me First.txt' && sha256sum '/fat/Old Programs/Game Saves/slot1.dat' && touch /fat/x 2>&1 | grep -c Read-only";
    const r = spawnSync(process.execPath, [bin, "run", "tiny", "--headless", "--fat-drive", dir, "--exec", `sleep 1; ${script}`], { encoding: "utf8", timeout: 150_000 });
    expect(r.stdout).toContain("long names survive\n");
    expect(r.stdout).toContain(createHash("sha256").update(blob).digest("hex"));
    expect(r.stdout.trim().endsWith("1")).toBe(true);
    expect(r.status).toBe(0);
  });

  it("names a folder that is missing", () => {
    const r = spawnSync(process.execPath, [bin, "run", "tiny", "--headless", "--fat-drive", "/no/such/folder", "--exec", "true"], { encoding: "utf8", timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("unmachine: --fat-drive: /no/such/folder is not a folder\n");
  });
});
