// The host-folder backend runs the shared 9P conformance suite on fresh temporary folders, plus
// what only a host folder can get wrong: symlinks that point out of the share (never followed,
// whoever made them, whenever they were swapped in), guest owners and modes kept in the mapped
// store across restarts without chown, and the store itself invisible to the guest.

import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, linkSync, existsSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Errno, P9Error } from "../../../core/p9/errno.js";
import { AT_REMOVEDIR, FileMode, GetattrMask, OpenFlags, SetattrValid } from "../../../core/p9/messages.js";
import { P9Server } from "../../../core/p9/server.js";
import { SharesBackend } from "../../../core/p9/shares-backend.js";
import { DescriptorBudget, guestDescriptorShare, openFileLimit } from "../../../main/p9/host-dir.js";
import { ATTRS_FILE, ATTRS_LOG, HostFolderBackend } from "../../../main/p9/host-folder-backend.js";
import { runConformance, TestClient } from "../../core/p9/conformance.js";

const base = mkdtempSync(join(tmpdir(), "unmachine-p9-"));
let count = 0;
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A fresh share folder with a sibling folder outside it. */
function freshShare(): { share: string; outside: string } {
  const dir = join(base, `case-${++count}`);
  const share = join(dir, "share");
  const outside = join(dir, "outside");
  mkdirSync(share, { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, "secret"), "outside the share");
  return { share, outside };
}

/** Servers and backends a test opened: closed when it ends, as a session's end closes them. */
const opened: { server: P9Server; backend: { close(): Promise<void> } }[] = [];
afterEach(async () => {
  for (const { server, backend } of opened.splice(0)) {
    server.dispose();
    await server.closed;
    await backend.close();
  }
});

async function mountShare(share: string, options: ConstructorParameters<typeof P9Server>[1] = {}): Promise<TestClient> {
  const backend = new HostFolderBackend(share);
  const server = new P9Server(backend, options);
  opened.push({ server, backend });
  const c = new TestClient(server);
  await c.mount();
  return c;
}

/** The share in `backend` as "s" behind the shares backend, with a quota: the policy production uses. */
async function mountQuota(backend: HostFolderBackend, quotaBytes: number): Promise<TestClient> {
  const server = new P9Server(new SharesBackend([{ tag: "s", backend, readOnly: false, quotaBytes }]));
  opened.push({ server, backend });
  const c = new TestClient(server);
  await c.mount();
  return c;
}

const none = { mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };

/** The store's live entries (file key -> last record), read from the log as a crash would leave it. */
function storeEntries(share: string): Map<string, Record<string, unknown>> {
  const live = new Map<string, Record<string, unknown>>();
  if (!existsSync(join(share, ATTRS_LOG))) return live;
  for (const line of readFileSync(join(share, ATTRS_LOG), "utf8").split("\n")) {
    if (line === "") continue;
    const record = JSON.parse(line) as Record<string, unknown>;
    if (record.gone) live.delete(String(record.f));
    else live.set(String(record.f), record);
  }
  return live;
}

/** What is outside the share, to check nothing there changed. */
function outsideState(outside: string): string {
  return readdirSync(outside).map((n) => {
    const st = lstatSync(join(outside, n));
    return `${n} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${readFileSync(join(outside, n), "utf8")}`;
  }).join("\n");
}

runConformance("host folder backend", () => new HostFolderBackend(freshShare().share));

describe("host folder backend: confinement", () => {
  it("returns host symlinks to /etc and ../outside as links and never follows them", async () => {
    const { share, outside } = freshShare();
    symlinkSync("/etc", join(share, "etc"));
    symlinkSync("../outside", join(share, "out"));
    symlinkSync("../outside/secret", join(share, "secret"));
    const before = outsideState(outside);
    const c = await mountShare(share);

    const types = Object.fromEntries((await c.list("")).map((e) => [e.name, e.type]));
    expect(types).toMatchObject({ etc: 10, out: 10, secret: 10 });
    for (const [name, target] of [["etc", "/etc"], ["out", "../outside"], ["secret", "../outside/secret"]]) {
      const fid = await c.walk(name!);
      expect((await c.rpc({ type: "Treadlink", fid })).target).toBe(target);
      expect((await c.rpc({ type: "Tgetattr", fid, requestMask: GetattrMask.BASIC })).mode & FileMode.TYPE).toBe(FileMode.LNK);
      expect(await c.fail({ type: "Tlopen", fid, flags: OpenFlags.RDONLY })).toBe(Errno.ELOOP);
      expect(await c.fail({ type: "Tlopen", fid, flags: OpenFlags.RDWR | OpenFlags.TRUNC })).toBe(Errno.ELOOP);
      expect(await c.fail({ type: "Tsetattr", fid, valid: SetattrValid.SIZE, ...none })).toBe(Errno.EINVAL);
      expect(await c.fail({ type: "Tlcreate", fid, name: "planted", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 })).toBe(Errno.ENOTDIR);
      expect(await c.fail({ type: "Tmkdir", dfid: fid, name: "planted", mode: 0o40755, gid: 0 })).toBe(Errno.ENOTDIR);
      expect(await c.fail({ type: "Treaddir", fid, offset: 0n, count: 8192 })).toBe(Errno.ENOTDIR);
      // chmod of the link itself changes the guest's view only.
      await c.rpc({ type: "Tsetattr", fid, valid: SetattrValid.MODE | SetattrValid.MTIME, ...none, mode: 0o600 });
    }
    // Walking through a link stops at the link.
    const through = c.newFid();
    expect((await c.rpc({ type: "Twalk", fid: 0, newfid: through, wnames: ["out", "secret"] })).wqids.length).toBe(1);
    expect((await c.rpc({ type: "Twalk", fid: 0, newfid: through, wnames: ["etc", "passwd"] })).wqids.length).toBe(1);
    // Hard-linking or removing the link touches the link, not its target.
    const secret = await c.walk("secret");
    await c.rpc({ type: "Tlink", dfid: 0, fid: secret, name: "secret2" });
    expect(lstatSync(join(share, "secret2")).isSymbolicLink()).toBe(true);
    await c.rpc({ type: "Tunlinkat", dirfid: 0, name: "out", flags: 0 });
    await c.rpc({ type: "Trenameat", olddirfid: 0, oldname: "etc", newdirfid: 0, newname: "etc2" });
    expect(lstatSync(join(share, "etc2")).isSymbolicLink()).toBe(true);
    expect(outsideState(outside)).toBe(before);
    expect(existsSync("/etc/planted")).toBe(false);
  });

  it("refuses to work through a folder swapped for a symlink after the guest walked it", async () => {
    const { share, outside } = freshShare();
    mkdirSync(join(share, "dir"));
    writeFileSync(join(share, "dir", "secret"), "inside");
    const before = outsideState(outside);
    const c = await mountShare(share);
    const dir = await c.walk("dir");
    const file = await c.walk("dir/secret");
    // The host (or the guest, by renaming) replaces dir with a link pointing outside.
    renameSync(join(share, "dir"), join(share, "moved"));
    symlinkSync("../outside", join(share, "dir"));

    const errno = [Errno.ENOENT, Errno.ENOTDIR];
    expect(errno).toContain(await c.fail({ type: "Tgetattr", fid: file, requestMask: GetattrMask.BASIC }));
    expect(errno).toContain(await c.fail({ type: "Tlopen", fid: file, flags: OpenFlags.RDWR | OpenFlags.TRUNC }));
    expect(errno).toContain(await c.fail({ type: "Tsetattr", fid: file, valid: SetattrValid.SIZE | SetattrValid.MODE, ...none }));
    expect(errno).toContain(await c.fail({ type: "Tlcreate", fid: dir, name: "planted", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 }));
    expect(errno).toContain(await c.fail({ type: "Tmkdir", dfid: dir, name: "planted", mode: 0o40755, gid: 0 }));
    expect(errno).toContain(await c.fail({ type: "Tunlinkat", dirfid: dir, name: "secret", flags: 0 }));
    expect(errno).toContain(await c.fail({ type: "Tsymlink", fid: dir, name: "planted", symtgt: "x", gid: 0 }));
    expect(errno).toContain(await c.fail({ type: "Trenameat", olddirfid: dir, oldname: "secret", newdirfid: 0, newname: "stolen" }));
    expect(errno).toContain(await c.fail({ type: "Tlink", dfid: 0, fid: file, name: "stolen" }));
    expect(errno).toContain(await c.fail({ type: "Twalk", fid: dir, newfid: c.newFid(), wnames: ["secret"] }));
    const open = await c.walk("dir");
    expect(await c.fail({ type: "Tlopen", fid: open, flags: OpenFlags.RDONLY })).toBe(Errno.ELOOP);
    expect(outsideState(outside)).toBe(before);
    expect(readFileSync(join(share, "moved", "secret"), "utf8")).toBe("inside");
    expect(existsSync(join(share, "stolen"))).toBe(false);
  });

  it("refuses a share whose folder was replaced by a symlink since it was chosen", async () => {
    const { share, outside } = freshShare();
    mkdirSync(join(share, "inner"));
    // Another guest sharing the folder above swaps "inner" for a link to the outside.
    const above = await mountShare(share);
    await above.rpc({ type: "Trenameat", olddirfid: 0, oldname: "inner", newdirfid: 0, newname: "old" });
    await above.rpc({ type: "Tsymlink", fid: 0, name: "inner", symtgt: outside, gid: 0 });
    const backend = new HostFolderBackend(join(share, "inner"));
    await expect(backend.root()).rejects.toThrow(/"inner" is not a folder/);
    const c = new TestClient(new P9Server(backend));
    await c.send({ type: "Tversion", msize: 65536, version: "9P2000.L" }, 0xffff);
    expect(await c.fail({ type: "Tattach", fid: 0, afid: 0xffffffff, uname: "", aname: "", nUname: 0 })).toBe(Errno.ENOTDIR);
  });

  it("keeps a file opened before a swap bound to that file", async () => {
    const { share, outside } = freshShare();
    writeFileSync(join(share, "f"), "mine");
    const c = await mountShare(share);
    const fid = await c.walk("f");
    await c.rpc({ type: "Tlopen", fid, flags: OpenFlags.RDWR });
    rmSync(join(share, "f"));
    symlinkSync("../outside/secret", join(share, "f"));
    await c.rpc({ type: "Twrite", fid, offset: 0n, data: new TextEncoder().encode("MINE") });
    expect(readFileSync(join(outside, "secret"), "utf8")).toBe("outside the share");
  });
});

describe("host folder backend: a folder swapped for a symlink while the guest works in it", () => {
  it("never reads, writes, creates, removes or renames outside the share", async () => {
    const { share, outside } = freshShare();
    mkdirSync(join(share, "d"));
    writeFileSync(join(share, "d", "secret"), "inside");
    writeFileSync(join(share, "d", "victim"), "inside");
    writeFileSync(join(outside, "victim"), "outside victim");
    const before = outsideState(outside);
    // A host process swaps d for a link to the outside folder and back, as fast as it can.
    const swapper = spawn(process.execPath, ["-e", `
      const fs = require("node:fs");
      const d = ${JSON.stringify(join(share, "d"))};
      const end = Date.now() + 2500;
      while (Date.now() < end) {
        try { fs.renameSync(d, d + ".real"); fs.symlinkSync(${JSON.stringify(outside)}, d); } catch {}
        try { fs.unlinkSync(d); fs.renameSync(d + ".real", d); } catch {}
      }
      try { fs.unlinkSync(d); } catch {}
      try { fs.renameSync(d + ".real", d); } catch {}
    `], { stdio: "ignore" });
    const done = new Promise((resolve) => swapper.on("exit", resolve));
    let running = true;
    void done.then(() => (running = false));

    const c = await mountShare(share);
    const seen = new Set<string>();
    const text = (data: Uint8Array): string => new TextDecoder().decode(data);
    let rounds = 0;
    while (running) {
      rounds++;
      const d = c.newFid();
      const walked = await c.send({ type: "Twalk", fid: 0, newfid: d, wnames: ["d"] });
      if (walked.type !== "Rwalk" || walked.wqids.length !== 1) continue;
      const tries: Parameters<TestClient["send"]>[0][] = [
        { type: "Tlcreate", fid: c.newFid(), name: "planted", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 },
        { type: "Tmkdir", dfid: d, name: "planted-dir", mode: 0o40755, gid: 0 },
        { type: "Tsymlink", fid: d, name: "planted-link", symtgt: "x", gid: 0 },
        { type: "Tunlinkat", dirfid: d, name: "victim", flags: 0 },
        { type: "Trenameat", olddirfid: d, oldname: "secret", newdirfid: 0, newname: "stolen" },
        { type: "Tlink", dfid: 0, fid: d, name: "never" },
      ];
      // Tlcreate needs a fid of its own for the folder.
      const createFid = c.newFid();
      await c.send({ type: "Twalk", fid: d, newfid: createFid, wnames: [] });
      (tries[0] as { fid: number }).fid = createFid;
      for (const request of tries) await c.send(request);
      // Put back what a successful try moved inside the share, so every round tries again.
      await c.send({ type: "Trenameat", olddirfid: 0, oldname: "stolen", newdirfid: d, newname: "secret" });
      for (const name of ["planted", "planted-link"]) await c.send({ type: "Tunlinkat", dirfid: d, name, flags: 0 });
      await c.send({ type: "Tunlinkat", dirfid: d, name: "planted-dir", flags: AT_REMOVEDIR });
      const f = c.newFid();
      const w = await c.send({ type: "Twalk", fid: d, newfid: f, wnames: ["secret"] });
      if (w.type === "Rwalk" && w.wqids.length === 1) {
        await c.send({ type: "Tsetattr", fid: f, valid: SetattrValid.MODE, ...none, mode: 0o4777 });
        if ((await c.send({ type: "Tlopen", fid: f, flags: OpenFlags.RDWR })).type === "Rlopen") {
          const r = await c.send({ type: "Tread", fid: f, offset: 0n, count: 100 });
          if (r.type === "Rread") seen.add(text(r.data));
          await c.send({ type: "Twrite", fid: f, offset: 0n, data: new TextEncoder().encode("inside") });
        }
        await c.send({ type: "Tclunk", fid: f });
      }
      await c.send({ type: "Tclunk", fid: d });
      await c.send({ type: "Tclunk", fid: createFid });
    }
    await done;
    expect(rounds).toBeGreaterThan(20);
    expect([...seen].filter((t) => t !== "inside")).toEqual([]);
    expect(outsideState(outside)).toBe(before);
    expect(lstatSync(join(outside, "secret")).mode & 0o7000).toBe(0);
  });
});

describe("host folder backend: mapped store", () => {
  it("keeps guest owners, modes and device numbers across restarts without chown", async () => {
    const { share } = freshShare();
    const hostUid = process.getuid!();
    const first = await mountShare(share);
    await first.writeFile("suid", "binary", 0o4755, 0);
    await first.mkdir("home", 0o700);
    const home = await first.walk("home");
    await first.rpc({ type: "Tsetattr", fid: home, valid: SetattrValid.UID | SetattrValid.GID, ...none, uid: 1000, gid: 1000 });
    await first.writeFile("home/notes", "mine", 0o600, 1000);
    const notes = await first.walk("home/notes");
    await first.rpc({ type: "Tsetattr", fid: notes, valid: SetattrValid.UID | SetattrValid.MODE, ...none, uid: 1000, mode: 0o640 });
    await first.rpc({ type: "Tmknod", dfid: 0, name: "tty", mode: FileMode.CHR | 0o620, major: 4, minor: 1, gid: 5 });
    const root = await first.walk("");
    await first.rpc({ type: "Tsymlink", fid: root, name: "link", symtgt: "suid", gid: 7 });
    const rootAttr = await first.walk("");
    await first.rpc({ type: "Tsetattr", fid: rootAttr, valid: SetattrValid.MODE, ...none, mode: 0o1777 });

    const again = await mountShare(share);
    const suid = await again.getattr("suid");
    expect([suid.mode, suid.uid, suid.gid]).toEqual([FileMode.REG | 0o4755, 0, 0]);
    const homeAttr = await again.getattr("home");
    expect([homeAttr.mode, homeAttr.uid, homeAttr.gid]).toEqual([FileMode.DIR | 0o700, 1000, 1000]);
    const notesAttr = await again.getattr("home/notes");
    expect([notesAttr.mode, notesAttr.uid, notesAttr.gid]).toEqual([FileMode.REG | 0o640, 1000, 1000]);
    const tty = await again.getattr("tty");
    expect([tty.mode, tty.rdev, tty.gid, tty.size]).toEqual([FileMode.CHR | 0o620, 0x401n, 5, 0n]);
    expect((await again.list("")).find((e) => e.name === "tty")?.type).toBe(2);
    expect((await again.getattr("link")).gid).toBe(7);
    expect((await again.getattr("")).mode).toBe(FileMode.DIR | 0o1777);

    // On the host: files stay the host user's, nothing became set-uid or world-writable.
    for (const name of ["suid", "home", "home/notes", "tty", ""]) {
      const st = lstatSync(join(share, name));
      expect(st.uid).toBe(hostUid);
      expect(st.mode & 0o7022).toBe(0);
    }
    expect(lstatSync(join(share, "tty")).isFile()).toBe(true);
  });

  it("moves attributes with renames and frees them with removals", async () => {
    const { share } = freshShare();
    const c = await mountShare(share);
    await c.mkdir("a");
    await c.mkdir("b");
    await c.writeFile("a/f", "x", 0o751, 42);
    await c.writeFile("b/f", "replaced", 0o600, 9);
    const a = await c.walk("a");
    const b = await c.walk("b");
    await c.rpc({ type: "Trenameat", olddirfid: a, oldname: "f", newdirfid: b, newname: "f" });
    await c.rpc({ type: "Trenameat", olddirfid: 0, oldname: "b", newdirfid: a, newname: "inner" });
    const again = await mountShare(share);
    const moved = await again.getattr("a/inner/f");
    expect([moved.mode, moved.gid]).toEqual([FileMode.REG | 0o751, 42]);
    expect((await again.getattr("a/inner")).mode).toBe(FileMode.DIR | 0o755);
    await again.rpc({ type: "Tunlinkat", dirfid: await again.walk("a/inner"), name: "f", flags: 0 });
    await again.mkdir("c");
    await again.rpc({ type: "Trenameat", olddirfid: await again.walk("a"), oldname: "inner", newdirfid: 0, newname: "c" });
    await again.rpc({ type: "Tunlinkat", dirfid: 0, name: "c", flags: AT_REMOVEDIR });
    expect(readdirSync(share).filter((n) => !n.startsWith(ATTRS_FILE))).toEqual(["a"]);
    expect(await again.names("")).toEqual(["a"]);
    // Only "a" is left: the store forgot every file that is gone.
    const lines = storeEntries(share);
    expect(lines.size).toBe(1);
  });

  it("removes an older per-folder store with the folder that holds it", async () => {
    const { share } = freshShare();
    mkdirSync(join(share, "old"));
    writeFileSync(join(share, "old", ATTRS_FILE), JSON.stringify({ version: 1, entries: [] }));
    const c = await mountShare(share);
    expect(await c.names("old")).toEqual([]);
    await c.rpc({ type: "Tunlinkat", dirfid: 0, name: "old", flags: AT_REMOVEDIR });
    expect(existsSync(join(share, "old"))).toBe(false);
  });

  it("hides the store from listings and refuses it to walk, create, rename and remove", async () => {
    const { share } = freshShare();
    const c = await mountShare(share);
    await c.writeFile("f", "x", 0o600, 3);
    await c.mkdir("d");
    expect(existsSync(join(share, ATTRS_LOG))).toBe(true);
    expect(await c.names("")).toEqual(["d", "f"]);
    expect(await c.names("d")).toEqual([]);
    for (const name of [ATTRS_FILE, ATTRS_LOG, `${ATTRS_FILE}.123.tmp`]) {
      expect(await c.fail({ type: "Twalk", fid: 0, newfid: c.newFid(), wnames: [name] })).toBe(Errno.ENOENT);
      expect((await c.rpc({ type: "Twalk", fid: 0, newfid: c.newFid(), wnames: ["d", name] })).wqids.length).toBe(1);
      const dir = await c.walk("");
      expect(await c.fail({ type: "Tlcreate", fid: dir, name, flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 })).toBe(Errno.EACCES);
      expect(await c.fail({ type: "Tmkdir", dfid: 0, name, mode: 0o40755, gid: 0 })).toBe(Errno.EACCES);
      expect(await c.fail({ type: "Tsymlink", fid: 0, name, symtgt: "f", gid: 0 })).toBe(Errno.EACCES);
      expect(await c.fail({ type: "Tlink", dfid: 0, fid: await c.walk("f"), name })).toBe(Errno.EACCES);
      expect(await c.fail({ type: "Trenameat", olddirfid: 0, oldname: "f", newdirfid: 0, newname: name })).toBe(Errno.EACCES);
      expect(await c.fail({ type: "Trenameat", olddirfid: 0, oldname: name, newdirfid: 0, newname: "stolen" })).toBe(Errno.ENOENT);
      expect(await c.fail({ type: "Tunlinkat", dirfid: 0, name, flags: 0 })).toBe(Errno.ENOENT);
    }
    expect((await c.getattr("f")).gid).toBe(3);
  });
});

describe("host folder backend: the share", () => {
  it("counts what is already in the share toward the quota, a hard-linked file's bytes once", async () => {
    const { share } = freshShare();
    writeFileSync(join(share, "a"), new Uint8Array(3000));
    mkdirSync(join(share, "sub"));
    writeFileSync(join(share, "sub", "b"), new Uint8Array(2000));
    linkSync(join(share, "a"), join(share, "sub", "a-again"));
    symlinkSync("a", join(share, "l"));
    // What the host holds: each inode's bytes once, plus its names (a folder's are in its size).
    const inodes = new Map<number, number>();
    for (const name of ["", "a", "sub", "sub/b", "sub/a-again", "l"]) {
      const st = lstatSync(join(share, name));
      inodes.set(st.ino, st.size + 512 * (st.isDirectory() ? 1 : st.nlink));
    }
    const held = [...inodes.values()].reduce((a, b) => a + b, 0);
    const backend = new HostFolderBackend(share);
    expect(await backend.usedBytes()).toBe(held);
    const c = await mountQuota(backend, held + 512 + 999);
    const dir = await c.walk("s");
    await c.rpc({ type: "Tlcreate", fid: dir, name: "c", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 });
    const store = await backend.usedBytes() - held - 512;
    expect(store).toBeGreaterThan(0);
    expect((await c.rpc({ type: "Twrite", fid: dir, offset: 0n, data: new Uint8Array(5000) })).count).toBe(999 - store);
    expect(lstatSync(join(share, "c")).size).toBe(999 - store);
    expect(await backend.usedBytes()).toBe(held + 512 + 999);
  });

  it("charges a file that is open but removed or renamed over until it is closed", async () => {
    const { share } = freshShare();
    const backend = new HostFolderBackend(share);
    const quota = (await backend.usedBytes()) + 64 * 1024;
    const c = await mountQuota(backend, quota);
    // Removed while open: 4 MiB written to it must stop at the quota.
    const f = await c.walk("s");
    await c.rpc({ type: "Tlcreate", fid: f, name: "gone", flags: OpenFlags.RDWR | OpenFlags.CREAT, mode: 0o100644, gid: 0 });
    await c.rpc({ type: "Tunlinkat", dirfid: await c.walk("s"), name: "gone", flags: 0 });
    let stored = 0;
    let errno = 0;
    for (let at = 0; at < 4 * 1024 * 1024 && errno === 0; ) {
      const reply = await c.send({ type: "Twrite", fid: f, offset: BigInt(at), data: new Uint8Array(32 * 1024).fill(7) });
      if (reply.type === "Rlerror") errno = reply.ecode;
      else if (reply.type === "Rwrite") {
        stored += reply.count;
        at += reply.count;
      }
    }
    expect(errno).toBe(Errno.ENOSPC);
    expect(stored).toBeLessThan(64 * 1024);
    expect(await backend.usedBytes()).toBeLessThanOrEqual(quota);
    // Closing it frees its bytes.
    await c.clunk(f);
    expect(await backend.usedBytes()).toBeLessThan(quota - 32 * 1024);

    // Renamed over while open: the old file still counts.
    await c.writeFile("s/keep", "k");
    const g = await c.walk("s/keep");
    await c.rpc({ type: "Tlopen", fid: g, flags: OpenFlags.RDWR });
    await c.writeFile("s/other", "o");
    await c.rpc({ type: "Trenameat", olddirfid: await c.walk("s"), oldname: "other", newdirfid: await c.walk("s"), newname: "keep" });
    const before = await backend.usedBytes();
    await c.rpc({ type: "Twrite", fid: g, offset: 0n, data: new Uint8Array(16 * 1024) });
    expect(await backend.usedBytes()).toBeGreaterThanOrEqual(before + 16 * 1024 - 1);
  });

  it("charges every name: hard links and the folder listings that hold them", async () => {
    const { share } = freshShare();
    const backend = new HostFolderBackend(share);
    const quota = (await backend.usedBytes()) + 64 * 1024;
    const c = await mountQuota(backend, quota);
    await c.writeFile("s/f", "x");
    await c.mkdir("s/d");
    const f = await c.walk("s/f");
    const d = await c.walk("s/d");
    let made = 0;
    for (; made < 3000; made++) {
      const reply = await c.send({ type: "Tlink", dfid: d, fid: f, name: `${made}`.padStart(250, "L") });
      if (reply.type === "Rlerror") {
        expect(reply.ecode).toBe(Errno.ENOSPC);
        break;
      }
    }
    expect(made).toBeLessThan(200);
    // What the host holds for the folder and the file stays within the quota (one name's slack).
    const held = lstatSync(join(share, "d")).size + lstatSync(join(share, "f")).nlink * 512;
    expect(held).toBeLessThanOrEqual(64 * 1024 + 4096);
    expect(await backend.usedBytes()).toBeLessThanOrEqual(quota + 4096);
  });

  it("charges empty files, folders, links and the attribute store", async () => {
    const { share } = freshShare();
    const backend = new HostFolderBackend(share);
    const quota = (await backend.usedBytes()) + 16 * 1024;
    const c = await mountQuota(backend, quota);
    let made = 0;
    for (; made < 200; made++) {
      const reply = await c.send({ type: "Tmkdir", dfid: await c.walk("s"), name: `d${made}`, mode: 0o40755, gid: 0 });
      if (reply.type === "Rlerror") {
        expect(reply.ecode).toBe(Errno.ENOSPC);
        break;
      }
      const file = await c.walk("s");
      if ((await c.send({ type: "Tlcreate", fid: file, name: `e${made}`, flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 })).type === "Rlerror") break;
      await c.clunk(file);
    }
    // Each folder and empty file costs at least its entry: far fewer than 200 fit in 16 KiB.
    expect(made).toBeGreaterThan(2);
    expect(made).toBeLessThan(20);
    expect(await backend.usedBytes()).toBeLessThanOrEqual(quota + 4096 + 512);
    // Mode changes grow the store, which counts too.
    const used = await backend.usedBytes();
    const e0 = await c.walk("s/e0");
    for (let i = 0; i < 10; i++) await c.send({ type: "Tsetattr", fid: e0, valid: SetattrValid.MODE, ...none, mode: 0o600 + i });
    expect(await backend.usedBytes()).toBeGreaterThan(used);
  });

  it("says which folder is missing", async () => {
    const backend = new HostFolderBackend(join(base, "no-such-folder"));
    await expect(backend.root()).rejects.toThrow(P9Error);
    await expect(backend.root()).rejects.toThrow(/no-such-folder/);
    const c = new TestClient(new P9Server(backend));
    await c.send({ type: "Tversion", msize: 65536, version: "9P2000.L" }, 0xffff);
    expect(await c.fail({ type: "Tattach", fid: 0, afid: 0xffffffff, uname: "", aname: "", nUname: 0 })).toBe(Errno.ENOENT);
  });
});

describe("host folder backend: metadata belongs to the file", () => {
  /** Makes a file of each type at `name` in the share root through the guest's calls. */
  const kinds: Record<string, (c: TestClient, name: string) => Promise<void>> = {
    file: (c, name) => c.writeFile(name, "data", 0o644, 0),
    fifo: async (c, name) => void (await c.rpc({ type: "Tmknod", dfid: 0, name, mode: FileMode.FIFO | 0o644, major: 0, minor: 0, gid: 0 })),
    chardev: async (c, name) => void (await c.rpc({ type: "Tmknod", dfid: 0, name, mode: FileMode.CHR | 0o644, major: 4, minor: 2, gid: 0 })),
    blockdev: async (c, name) => void (await c.rpc({ type: "Tmknod", dfid: 0, name, mode: FileMode.BLK | 0o644, major: 8, minor: 1, gid: 0 })),
    socket: async (c, name) => void (await c.rpc({ type: "Tmknod", dfid: 0, name, mode: FileMode.SOCK | 0o644, major: 0, minor: 0, gid: 0 })),
    symlink: async (c, name) => void (await c.rpc({ type: "Tsymlink", fid: 0, name, symtgt: "somewhere", gid: 0 })),
  };

  for (const [kind, make] of Object.entries(kinds)) {
    it(`a ${kind}: mode, owner, links and times are the same through every name, across renames and restarts`, async () => {
      const { share } = freshShare();
      const c = await mountShare(share);
      await make(c, "one");
      await c.rpc({ type: "Tlink", dfid: 0, fid: await c.walk("one"), name: "two" });
      const typeBits = (await c.getattr("one")).mode & FileMode.TYPE;
      expect((await c.getattr("one")).nlink).toBe(2n);
      expect((await c.getattr("two")).nlink).toBe(2n);

      // chmod through one name, chown through the other, times through the first.
      const ctimeBefore = (await c.getattr("two")).ctimeSec * 1_000_000_000n + (await c.getattr("two")).ctimeNsec;
      await new Promise((r) => setTimeout(r, 20));
      if (kind !== "symlink") await c.rpc({ type: "Tsetattr", fid: await c.walk("one"), valid: SetattrValid.MODE, ...none, mode: 0o4711 });
      await c.rpc({ type: "Tsetattr", fid: await c.walk("two"), valid: SetattrValid.UID | SetattrValid.GID, ...none, uid: 1234, gid: 5678 });
      await c.rpc({ type: "Tsetattr", fid: await c.walk("one"), valid: SetattrValid.MTIME | SetattrValid.MTIME_SET, ...none, mtimeSec: 1_000_000_000n, mtimeNsec: 5n });
      const expected = kind === "symlink" ? typeBits | 0o777 : typeBits | 0o4711;
      for (const name of ["one", "two"]) {
        const a = await c.getattr(name);
        expect([a.mode, a.uid, a.gid, a.nlink, a.mtimeSec], `${kind} seen as ${name}`).toEqual([expected, 1234, 5678, 2n, 1_000_000_000n]);
      }
      if (kind !== "symlink") {
        const ctimeAfter = (await c.getattr("two")).ctimeSec * 1_000_000_000n + (await c.getattr("two")).ctimeNsec;
        expect(ctimeAfter).toBeGreaterThan(ctimeBefore);
      }

      // A rename keeps the file's metadata; removing one name leaves the other whole.
      await c.rpc({ type: "Trenameat", olddirfid: 0, oldname: "one", newdirfid: 0, newname: "three" });
      await c.rpc({ type: "Tunlinkat", dirfid: 0, name: "two", flags: 0 });
      const three = await c.getattr("three");
      expect([three.mode, three.uid, three.gid, three.nlink]).toEqual([expected, 1234, 5678, 1n]);

      const again = await mountShare(share);
      const restarted = await again.getattr("three");
      expect([restarted.mode, restarted.uid, restarted.gid, restarted.nlink]).toEqual([expected, 1234, 5678, 1n]);
      // The host file stays the host user's, never set-uid.
      expect(lstatSync(join(share, "three")).uid).toBe(process.getuid!());
      if (kind !== "symlink") expect(lstatSync(join(share, "three")).mode & 0o7022).toBe(0);
    });
  }

  it("a folder keeps its mode and owner when it moves, and a new file in its place gets none of them", async () => {
    const { share } = freshShare();
    const c = await mountShare(share);
    await c.mkdir("d", 0o700);
    await c.rpc({ type: "Tsetattr", fid: await c.walk("d"), valid: SetattrValid.UID, ...none, uid: 99 });
    await c.mkdir("e");
    await c.rpc({ type: "Trenameat", olddirfid: 0, oldname: "d", newdirfid: await c.walk("e"), newname: "moved" });
    const moved = await c.getattr("e/moved");
    expect([moved.mode, moved.uid]).toEqual([FileMode.DIR | 0o700, 99]);
    // The old name now holds a new file: it must not inherit the folder's attributes.
    await c.writeFile("d", "new", 0o644, 0);
    const fresh = await c.getattr("d");
    expect([fresh.mode, fresh.uid]).toEqual([FileMode.REG | 0o644, 0]);
  });

  it("a file the host replaces at the same inode number does not inherit the guest's view", async () => {
    const { share } = freshShare();
    const c = await mountShare(share);
    await c.writeFile("f", "x", 0o4755, 0);
    const ino = lstatSync(join(share, "f")).ino;
    // The host removes it and makes files until one reuses the inode (ext4 and tmpfs reuse fast).
    rmSync(join(share, "f"));
    let reused = "";
    for (let i = 0; i < 200 && !reused; i++) {
      writeFileSync(join(share, `h${i}`), "host");
      if (lstatSync(join(share, `h${i}`)).ino === ino) reused = `h${i}`;
    }
    if (!reused) return; // This file system did not reuse the number: nothing to inherit.
    const a = await (await mountShare(share)).getattr(reused);
    expect(a.mode & 0o7000).toBe(0);
  });
});

describe("host folder backend: the attribute store", () => {
  it("appends one short record per change instead of rewriting the store", async () => {
    const { share } = freshShare();
    const c = await mountShare(share);
    for (let i = 0; i < 300; i++) await c.writeFile(`f${i}`, "", 0o600, 0);
    const size = lstatSync(join(share, ATTRS_LOG)).size;
    expect(size / 300).toBeLessThan(120);
    await c.rpc({ type: "Tsetattr", fid: await c.walk("f7"), valid: SetattrValid.MODE, ...none, mode: 0o640 });
    expect(lstatSync(join(share, ATTRS_LOG)).size - size).toBeLessThan(120);
  });

  it("keeps every whole record after a crash tore the last one, and goes on appending", async () => {
    const { share } = freshShare();
    const c = await mountShare(share);
    await c.writeFile("a", "", 0o640, 7);
    await c.writeFile("b", "", 0o604, 8);
    const text = readFileSync(join(share, ATTRS_LOG), "utf8");
    // A crash in the middle of the last append.
    writeFileSync(join(share, ATTRS_LOG), text.slice(0, text.length - 9));
    const again = await mountShare(share);
    expect([(await again.getattr("a")).mode, (await again.getattr("a")).gid]).toEqual([FileMode.REG | 0o640, 7]);
    await again.rpc({ type: "Tsetattr", fid: await again.walk("b"), valid: SetattrValid.MODE | SetattrValid.GID, ...none, mode: 0o600, gid: 9 });
    const third = await mountShare(share);
    expect([(await third.getattr("b")).mode, (await third.getattr("b")).gid]).toEqual([FileMode.REG | 0o600, 9]);
    expect((await third.getattr("a")).gid).toBe(7);
  });

  it("compacts a log of superseded records and stays correct", async () => {
    const { share } = freshShare();
    const c = await mountShare(share);
    await c.writeFile("f", "", 0o600, 0);
    const f = await c.walk("f");
    for (let i = 0; i < 3000; i++) await c.rpc({ type: "Tsetattr", fid: f, valid: SetattrValid.GID, ...none, gid: i });
    expect(lstatSync(join(share, ATTRS_LOG)).size).toBeLessThan(2048 * 100);
    expect(readdirSync(share).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    expect((await (await mountShare(share)).getattr("f")).gid).toBe(2999);
  });

  it("sees what another server on the same folder changed", async () => {
    const { share } = freshShare();
    const one = await mountShare(share);
    const two = await mountShare(share);
    await one.writeFile("f", "", 0o600, 1);
    await new Promise((r) => setTimeout(r, 250));
    expect((await two.getattr("f")).gid).toBe(1);
  });
});

describe("host folder backend: two servers on one folder", () => {
  it("loses no change of either while one of them compacts the store", async () => {
    const { share } = freshShare();
    const a = await mountShare(share);
    const b = await mountShare(share);
    await b.writeFile("fb", "", 0o600, 0);
    const fb = await b.walk("fb");
    const churn = (async () => {
      for (let i = 0; i < 3000; i++) await b.rpc({ type: "Tsetattr", fid: fb, valid: SetattrValid.GID, ...none, gid: i });
    })();
    for (let i = 0; i < 150; i++) {
      await a.writeFile(`f${i}`, "", 0o644, 0);
      await a.rpc({ type: "Tsetattr", fid: await a.walk(`f${i}`), valid: SetattrValid.MODE, ...none, mode: 0o600 });
    }
    await churn;
    const fresh = await mountShare(share);
    const modes = new Set<number>();
    for (let i = 0; i < 150; i++) modes.add((await fresh.getattr(`f${i}`)).mode);
    expect([...modes]).toEqual([FileMode.REG | 0o600]);
    expect((await fresh.getattr("fb")).gid).toBe(2999);
    expect(readdirSync(share).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("says what is wrong when the host put something else where the store goes", async () => {
    const { share } = freshShare();
    mkdirSync(join(share, ATTRS_LOG));
    const c = await mountShare(share);
    expect(await c.names("")).toEqual([]);
    const dir = await c.walk("");
    expect(await c.fail({ type: "Tlcreate", fid: dir, name: "f", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 })).toBe(Errno.EIO);
    expect(existsSync(join(share, "f"))).toBe(false);
  });
});

describe("host folder backend: host descriptors", () => {
  it("answers ENFILE past its descriptor budget, keeps serving, and gives descriptors back", async () => {
    const { share } = freshShare();
    const budget = new DescriptorBudget(24);
    const c = new TestClient(new P9Server(new HostFolderBackend(share, { descriptors: budget })));
    await c.mount();
    for (let i = 0; i < 40; i++) writeFileSync(join(share, `f${i}`), `${i}`);
    const open: number[] = [];
    let errno = 0;
    for (let i = 0; i < 40 && errno === 0; i++) {
      const fid = await c.walk(`f${i}`);
      const reply = await c.send({ type: "Tlopen", fid, flags: OpenFlags.RDONLY });
      if (reply.type === "Rlerror") errno = reply.ecode;
      else open.push(fid);
    }
    expect(errno).toBe(Errno.ENFILE);
    expect(budget.held).toBeLessThanOrEqual(24);
    expect(open.length).toBeGreaterThan(15);
    for (const fid of open.slice(0, 5)) await c.clunk(fid);
    expect(await c.readText("f39")).toBe("39");
    for (const fid of open.slice(5)) await c.clunk(fid);
    // The root and the store's log stay open; everything else was given back.
    expect(budget.held).toBeLessThanOrEqual(2);
  });

  it("closes what requests still in flight opened when the session ends", async () => {
    const { share } = freshShare();
    writeFileSync(join(share, "f"), "f");
    const budget = new DescriptorBudget(1000);
    const backend = new HostFolderBackend(share, { descriptors: budget });
    const server = new P9Server(backend);
    const c = new TestClient(server);
    await c.mount();
    const fids: number[] = [];
    for (let i = 0; i < 20; i++) fids.push(await c.walk("f"));
    const replies = fids.map((fid) => c.send({ type: "Tlopen", fid, flags: OpenFlags.RDONLY }));
    await new Promise((r) => setTimeout(r, 1));
    server.dispose();
    await server.closed;
    await backend.close();
    await Promise.all(replies);
    expect(budget.held).toBe(0);
  });

  it("counts a folder chain deeper than its descriptor budget, and fails closed when it cannot", async () => {
    const { share } = freshShare();
    let p = share;
    for (let i = 0; i < 40; i++) {
      p = join(p, "d");
      mkdirSync(p);
    }
    writeFileSync(join(p, "big"), Buffer.alloc(1 << 20));
    const backend = new HostFolderBackend(share, { descriptors: new DescriptorBudget(20) });
    expect(await backend.usedBytes()).toBeGreaterThan(1 << 20);
    const c = await mountQuota(backend, 256 * 1024);
    expect(await c.fail({ type: "Tlcreate", fid: await c.walk("s"), name: "more", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 })).toBe(Errno.ENOSPC);
    // With no descriptor to spare, the count cannot be made: nothing may grow.
    const starved = new DescriptorBudget(2);
    const tight = new HostFolderBackend(share, { descriptors: starved });
    await tight.root();
    await expect(tight.usedBytes()).rejects.toThrow(P9Error);
  });

  it("leaves the host a reserve of its open-file limit", () => {
    const dir = mkdtempSync(join(tmpdir(), "unmachine-limits-"));
    const limits = join(dir, "limits");
    writeFileSync(limits, "Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                524288               files\n");
    expect(openFileLimit(limits)).toBe(20000);
    expect(openFileLimit(join(dir, "missing"))).toBe(1024);
    expect(guestDescriptorShare(20000)).toBe(15000);
    expect(guestDescriptorShare(1024)).toBe(768);
    rmSync(dir, { recursive: true });
  });
});
