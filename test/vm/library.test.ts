// A guest added to the library from the command line boots by its name: tiny's own kernel and
// initrd added as a user would add a kernel (`unmachine add vmlinuz --initrd ...`), then
// `unmachine run NAME --headless --exec` answers from inside it. Garbage is refused with exit 2
// and no guest folder made.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { buildBootableDisk, PARTITION_OFFSET } from "../support/bootable-disk.mjs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { tinyPrompt } from "../support/guests.js";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");
const scratch = mkdtempSync(join(tmpdir(), "unmachine-vm-library-"));
const data = join(scratch, "data");
const tiny = join(process.env.UNMACHINE_CACHE ?? join(homedir(), ".cache", "unmachine"), "guests", "tiny");

function unmachine(timeoutMs: number, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, UNMACHINE_DATA: data }, timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("a kernel added to the library", () => {
  it("refuses garbage with one line and exit 2, making no guest", () => {
    const noise = join(scratch, "noise.img");
    writeFileSync(noise, new Uint8Array(100_000).map((_, i) => (i * 2654435761) >>> 24));
    const r = unmachine(30_000, "add", noise);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^unmachine: .*noise\.img: not a disk image or kernel this can boot/);
    expect(existsSync(join(data, "guests")) ? readdirSync(join(data, "guests")) : []).toEqual([]);
  });

  it("is added with its initrd and answers --exec by its name", () => {
    const added = unmachine(30_000, "add", join(tiny, "vmlinuz"), "--initrd", join(tiny, "initrd.img"), "--prompt", tinyPrompt(), "--name", "my-kernel");
    expect(added.stderr).toMatch(/my-kernel: Linux kernel .*family linux/);
    expect(added.stdout).toBe("my-kernel\n");
    expect(unmachine(30_000, "list").stdout).toMatch(/^my-kernel\s+linux\s+128 MiB\s+-\s+-\s+ready/m);
    const r = unmachine(240_000, "run", "my-kernel", "--headless", "--exec", "uname -m; cat /proc/cmdline", "--timeout", "200");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^i[3-6]86$/m);
    expect(r.stdout).toContain("console=ttyS0 console=tty0");
  }, 300_000);
});

const sha = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("a bootable hard-disk image added to the library", () => {
  it("keeps what the guest writes in its overlay: the image never changes, the next run reads it, export has it, reset drops it", () => {
    const image = buildBootableDisk(scratch, 64);
    const before = sha(image);
    const added = unmachine(30_000, "add", image, "--prompt", tinyPrompt(), "--name", "own-disk");
    expect(added.status, added.stderr).toBe(0);
    expect(added.stderr).toMatch(/own-disk: hard disk image.*family linux/);
    const mount = "mkdir -p /d && mount -t vfat /dev/sda1 /d";
    const wrote = unmachine(300_000, "run", "own-disk", "--headless", "--timeout", "280", "--exec", `${mount} && echo written by the guest > /d/NOTE.TXT && sync && umount /d && echo done`);
    expect(wrote.stdout + wrote.stderr).toContain("done");
    expect(sha(image)).toBe(before);
    expect(unmachine(30_000, "list").stdout).toMatch(/^own-disk\s+linux\s+128 MiB\s+[\d.]+ [KM]iB\s+64(\.0)? MiB/m);

    const refused = unmachine(30_000, "rm", "own-disk");
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/own-disk has changes to its disk .*--yes/);

    const read = unmachine(300_000, "run", "own-disk", "--headless", "--timeout", "280", "--exec", `${mount} && cat /d/NOTE.TXT`);
    expect(read.stdout).toContain("written by the guest");

    const flat = join(scratch, "own-disk-flat.img");
    expect(unmachine(60_000, "export", "own-disk", flat).status).toBe(0);
    const note = spawnSync("mtype", ["-i", `${flat}@@${PARTITION_OFFSET}`, "::/NOTE.TXT"], { encoding: "utf8" });
    expect(note.stdout).toContain("written by the guest");
    expect(unmachine(30_000, "export", "own-disk", flat).stderr).toMatch(/already exists/);

    expect(unmachine(30_000, "reset", "own-disk").status).toBe(0);
    const gone = unmachine(300_000, "run", "own-disk", "--headless", "--timeout", "280", "--exec", `${mount} && ls /d`);
    expect(gone.stdout).not.toContain("NOTE.TXT");
    expect(gone.stdout).toMatch(/SYSLINUX|ldlinux|vmlinuz/i);
    expect(sha(image)).toBe(before);
    // Mounting read-write marks the FAT in use: that run made changes again, so rm asks.
    expect(unmachine(30_000, "rm", "own-disk").status).toBe(2);
    expect(unmachine(30_000, "rm", "own-disk", "--yes").status).toBe(0);
    expect(existsSync(join(data, "guests", "own-disk"))).toBe(false);
    expect(sha(image)).toBe(before);
  }, 1_000_000);
});
