// The control socket of a running guest (`unmachine media NAME ...`): reachable under any
// name, again after a run died and left its socket behind, never in a folder someone else
// could have made, and one request per connection runs once however many bytes follow it.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { controlDir, ensureControlDir, runningNames, sendControl, serveControl, type ControlGuest } from "../../../main/cli/control.js";

const uid = process.getuid?.() ?? 0;
const saved = { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR, TMPDIR: process.env.TMPDIR, UNMACHINE_DATA: process.env.UNMACHINE_DATA };
let scratch: string;

function fakeGuest(): ControlGuest & { ejects: number } {
  const guest = {
    ejects: 0,
    eject: async () => {
      guest.ejects++;
    },
    insert: async () => {},
    balloon: async (memory: number) => {
      if (memory < 48) throw new Error("memory must be a whole number of MiB from 48 to 128 (its boot RAM), got 16");
      return memory;
    },
  };
  return guest;
}

/** What the control folder of this test's library holds. */
function sockets(): string[] {
  return readdirSync(controlDir());
}

/** A socket file left behind by a process killed while it listened on `path`. */
async function leaveDeadSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ["-e", "require('net').createServer().listen(process.argv[1], () => console.log('up'))", path], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolveUp) => child.stdout.once("data", () => resolveUp()));
  child.kill("SIGKILL");
  await new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
}

function rawRequest(path: string, bytes: string): Promise<string> {
  return new Promise((resolveReply, reject) => {
    let reply = "";
    const socket = connect(path, () => socket.write(bytes));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (reply += chunk));
    socket.on("end", () => resolveReply(reply));
    socket.on("error", reject);
  });
}

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "unmachine-control-"));
  process.env.XDG_RUNTIME_DIR = join(scratch, "run");
  mkdirSync(process.env.XDG_RUNTIME_DIR, { mode: 0o700 });
  process.env.UNMACHINE_DATA = join(scratch, "data");
});

afterEach(() => {
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe("control socket", () => {
  it("serves a guest with a 200-character name, again after the first run left its socket behind", async () => {
    const name = "g".repeat(200);
    const first = await serveControl(name, fakeGuest());
    expect(await sendControl(first.name, { type: "eject", drive: "cdrom" })).toEqual({ ok: true, message: "ejected the CD" });
    const [left] = sockets();
    first.dispose();
    await leaveDeadSocket(join(controlDir(), left!));

    const guest = fakeGuest();
    const second = await serveControl(name, guest);
    try {
      expect(second.name).toBe(first.name);
      expect(await sendControl(second.name, { type: "eject", drive: "fda" })).toEqual({ ok: true, message: "ejected the floppy" });
      // The full name reaches the same guest.
      expect(await sendControl(name, { type: "eject", drive: "fda" })).toMatchObject({ ok: true });
      expect(guest.ejects).toBe(2);
    } finally {
      second.dispose();
    }
    expect(sockets()).toEqual([]);
  });

  it("lists only live runs, and only of its own library (data folder)", async () => {
    const mine = await serveControl("tiny", fakeGuest());
    const other = { ...process.env, UNMACHINE_DATA: join(scratch, "other-data") };
    expect(controlDir(other)).not.toBe(controlDir());
    // The same library reached through a symlink, made before or after: the same folder.
    symlinkSync(scratch, join(scratch, "link"));
    const linked = { ...process.env, UNMACHINE_DATA: join(scratch, "link", "data") };
    expect(controlDir(linked)).toBe(controlDir());
    mkdirSync(join(scratch, "data"));
    expect(controlDir(linked)).toBe(controlDir());
    const theirs = await serveControl("tiny", fakeGuest(), controlDir(other));
    try {
      await leaveDeadSocket(join(controlDir(), "crashed.sock"));
      expect(readdirSync(controlDir()).sort()).toEqual(["crashed.sock", "tiny.sock"]);
      expect(await runningNames()).toEqual(["tiny"]);
      mine.dispose();
      // The other library's tiny still runs; this library's has none.
      expect(await runningNames()).toEqual([]);
      expect(await runningNames(controlDir(other))).toEqual(["tiny"]);
      await expect(sendControl("tiny", { type: "eject", drive: "fda" })).rejects.toThrow('no running guest named "tiny" (running: none)');
      await expect(sendControl("crashed", { type: "eject", drive: "fda" })).rejects.toThrow('no running guest named "crashed" (running: none)');
    } finally {
      mine.dispose();
      theirs.dispose();
    }
  });

  it("gives a second live run of the same guest a name of its own", async () => {
    const a = fakeGuest();
    const b = fakeGuest();
    const first = await serveControl("tiny", a);
    const second = await serveControl("tiny", b);
    try {
      expect([first.name, second.name]).toEqual(["tiny", "tiny-2"]);
      await sendControl("tiny-2", { type: "eject", drive: "fda" });
      expect([a.ejects, b.ejects]).toEqual([0, 1]);
    } finally {
      first.dispose();
      second.dispose();
    }
  });

  it("runs one request per connection once, whatever follows it", async () => {
    const guest = fakeGuest();
    const control = await serveControl("tiny", guest);
    try {
      const path = join(controlDir(), "tiny.sock");
      const eject = JSON.stringify({ type: "eject", drive: "cdrom" });
      const reply = await rawRequest(path, `${eject}\n${eject}\n${eject}\ntrailing bytes`);
      expect(reply).toBe(`${JSON.stringify({ ok: true, message: "ejected the CD" })}\n`);
      expect(guest.ejects).toBe(1);

      // The request and what follows in separate writes, some after the answer came.
      const socket = connect({ path, allowHalfOpen: true });
      const closed = new Promise<void>((resolveClose) => socket.once("close", () => resolveClose()));
      socket.on("error", () => {});
      let second = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => (second += chunk));
      socket.write(eject);
      await new Promise((r) => setTimeout(r, 50));
      socket.write(`\n${eject}\n`);
      await new Promise((r) => setTimeout(r, 50));
      socket.write(`${eject}\n${"x".repeat(1000)}`);
      await new Promise((r) => setTimeout(r, 50));
      socket.end();
      await closed;
      expect(second.trim().split("\n")).toHaveLength(1);
      expect(guest.ejects).toBe(2);
    } finally {
      control.dispose();
    }
  });

  it("refuses a fallback folder that is a symlink or open to others, and uses none of it", async () => {
    delete process.env.XDG_RUNTIME_DIR;
    const base = join(scratch, "tmp");
    mkdirSync(base);
    process.env.TMPDIR = base;
    const planted = controlDir();
    expect(planted).toMatch(new RegExp(`^${base}/unmachine-${uid}-[0-9a-f]{12}$`));

    const elsewhere = join(scratch, "elsewhere");
    mkdirSync(elsewhere, { mode: 0o755 });
    symlinkSync(elsewhere, planted);
    await expect(serveControl("tiny", fakeGuest())).rejects.toThrow(/not a private folder/);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(lstatSync(elsewhere).mode & 0o777).toBe(0o755);
    expect(() => ensureControlDir(planted)).toThrow(/is a symlink/);

    const open = join(scratch, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => ensureControlDir(open)).toThrow(/mode 0777/);
    expect(readdirSync(open)).toEqual([]);
  });

  it("makes its fallback folder private, even with umask 0", async () => {
    delete process.env.XDG_RUNTIME_DIR;
    const base = join(scratch, "tmp");
    mkdirSync(base);
    process.env.TMPDIR = base;
    const old = process.umask(0);
    try {
      const control = await serveControl("tiny", fakeGuest());
      control.dispose();
    } finally {
      process.umask(old);
    }
    const st = lstatSync(controlDir());
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
  });
});
