// Swapping a running guest's CD and floppy from another terminal (`unmachine media`), and the
// guest reading what was inserted: the user's path, through the CLI and a PTY console.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, writeFileSync, type ReadStream, type WriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");
const scratch = mkdtempSync(join(tmpdir(), "unmachine-media-"));

async function waitUntil(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function unmachine(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("unmachine media on a running guest", () => {
  let child: ChildProcess;
  let reader: ReadStream;
  let writer: WriteStream;
  let seen = "";
  let name = "";
  const iso = join(scratch, "data.iso");
  const floppy = join(scratch, "disk.img");

  /** Types a command on the guest's console and waits for a marker it prints. */
  async function run(command: string, marker: string): Promise<string> {
    const from = seen.length;
    writer.write(`${command}; echo ${marker.slice(0, 3)}''${marker.slice(3)}\r`);
    await expect.poll(() => seen.slice(from), { timeout: 30_000, interval: 200 }).toContain(`\n${marker}`);
    return seen.slice(from);
  }

  beforeAll(async () => {
    const cd = join(scratch, "cd");
    mkdirSync(cd);
    writeFileSync(join(cd, "Hello from the host.txt"), "a CD made on the host\n");
    execFileSync("genisoimage", ["-quiet", "-J", "-r", "-V", "HOSTCD", "-o", iso, cd]);
    execFileSync("mkfs.vfat", ["-C", floppy, "1440"], { stdio: "ignore" });
    writeFileSync(join(scratch, "note.txt"), "a floppy made on the host\n");
    execFileSync("mcopy", ["-i", floppy, join(scratch, "note.txt"), "::NOTE.TXT"]);

    child = spawn(process.execPath, [bin, "run", "tiny", "--pty"], { stdio: ["ignore", "pipe", "pipe"] });
    let errors = "";
    child.stderr!.on("data", (d: Buffer) => (errors += d.toString()));
    const path = await new Promise<string>((resolvePath, reject) => {
      child.stdout!.once("data", (d: Buffer) => resolvePath(d.toString().trim()));
      child.once("exit", (code) => reject(new Error(`exited ${code}: ${errors}`)));
    });
    await waitUntil(() => /unmachine media (\S+) --insert/.test(errors), 10_000, "the media hint");
    name = /unmachine media (\S+) --insert/.exec(errors)![1]!;
    reader = createReadStream(path);
    writer = createWriteStream(path);
    reader.on("data", (d) => (seen += d.toString()));
    reader.on("error", () => {});
    writer.on("error", () => {});
    await waitUntil(() => /tiny:\/# /.test(seen), 120_000, "the guest's prompt");
  });

  afterAll(() => {
    reader?.destroy();
    writer?.destroy();
    child?.kill("SIGINT");
  });

  it("is listed as running", () => {
    expect(unmachine("list").stdout).toMatch(new RegExp(`^running: .*\\b${name}\\b`, "m"));
  });

  it("inserts a CD the guest then mounts and reads", async () => {
    const r = unmachine("media", name, "--insert", `cdrom=${iso}`);
    expect(r.stderr).toMatch(/inserted .*data\.iso: ISO 9660 CD image/);
    expect(r.status).toBe(0);
    const out = await run("mkdir -p /media/cd && mount -t iso9660 -o ro /dev/sr0 /media/cd && cat '/media/cd/Hello from the host.txt'", "CD-READ-DONE");
    expect(out).toContain("a CD made on the host");
  });

  it("inserts a floppy the guest then mounts and reads, and ejects it", async () => {
    expect(unmachine("media", name, "--insert", `fda=${floppy}`).status).toBe(0);
    const out = await run("mkdir -p /media/fd && mount -t vfat /dev/fd0 /media/fd && cat /media/fd/note.txt && umount /media/fd", "FD-READ-DONE");
    expect(out).toContain("a floppy made on the host");
    expect(unmachine("media", name, "--eject", "fda").status).toBe(0);
    const after = await run("mount -t vfat /dev/fd0 /media/fd 2>&1 | head -1", "FD-EJECT-DONE");
    expect(after).not.toContain("a floppy made on the host");
    expect(after).toMatch(/mount: /);
  });

  it("refuses an image that does not fit the drive, and a guest that is not running", () => {
    const wrong = unmachine("media", name, "--insert", `fda=${iso}`);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/data\.iso: a ISO 9660 CD image.* does not go in the floppy drive; expected a floppy disk image/);
    const nobody = unmachine("media", "no-such-guest", "--eject", "cdrom");
    expect(nobody.status).toBe(2);
    expect(nobody.stderr).toMatch(/no running guest named "no-such-guest" \(running: .*\)/);
  });
});
