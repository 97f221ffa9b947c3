// The tiny guest booting for real in v86 (a Node worker), asserting on what the guest itself
// prints: through the headless runner, and through the CLI as a user runs it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { tinyPlan } from "../support/guests.js";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");

function unmachine(args: string[], timeoutMs = 150_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("tiny in a headless worker", () => {
  let guest: HeadlessGuest;

  beforeAll(async () => {
    guest = new HeadlessGuest(tinyPlan());
    await guest.waitForShell(120_000);
  });
  afterAll(async () => {
    await guest.stop();
    guest.dispose();
  });

  it("is an i686 Linux with its shell prompt on serial and on the VGA screen", async () => {
    expect(await guest.exec("uname -m", 30_000)).toEqual({ output: "i686\n", status: 0 });
    expect(guest.transcript).toContain("tiny:/# ");
    await guest.waitForText(/tiny:\/#/, 10_000);
    expect(guest.screen).toContain("tiny:/#");
  });

  it("returns a command's exact output and exit status", async () => {
    expect(await guest.exec("printf 'one\\ntwo \"quoted\" $HOME\\n'; exit 0", 30_000)).toEqual({ output: 'one\ntwo "quoted" $HOME\n', status: 0 });
    expect((await guest.exec("sh -c 'echo failing >&2; exit 7'", 30_000))).toEqual({ output: "failing\n", status: 7 });
    const long = "x".repeat(3000);
    expect(await guest.exec(`echo ${long} | wc -c`, 30_000)).toEqual({ output: "3001\n", status: 0 });
  });

  it("has the paravirtual drivers the host services need", async () => {
    const { output } = await guest.exec("ls /sys/bus/virtio/drivers", 30_000);
    for (const driver of ["9pnet_virtio", "virtio_net", "virtio_console", "virtio_balloon"]) expect(output).toContain(driver);
    expect((await guest.exec("grep -c 9p /proc/filesystems", 30_000)).output.trim()).not.toBe("0");
  });

  it("with a network card nobody answers, says so and goes on asking in the background", async () => {
    // This guest's NIC has no NAT behind it: the prompt came all the same.
    await guest.waitForText(/tiny: no DHCP answer on eth0; still asking in the background/, 10_000);
    const { output } = await guest.exec("ip -4 addr show dev eth0 | grep -c inet; kill -0 $(cat /run/udhcpc.eth0.pid) && echo asking", 30_000);
    expect(output).toBe("0\nasking\n");
  });

  it("gets the RAM it was given", async () => {
    const kb = Number((await guest.exec("awk '/MemTotal/ {print $2}' /proc/meminfo", 30_000)).output);
    expect(kb).toBeGreaterThan(88 * 1024);
    expect(kb).toBeLessThanOrEqual(128 * 1024);
  });
});

describe("unmachine run tiny", () => {
  it("--exec prints exactly the command's output and exits with its status", () => {
    const r = unmachine(["run", "tiny", "--headless", "--exec", "uname -m"]);
    expect(r.stdout).toBe("i686\n");
    expect(r.status).toBe(0);
    const failing = unmachine(["run", "tiny", "--headless", "--exec", "ls /no/such/dir"]);
    expect(failing.status).not.toBe(0);
    expect(failing.stdout).toMatch(/No such file or directory/);
  });

  it("--memory gives the guest more RAM", () => {
    const r = unmachine(["run", "tiny", "--memory", "256", "--headless", "--exec", "awk '/MemTotal/ {print $2}' /proc/meminfo"]);
    expect(r.status).toBe(0);
    // The kernel keeps some for itself: of 128 MiB the guest sees ~112, of 256 ~222.
    expect(Number(r.stdout)).toBeGreaterThan(200 * 1024);
  });

  it("--until exits 0 on a match and 1 with the last screen on a timeout", () => {
    const ok = unmachine(["run", "tiny", "--headless", "--until", "tiny:/# ", "--timeout", "120"]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe("tiny:/# \n");
    const timeout = unmachine(["run", "tiny", "--headless", "--until", "words the guest never prints", "--timeout", "6"]);
    expect(timeout.status).toBe(1);
    expect(timeout.stderr).toMatch(/timed out after 6 s waiting for/);
    expect(timeout.stderr).toMatch(/--- last screen ---/);
  });

  it("a guest that makes the emulator fault gets one clear message and exit 1, not a trace or a hang", () => {
    // A multiboot kernel whose a.out header asks to be loaded far outside the guest's RAM.
    const header = Buffer.alloc(4096 + 32, 0x90);
    const magic = 0x1badb002;
    const flags = 0x00010003;
    [magic, flags, (-(magic + flags)) >>> 0, 0, 0xf0000000, 0xf0100000, 0xf0200000, 0xf0000020].forEach((v, i) => header.writeUInt32LE(v, i * 4));
    const path = join(mkdtempSync(join(tmpdir(), "unmachine-fault-")), "broken-kernel.bin");
    writeFileSync(path, header);
    const r = unmachine(["run", path, "--headless", "--until", "never printed", "--timeout", "60"], 90_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^unmachine: broken-kernel\.bin: the emulator stopped on a fault: /m);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toMatch(/timed out/);
  });

  it("boots a kernel whose size is not a multiple of four bytes", () => {
    // v86's loader views a kernel as 16- and 32-bit words: an odd length used to fault.
    const kernel = tinyPlan().machine.media.bzimage;
    if (kernel?.kind !== "file") throw new Error("tiny boots a kernel from a file");
    const path = join(mkdtempSync(join(tmpdir(), "unmachine-odd-")), "odd-kernel");
    writeFileSync(path, Buffer.concat([readFileSync(kernel.path), Buffer.from([0x2a])]));
    const r = unmachine(["run", path, "--headless", "--until", "Linux version 6\\.", "--timeout", "90"], 120_000);
    expect(r.stderr).not.toMatch(/fault/);
    expect(r.status).toBe(0);
  });

  it("--pty exposes the console on a host PTY that a terminal program can use", async () => {
    const child = spawn(process.execPath, [bin, "run", "tiny", "--pty"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const path = await new Promise<string>((resolvePath, reject) => {
        child.stdout.once("data", (d: Buffer) => resolvePath(d.toString().trim()));
        child.once("exit", (code) => reject(new Error(`exited ${code}`)));
      });
      expect(path).toMatch(/^\/dev\/pts\/\d+$/);
      const reader = createReadStream(path);
      const writer = createWriteStream(path);
      let seen = "";
      reader.on("data", (d) => (seen += d.toString()));
      reader.on("error", () => {}); // EIO once the guest is gone
      writer.on("error", () => {});
      await expect.poll(() => seen, { timeout: 120_000, interval: 500 }).toMatch(/tiny:\/# /);
      writer.write("echo pty-$((40+2))\r");
      await expect.poll(() => seen, { timeout: 30_000, interval: 200 }).toContain("pty-42");
      reader.destroy();
      writer.destroy();
    } finally {
      child.kill("SIGINT");
    }
  });
});
