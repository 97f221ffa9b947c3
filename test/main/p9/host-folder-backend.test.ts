// The host-folder backend runs the shared 9P conformance suite on fresh temporary folders, plus
// what only a host folder can get wrong: symlinks that point out of the share (never followed,
// whoever made them, whenever they were swapped in), guest owners and modes kept in the mapped
// store across restarts without chown, and the store itself invisible to the guest.

import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, linkSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Errno, P9Error } from "../../../core/p9/errno.js";
import { AT_REMOVEDIR, FileMode, GetattrMask, OpenFlags, SetattrValid } from "../../../core/p9/messages.js";
import { P9Server } from "../../../core/p9/server.js";
import { ATTRS_FILE, HostFolderBackend } from "../../../main/p9/host-folder-backend.js";
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

async function mountShare(share: string, options: ConstructorParameters<typeof P9Server>[1] = {}): Promise<TestClient> {
  const c = new TestClient(new P9Server(new HostFolderBackend(share), options));
  await c.mount();
  return c;
}

const none = { mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };

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
    // A folder whose only content is its store is empty to the guest and can be removed.
    expect(existsSync(join(share, "a", "inner", ATTRS_FILE))).toBe(true);
    await again.rpc({ type: "Tunlinkat", dirfid: await again.walk("a/inner"), name: "f", flags: 0 });
    await again.mkdir("c");
    await again.rpc({ type: "Trenameat", olddirfid: await again.walk("a"), oldname: "inner", newdirfid: 0, newname: "c" });
    await again.rpc({ type: "Tunlinkat", dirfid: 0, name: "c", flags: AT_REMOVEDIR });
    expect(readdirSync(share).sort()).toEqual([ATTRS_FILE, "a"].filter((n) => n !== ATTRS_FILE || existsSync(join(share, ATTRS_FILE))).sort());
    expect(await again.names("")).toEqual(["a"]);
  });

  it("hides the store from listings and refuses it to walk, create, rename and remove", async () => {
    const { share } = freshShare();
    const c = await mountShare(share);
    await c.writeFile("f", "x", 0o600, 3);
    await c.mkdir("d");
    expect(existsSync(join(share, ATTRS_FILE))).toBe(true);
    expect(existsSync(join(share, "d", ATTRS_FILE))).toBe(true);
    expect(await c.names("")).toEqual(["d", "f"]);
    expect(await c.names("d")).toEqual([]);
    for (const name of [ATTRS_FILE, `${ATTRS_FILE}.123.tmp`]) {
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
  it("counts what is already in the share toward the quota, hard links once", async () => {
    const { share } = freshShare();
    writeFileSync(join(share, "a"), new Uint8Array(3000));
    mkdirSync(join(share, "sub"));
    writeFileSync(join(share, "sub", "b"), new Uint8Array(2000));
    linkSync(join(share, "a"), join(share, "sub", "a-again"));
    symlinkSync("a", join(share, "l"));
    const backend = new HostFolderBackend(share);
    expect(await backend.usedBytes()).toBe(5001);
    const c = new TestClient(new P9Server(backend, { quotaBytes: 6000 }));
    await c.mount();
    const dir = await c.walk("");
    await c.rpc({ type: "Tlcreate", fid: dir, name: "c", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 });
    expect((await c.rpc({ type: "Twrite", fid: dir, offset: 0n, data: new Uint8Array(5000) })).count).toBe(999);
    expect(lstatSync(join(share, "c")).size).toBe(999);
    expect(await backend.usedBytes()).toBe(6000);
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
