// A guest's shared folders across a suspend, as the host serves them (hostServiceSet over a
// frame pipe, real host folders): the 9P session saved with the guest (saveState) is rebuilt by
// the next run's services (resumed). A held file in the same folder reads and writes on, also
// once the folder was moved or copied elsewhere (a moved data or cache folder); the same tag
// pointing at another folder, or a folder replaced since, errs and never shows its files; a
// damaged saved session is told in one line and the guest's new mount works.

import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Errno } from "../../../core/p9/errno.js";
import { decodeMessage, encodeMessage, NOFID, NOTAG, OpenFlags, type RMessage, type TMessage } from "../../../core/p9/messages.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import type { ShareSetting } from "../../../core/guest/settings.js";
import { hostServiceSet, type HostState, type ServiceSet } from "../../../main/host/services.js";
import { namesFoldersByPlace } from "../../../main/host/p9-service.js";
import { giveFolderId } from "../../../main/p9/folder-id.js";

const base = mkdtempSync(join(tmpdir(), "unmachine-p9-resume-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

type Request = TMessage extends infer M ? (M extends TMessage ? Omit<M, "tag"> : never) : never;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Guest {
  services: ServiceSet;
  errors: string[];
  send(m: Request): Promise<RMessage>;
  ok(m: Request): Promise<RMessage>;
  errno(m: Request): Promise<number>;
}

/** A guest's 9P end of its services' pipe, with this run's shares (and a saved session if resumed). */
function guestOf(shares: ShareSetting[], resumed?: HostState): Guest {
  const errors: string[] = [];
  const services = hostServiceSet(
    { guest: "tiny", services: { p9: { kind: "shares", shares } } },
    { onError: (message) => errors.push(message), ...(resumed ? { resumed: { host: resumed } } : {}) },
  );
  const [guest, host] = createPipePair();
  services.attach.p9!(host);
  const waiting: ((reply: RMessage) => void)[] = [];
  guest.onFrame((frame) => waiting.shift()?.(decodeMessage(frame) as RMessage));
  let tag = 1;
  const send = (m: Request): Promise<RMessage> => new Promise((resolve) => {
    waiting.push(resolve);
    guest.send(encodeMessage({ ...m, tag: m.type === "Tversion" ? NOTAG : tag++ & 0xffff } as TMessage));
  });
  return {
    services, errors, send,
    async ok(m) {
      const reply = await send(m);
      if (reply.type === "Rlerror") throw new Error(`${m.type} failed with errno ${reply.ecode}`);
      return reply;
    },
    async errno(m) {
      const reply = await send(m);
      if (reply.type !== "Rlerror") throw new Error(`${m.type} answered ${reply.type}, not an error`);
      return reply.ecode;
    },
  };
}

function folder(name: string, files: Record<string, string> = {}): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  return dir;
}

const share = (tag: string, hostPath: string): ShareSetting => ({ tag, hostPath, readOnly: false });

/** As the tiny guest leaves it before a suspend: /mnt mounted, a file held open for writing. */
async function suspendedWithHeldFile(shares: ShareSetting[]): Promise<HostState> {
  const g = guestOf(shares);
  await g.ok({ type: "Tversion", msize: 65536, version: "9P2000.L" });
  await g.ok({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 });
  await g.ok({ type: "Twalk", fid: 0, newfid: 1, wnames: ["A", "held.txt"] });
  await g.ok({ type: "Tlopen", fid: 1, flags: OpenFlags.RDWR });
  await g.ok({ type: "Twrite", fid: 1, offset: 0n, data: text("written before") });
  await g.ok({ type: "Twalk", fid: 0, newfid: 2, wnames: ["A"] });
  const state = JSON.parse(JSON.stringify(g.services.saveState())) as HostState;
  g.services.dispose();
  return state;
}

async function topNames(g: Guest): Promise<string[]> {
  await g.ok({ type: "Twalk", fid: 0, newfid: 90, wnames: [] });
  await g.ok({ type: "Tlopen", fid: 90, flags: OpenFlags.RDONLY | OpenFlags.DIRECTORY });
  const reply = await g.ok({ type: "Treaddir", fid: 90, offset: 0n, count: 8192 });
  await g.ok({ type: "Tclunk", fid: 90 });
  return (reply as Extract<RMessage, { type: "Rreaddir" }>).entries.map((e) => e.name).filter((n) => n !== "." && n !== "..").sort();
}

describe("shared folders across a suspend", () => {
  it("the same folder: the held file reads and writes on, nothing truncated", async () => {
    const a = folder("same", { "held.txt": "" });
    const state = await suspendedWithHeldFile([share("A", a)]);
    expect(state.p9).toMatchObject({ format: 1, msize: 65536 });
    // Shared again as the same folder, by a path written another way.
    const g = guestOf([share("A", `${a}/./`)], state);
    const read = await g.ok({ type: "Tread", fid: 1, offset: 0n, count: 100 });
    expect(str((read as { data: Uint8Array }).data)).toBe("written before");
    await g.ok({ type: "Twrite", fid: 1, offset: 14n, data: text(", and after") });
    expect(readFileSync(join(a, "held.txt"), "utf8")).toBe("written before, and after");
    await g.ok({ type: "Twalk", fid: 2, newfid: 3, wnames: ["held.txt"] });
    expect(g.errors).toEqual([]);
    g.services.dispose();
  });

  it("the folder copied elsewhere (cp -a) and shared from there: the held file reads and writes on", async () => {
    const a = folder("original", { "held.txt": "" });
    const state = await suspendedWithHeldFile([share("A", a)]);
    const copy = join(base, "moved", "copy");
    cpSync(a, copy, { recursive: true, preserveTimestamps: true });
    rmSync(a, { recursive: true });
    const g = guestOf([share("A", copy)], state);
    const read = await g.ok({ type: "Tread", fid: 1, offset: 0n, count: 100 });
    expect(str((read as { data: Uint8Array }).data)).toBe("written before");
    await g.ok({ type: "Twrite", fid: 1, offset: 14n, data: text(", and after") });
    expect(readFileSync(join(copy, "held.txt"), "utf8")).toBe("written before, and after");
    await g.ok({ type: "Twalk", fid: 2, newfid: 3, wnames: ["held.txt"] });
    await g.ok({ type: "Tlopen", fid: 2, flags: OpenFlags.RDONLY | OpenFlags.DIRECTORY });
    const listed = await g.ok({ type: "Treaddir", fid: 2, offset: 0n, count: 8192 });
    expect((listed as Extract<RMessage, { type: "Rreaddir" }>).entries.map((e) => e.name).filter((n) => !n.startsWith(".")).sort()).toEqual(["held.txt"]);
    expect((listed as Extract<RMessage, { type: "Rreaddir" }>).entries.map((e) => e.name).filter((n) => n.startsWith(".unmachine"))).toEqual([]);
    expect(g.errors).toEqual([]);
    g.services.dispose();
  });

  it("a read-only folder given its id by its owner (a built root) is found again in a copied cache", async () => {
    const root = folder("cache/guests/desktop/root", { "init": "#!/bin/sh" });
    await giveFolderId(root);
    const readOnly = (hostPath: string): ShareSetting => ({ tag: "root", hostPath, readOnly: true });
    const g = guestOf([readOnly(root)]);
    await g.ok({ type: "Tversion", msize: 65536, version: "9P2000.L" });
    await g.ok({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 });
    await g.ok({ type: "Twalk", fid: 0, newfid: 1, wnames: ["root", "init"] });
    await g.ok({ type: "Tlopen", fid: 1, flags: OpenFlags.RDONLY });
    await g.ok({ type: "Twalk", fid: 0, newfid: 2, wnames: ["root"] });
    const state = JSON.parse(JSON.stringify(g.services.saveState())) as HostState;
    g.services.dispose();
    const copy = join(base, "copied-cache", "guests", "desktop", "root");
    cpSync(root, copy, { recursive: true, preserveTimestamps: true });
    const h = guestOf([readOnly(copy)], state);
    const read = await h.ok({ type: "Tread", fid: 1, offset: 0n, count: 100 });
    expect(str((read as { data: Uint8Array }).data)).toBe("#!/bin/sh");
    await h.ok({ type: "Twalk", fid: 2, newfid: 3, wnames: ["init"] });
    expect(h.errors).toEqual([]);
    h.services.dispose();
    // A read-only share is never written to: one without an id stays without.
    const plain = folder("plain-read-only", { "init": "" });
    const p = guestOf([readOnly(plain)]);
    await p.ok({ type: "Tversion", msize: 65536, version: "9P2000.L" });
    await p.ok({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 });
    await p.ok({ type: "Twalk", fid: 0, newfid: 1, wnames: ["root", "init"] });
    p.services.dispose();
    expect(readdirSync(plain)).toEqual(["init"]);
  });

  it("a session saved before folders had ids is rebuilt in the same folder", async () => {
    const a = folder("older", { "held.txt": "" });
    const state = await suspendedWithHeldFile([share("A", a)]);
    const st = statSync(a, { bigint: true });
    const older = JSON.parse(JSON.stringify(state).replace(/share \\"A\\" folder [0-9a-f-]+/g, `share \\"A\\" ${realpathSync(a)} ${st.dev}:${st.ino}`)) as HostState;
    expect(namesFoldersByPlace(state.p9)).toBe(false);
    expect(namesFoldersByPlace(older.p9)).toBe(true);
    const g = guestOf([share("A", a)], older);
    const read = await g.ok({ type: "Tread", fid: 1, offset: 0n, count: 100 });
    expect(str((read as { data: Uint8Array }).data)).toBe("written before");
    g.services.dispose();
  });

  it("the same tag on another folder: the held file errs and never shows the other folder's file", async () => {
    const a = folder("first", { "held.txt": "" });
    const b = folder("second", { "held.txt": "B's content" });
    const state = await suspendedWithHeldFile([share("A", a)]);
    const g = guestOf([share("A", b)], state);
    expect(await g.errno({ type: "Tread", fid: 1, offset: 0n, count: 100 })).toBe(Errno.EIO);
    expect(await g.errno({ type: "Twrite", fid: 1, offset: 0n, data: text("x") })).toBe(Errno.EIO);
    expect(await g.errno({ type: "Twalk", fid: 2, newfid: 3, wnames: ["held.txt"] })).toBe(Errno.EIO);
    expect(readFileSync(join(b, "held.txt"), "utf8")).toBe("B's content");
    expect(readFileSync(join(a, "held.txt"), "utf8")).toBe("written before");
    g.services.dispose();
  });

  it("a folder replaced at the same path since is another folder", async () => {
    const a = folder("replaced", { "held.txt": "" });
    const state = await suspendedWithHeldFile([share("A", a)]);
    renameSync(a, join(base, "replaced-old"));
    folder("replaced", { "held.txt": "a new folder's file" });
    const g = guestOf([share("A", a)], state);
    expect(await g.errno({ type: "Tread", fid: 1, offset: 0n, count: 100 })).toBe(Errno.EIO);
    g.services.dispose();
  });

  it("the top folder is this run's: a removed share vanishes, an added one appears", async () => {
    const a = folder("kept", { "held.txt": "" });
    const state = await suspendedWithHeldFile([share("A", a)]);
    const g = guestOf([share("C", folder("added", { "new.txt": "hi" }))], state);
    expect(await topNames(g)).toEqual(["C"]);
    expect(await g.errno({ type: "Tread", fid: 1, offset: 0n, count: 100 })).toBe(Errno.EIO);
    g.services.dispose();
  });

  it("a damaged saved session is told in one line; the guest's new mount works", async () => {
    const a = folder("damaged", { "held.txt": "" });
    const g = guestOf([share("A", a)], { p9: { format: 1, msize: 65536, fids: [{ fid: 1, uid: 0, path: ["A", ".."], scope: "x" }] } });
    await g.ok({ type: "Tversion", msize: 65536, version: "9P2000.L" });
    await g.ok({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 });
    expect(await topNames(g)).toEqual(["A"]);
    expect(g.errors).toHaveLength(1);
    expect(g.errors[0]).toMatch(/shared folders: the saved 9P session cannot be used: .*not one plain name/);
    g.services.dispose();
  });
});
