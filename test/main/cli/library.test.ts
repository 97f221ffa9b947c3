// The library from the command line, run as a user runs it (node bin/unmachine.js, built):
// add an image (name from the file, family from its content, the image never changed), list,
// set, rm and reset; every refusal is one line, exit status 2, and the data folder as it was.
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildFatImage, materialize } from "../../../core/fat/image.js";
import { fileFromBytes, directory } from "../../../core/fat/tree.js";

const bin = resolve(import.meta.dirname, "../../../bin/unmachine.js");
const scratch = mkdtempSync(join(tmpdir(), "unmachine-library-"));
const T = Date.UTC(1994, 0, 1);

function home(): string {
  return mkdtempSync(join(scratch, "home-"));
}

function unmachine(data: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, UNMACHINE_DATA: data }, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A DOS hard disk: MBR, one FAT16 partition with IO.SYS, MSDOS.SYS and COMMAND.COM. */
function dosDisk(name: string): string {
  const text = (s: string) => new TextEncoder().encode(s);
  const image = materialize(buildFatImage([fileFromBytes("IO.SYS", text("io"), T), fileFromBytes("MSDOS.SYS", text("msdos"), T), fileFromBytes("COMMAND.COM", text("cmd"), T), directory("GAMES", [], T)]));
  const path = join(scratch, name);
  writeFileSync(path, image);
  return path;
}

const hash = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Every file under a folder with its bytes, to see that nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(e.parentPath, e.name);
    out[path] = e.isFile() ? hash(path) : "dir";
  }
  return out;
}

function oneLine(r: { status: number | null; stderr: string }, message: RegExp): void {
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
}

describe("unmachine add", () => {
  it("adds a DOS disk under a name from its file, detects its family, and never touches the image", () => {
    const data = join(home(), "data");
    const image = dosDisk("My DOS Disk.img");
    const before = hash(image);
    const r = unmachine(data, "add", image);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("my-dos-disk\n");
    const folder = join(data, "guests", "my-dos-disk");
    expect(statSync(join(folder, "guest.json")).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(folder, "source.json"), "utf8")).media.hda).toMatchObject({ path: image, size: statSync(image).size });
    expect(existsSync(join(folder, "image"))).toBe(false); // referenced, not copied

    const again = unmachine(data, "add", image, "--memory", "32");
    expect(again.stdout).toBe("my-dos-disk-2\n");
    const list = unmachine(data, "list");
    expect(list.status).toBe(0);
    const row = list.stdout.split("\n").find((l) => l.startsWith("my-dos-disk "));
    expect(row).toMatch(/^my-dos-disk\s+dos\s+64 MiB\s+0 B\s+\d+\.\d MiB\s+ready\s+My DOS Disk\.img$/);
    expect(list.stdout).toMatch(/^my-dos-disk-2\s+dos\s+32 MiB/m);
    expect(list.stdout).toMatch(/^tiny\s+linux\s+128 MiB/m);
    expect(hash(image)).toBe(before);
  });

  it("takes a hard disk over 2 GiB (served block by block, never loaded whole)", () => {
    const data = join(home(), "data");
    const path = join(scratch, "big.img");
    const fd = openSync(path, "w");
    const mbr = new Uint8Array(512);
    mbr[446 + 4] = 0x83;
    new DataView(mbr.buffer).setUint32(446 + 8, 2048, true);
    new DataView(mbr.buffer).setUint32(446 + 12, 6 * 1024 * 1024, true);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    writeSync(fd, mbr, 0, 512, 0);
    writeSync(fd, new Uint8Array(512), 0, 512, 3 * 1024 ** 3 - 512);
    closeSync(fd);
    const r = unmachine(data, "add", path, "--name", "big-linux");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("big-linux\n");
    expect(unmachine(data, "list").stdout).toMatch(/^big-linux\s+linux\s+128 MiB\s+0 B\s+3\.0 GiB\s+ready\s+big\.img$/m);
  });

  const refusals: [string, () => string[], RegExp][] = [
    ["random bytes", () => [(writeFileSync(join(scratch, "noise.img"), new Uint8Array(300_000).map((_, i) => (i * 2654435761) >>> 24)), join(scratch, "noise.img"))], /noise\.img: not a disk image or kernel this can boot/],
    ["a missing file", () => [join(scratch, "nowhere.img")], /nowhere\.img: no such file/],
    ["a directory", () => [(mkdirSync(join(scratch, "folder"), { recursive: true }), join(scratch, "folder"))], /folder: is a directory/],
    ["a missing --initrd", () => [join(process.env.HOME ?? "/root", ".cache/unmachine/guests/tiny/vmlinuz"), "--initrd", join(scratch, "no-initrd")], /--initrd .*no-initrd: no such file/],
    ["--initrd with a disk", () => [dosDisk("d.img"), "--initrd", dosDisk("e.img")], /--initrd goes with a Linux kernel/],
    ["a built-in guest's name", () => [dosDisk("f.img"), "--name", "tiny"], /--name "tiny": that is a built-in guest's name/],
    ["a bad name", () => [dosDisk("g.img"), "--name", "Bad Name"], /--name "Bad Name": a guest name is/],
    ["a bad family", () => [dosDisk("h.img"), "--family", "os2"], /--family: expected one of dos, win3x, win9x, winnt, linux, other/],
    ["a bad prompt", () => [dosDisk("i.img"), "--prompt", "("], /--prompt: "\(" is not a valid regular expression/],
  ];
  for (const [what, args, message] of refusals) {
    it(`refuses ${what}: one line, exit 2, no guest folder, the library unchanged`, () => {
      const data = join(home(), "data");
      const fresh = unmachine(data, "add", ...args());
      oneLine(fresh, message);
      expect(existsSync(data)).toBe(false);
      // With guests already there: nothing added, nothing left behind.
      expect(unmachine(data, "add", dosDisk("kept.img")).status).toBe(0);
      const before = snapshot(data);
      oneLine(unmachine(data, "add", ...args()), message);
      expect(snapshot(data)).toEqual(before);
    });
  }
});

describe("unmachine set, rm and reset", () => {
  it("sets memory, speed, disk size and profile keys; a bad key or value is one line and changes nothing", () => {
    const data = join(home(), "data");
    const image = dosDisk("set.img");
    expect(unmachine(data, "add", image, "--name", "dos").status).toBe(0);
    const size = Math.ceil(statSync(image).size / 2 ** 20);
    const ok = unmachine(data, "set", "dos", "memory=48", "cpu=25", `disk=${size + 100}`, "family=win9x", "title=Games", "net=none", "acpi=on", "prompt=C:\\\\>");
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    const settings = JSON.parse(readFileSync(join(data, "guests", "dos", "settings.json"), "utf8"));
    expect(settings).toMatchObject({ memory: 48, cpuPercent: 25, diskMiB: size + 100 });
    const profile = JSON.parse(readFileSync(join(data, "guests", "dos", "guest.json"), "utf8"));
    expect(profile).toMatchObject({ family: "win9x", title: "Games", net: "none", acpi: true, prompt: "C:\\\\>" });
    expect(unmachine(data, "list").stdout).toMatch(new RegExp(`^dos\\s+win9x\\s+48 MiB\\s+0 B\\s+${size + 100}\\.0 MiB`, "m"));

    const before = snapshot(data);
    oneLine(unmachine(data, "set", "dos", "colour=blue"), /unknown key "colour" \(allowed: memory, cpu, disk, family, title, prompt, net, acpi\)/);
    oneLine(unmachine(data, "set", "dos", "memory=64", "cpu=300"), /cpu: expected a whole number of percent of one host core from 1 to 100, got "300"/);
    oneLine(unmachine(data, "set", "dos", "net=e1000"), /net: expected one of none, virtio, ne2k, got "e1000"/);
    oneLine(unmachine(data, "set", "dos", "disk=1"), /disk: a disk may only grow; dos's is \d+ MiB/);
    oneLine(unmachine(data, "set", "dos", "family=beos"), /family: expected one of dos, win3x, win9x, winnt, linux, other/);
    oneLine(unmachine(data, "set", "dos", "acpi=maybe"), /acpi: expected on or off/);
    oneLine(unmachine(data, "set", "tiny", "title=Mine"), /title: tiny is a built-in guest; only memory and cpu can be set for it/);
    oneLine(unmachine(data, "set", "nosuch", "memory=64"), /no guest named "nosuch"/);
    expect(snapshot(data)).toEqual(before);
    expect(unmachine(data, "set", "tiny", "memory=96").status).toBe(0);
    expect(unmachine(data, "list").stdout).toMatch(/^tiny\s+linux\s+96 MiB/m);
  });

  it("rm refuses a guest with changes unless --yes, reset discards them, and the image stays", () => {
    const data = join(home(), "data");
    const image = dosDisk("rm.img");
    const before = hash(image);
    expect(unmachine(data, "add", image, "--name", "keep").status).toBe(0);
    const overlay = join(data, "guests", "keep", "hda.overlay");
    writeFileSync(overlay, new Uint8Array(3 * 1024 * 1024));
    expect(unmachine(data, "list").stdout).toMatch(/^keep\s+dos\s+64 MiB\s+3\.0 MiB/m);
    oneLine(unmachine(data, "rm", "keep"), /keep has changes to its disk \(3\.0 MiB\); to remove it and lose them, add --yes/);
    expect(existsSync(overlay)).toBe(true);
    oneLine(unmachine(data, "rm", "tiny"), /tiny is a built-in guest; it cannot be removed/);

    expect(unmachine(data, "reset", "keep").status).toBe(0);
    expect(existsSync(overlay)).toBe(false);
    expect(unmachine(data, "list").stdout).toMatch(/^keep\s+dos\s+64 MiB\s+0 B\s+\d/m);
    expect(unmachine(data, "rm", "keep").status).toBe(0);
    expect(existsSync(join(data, "guests", "keep"))).toBe(false);
    expect(hash(image)).toBe(before);

    expect(unmachine(data, "add", image, "--name", "gone").status).toBe(0);
    writeFileSync(join(data, "guests", "gone", "hda.overlay"), "changes");
    expect(unmachine(data, "rm", "gone", "--yes").status).toBe(0);
    expect(existsSync(join(data, "guests", "gone"))).toBe(false);
    expect(hash(image)).toBe(before);
  }, 60_000); // a dozen runs of the command line: slow on a loaded machine
});

describe("a library guest run twice", () => {
  it("refuses the second run while another process has the guest's disk, in one line", async () => {
    const data = join(home(), "data");
    const image = dosDisk("twice.img");
    expect(unmachine(data, "add", image, "--name", "twice").status).toBe(0);
    // Another `unmachine run twice` (or a shell's tab) holds the disk: a second writer would overwrite its records.
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
    try {
      writeFileSync(join(data, "guests", "twice", "hda.overlay.lock"), `${holder.pid}\n`);
      oneLine(unmachine(data, "run", "twice", "--headless", "--until", "never", "--timeout", "5"), new RegExp(`twice: its disk is in use by another running guest \\(process ${holder.pid}\\); stop that one first`));
      oneLine(unmachine(data, "rm", "twice", "--yes"), new RegExp(`twice is running \\(process ${holder.pid}\\); stop it first`));
      expect(existsSync(join(data, "guests", "twice", "guest.json"))).toBe(true);
    } finally {
      const gone = new Promise((done) => holder.once("exit", done));
      holder.kill("SIGKILL");
      await gone;
    }
    expect(unmachine(data, "rm", "twice").status).toBe(0);
  });

  it("rm of a guest whose guest.json was broken by hand removes it, keeping the user's own files", () => {
    const data = join(home(), "data");
    const image = dosDisk("broken.img");
    const before = hash(image);
    expect(unmachine(data, "add", image, "--name", "broken").status).toBe(0);
    const folder = join(data, "guests", "broken");
    writeFileSync(join(folder, "guest.json"), "{ oops");
    writeFileSync(join(folder, "notes.txt"), "mine");
    oneLine(unmachine(data, "set", "broken", "memory=32"), /guest\.json: not valid JSON; fix it, or remove the guest \(unmachine rm broken\)/);
    const r = unmachine(data, "rm", "broken");
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`kept ${folder}: it holds files that are not the guest's (notes.txt)`);
    expect(readdirSync(folder)).toEqual(["notes.txt"]);
    expect(hash(image)).toBe(before);
  });
});
