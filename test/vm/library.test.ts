// A guest added to the library from the command line boots by its name: tiny's own kernel and
// initrd added as a user would add a kernel (`unmachine add vmlinuz --initrd ...`), then
// `unmachine run NAME --headless --exec` answers from inside it. Garbage is refused with exit 2
// and no guest folder made.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
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
