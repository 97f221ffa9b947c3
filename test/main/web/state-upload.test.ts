// A guest's saved state through the web shell: the page sends it (PUT /state/SESSION?tag=TAG,
// its cookie and its own Origin only, the commands' JSON cannot carry bytes), the host keeps it
// in the guest's folder, and the next plan resumes it from GET /state/GUEST, which serves
// exactly the compressed state the page sent. A refusal is one line; a damaged state is set
// aside with one line and the guest boots.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "node:http";
import { createHash } from "node:crypto";
import type { WebSocket } from "ws";
import { startWebShell, type WebShell } from "../../../main/web/server.js";
import { call, connect, fixture, get } from "../../support/web-shell.js";
import { compressState } from "../../../core/v86/state-codec.js";
import type { BootPlan } from "../../../core/ipc/contract.js";

function put(url: string, body: Uint8Array, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "PUT", headers: { ...headers, "content-length": String(body.length) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function getBytes(url: string, headers: Record<string, string>): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("a page's saved state in the web shell", () => {
  let shell: WebShell;
  let dataDir: string;
  let cookie: string;
  let rpc: WebSocket;

  beforeAll(async () => {
    const f = fixture();
    dataDir = f.dataDir;
    shell = await startWebShell({ library: f.library, pageDir: f.pageDir, port: 0 });
    const reply = await get(shell.url);
    cookie = String(reply.headers["set-cookie"]).split(";")[0]!;
    rpc = (await connect(`${shell.origin.replace("http", "ws")}/rpc`, shell.origin, { cookie })) as WebSocket;
  });
  afterAll(async () => {
    rpc.close();
    await shell.close();
  });

  it("is kept from the page's upload and served back to resume the guest", async () => {
    const first = (await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan;
    expect(first.machine.initialState).toBeUndefined();
    const session = (await call(rpc, "sessions:open", ["demo"])).value as { id: string };
    const state = await compressState(new Uint8Array(64 * 1024).fill(7));
    const url = `${shell.origin}/state/${session.id}?tag=`;

    expect((await put(url, state, { origin: shell.origin })).status).toBe(403);
    expect((await put(url, state, { cookie, origin: "http://127.0.0.1:1" })).status).toBe(403);
    expect((await put(`${shell.origin}/state/no-such-session`, state, { cookie, origin: shell.origin })).status).toBe(404);
    expect(await put(`${shell.origin}/state/${session.id}?tag=../up`, state, { cookie, origin: shell.origin })).toEqual({
      status: 400,
      body: '"../up" is not a snapshot name: letters, digits, ".", "_" and "-", at most 64',
    });
    expect(existsSync(join(dataDir, "guests", "demo", "suspend.state"))).toBe(false);

    expect((await put(url, state, { cookie, origin: shell.origin })).status).toBe(204);
    expect(existsSync(join(dataDir, "guests", "demo", "suspend.state"))).toBe(true);
    await call(rpc, "sessions:close", [session.id]);

    const plan = (await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan;
    // With the bytes' checksum: a page that saved them keeps them for this start instead of fetching them again.
    expect(plan.machine.initialState).toEqual({ kind: "url", url: `${shell.origin}/state/demo`, size: state.length, sha256: createHash("sha256").update(state).digest("hex") });
    expect((await getBytes(`${shell.origin}/state/demo`, {})).status).toBe(403);
    const served = await getBytes(`${shell.origin}/state/demo`, { cookie, "sec-fetch-site": "same-origin" });
    expect(served.status).toBe(200);
    expect(new Uint8Array(served.body)).toEqual(state);

    // Power off discards it: the next plan boots.
    expect((await call(rpc, "guests:discardState", ["demo"])).ok).toBe(true);
    expect(((await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan).machine.initialState).toBeUndefined();
    expect((await getBytes(`${shell.origin}/state/demo`, { cookie, "sec-fetch-site": "same-origin" })).status).toBe(404);
  });

  it("keeps a named snapshot of a running guest, lists it, restores it as the state to resume, deletes it", async () => {
    await call(rpc, "guests:plan", ["demo", 0]);
    const session = (await call(rpc, "sessions:open", ["demo"])).value as { id: string };
    const state = await compressState(new Uint8Array(4096).fill(3));
    expect((await put(`${shell.origin}/state/${session.id}?tag=before-change`, state, { cookie, origin: shell.origin })).status).toBe(204);
    const listed = (await call(rpc, "snapshots:list", ["demo"])).value as { tag: string }[];
    expect(listed.map((s) => s.tag)).toEqual(["before-change"]);
    expect(await call(rpc, "snapshots:restore", ["demo", "before-change"])).toMatchObject({ ok: false, error: "demo is running; stop it first" });
    await call(rpc, "sessions:close", [session.id]);
    expect((await call(rpc, "snapshots:restore", ["demo", "before-change"])).ok).toBe(true);
    const plan = (await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan;
    expect(plan.machine.initialState).toMatchObject({ size: state.length });
    expect((await call(rpc, "snapshots:remove", ["demo", "before-change"])).ok).toBe(true);
    expect((await call(rpc, "snapshots:list", ["demo"])).value).toEqual([]);
    expect(await call(rpc, "snapshots:remove", ["demo", "before-change"])).toMatchObject({ ok: false, error: 'demo has no snapshot "before-change" (snapshots: none)' });
  });

  it("refuses bytes that are not a compressed state, keeping the state saved before", async () => {
    await call(rpc, "guests:plan", ["demo", 0]);
    const session = (await call(rpc, "sessions:open", ["demo"])).value as { id: string };
    const good = await compressState(new Uint8Array(4096).fill(5));
    expect((await put(`${shell.origin}/state/${session.id}?tag=`, good, { cookie, origin: shell.origin })).status).toBe(204);
    const saved = readFileSync(join(dataDir, "guests", "demo", "suspend.state"));
    expect(await put(`${shell.origin}/state/${session.id}?tag=`, new TextEncoder().encode("<html>not a state</html>"), { cookie, origin: shell.origin })).toEqual({
      status: 400,
      body: "what the page sent is not a compressed saved state",
    });
    expect(readFileSync(join(dataDir, "guests", "demo", "suspend.state"))).toEqual(saved);
    await call(rpc, "sessions:close", [session.id]);
    expect((await call(rpc, "guests:discardState", ["demo"])).ok).toBe(true);
  });

  it("sets aside the state the page's emulator refused, as it was served, and only that one", async () => {
    await call(rpc, "guests:plan", ["demo", 0]);
    const session = (await call(rpc, "sessions:open", ["demo"])).value as { id: string };
    const state = await compressState(new Uint8Array(4096).fill(9));
    expect((await put(`${shell.origin}/state/${session.id}?tag=`, state, { cookie, origin: shell.origin })).status).toBe(204);
    await call(rpc, "sessions:close", [session.id]);
    const folder = join(dataDir, "guests", "demo");
    const saved = readFileSync(join(folder, "suspend.state"));
    // Not served to any page yet: nothing is set aside.
    expect((await call(rpc, "guests:setAsideState", ["demo", "the emulator could not restore it"])).ok).toBe(true);
    expect(readFileSync(join(folder, "suspend.state"))).toEqual(saved);

    expect(((await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan).machine.initialState).toMatchObject({ size: state.length });
    expect((await call(rpc, "guests:setAsideState", ["demo", "the emulator could not restore it: \u001b[2Jbad"])).ok).toBe(true);
    expect(existsSync(join(folder, "suspend.state"))).toBe(false);
    expect(readFileSync(join(folder, "suspend.state.unusable"))).toEqual(saved);
    expect(((await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan).machine.initialState).toBeUndefined();
    expect(await call(rpc, "guests:setAsideState", ["no-such-guest", "x"])).toMatchObject({ ok: false });
  });

  it("names the state a start would resume ahead of it, as the plan does, and serves it; one it cannot use it leaves to the plan", async () => {
    await call(rpc, "guests:plan", ["demo", 0]);
    const session = (await call(rpc, "sessions:open", ["demo"])).value as { id: string };
    const state = await compressState(new Uint8Array(8192).fill(3));
    expect((await put(`${shell.origin}/state/${session.id}?tag=`, state, { cookie, origin: shell.origin })).status).toBe(204);
    await call(rpc, "sessions:close", [session.id]);
    const sha256 = createHash("sha256").update(state).digest("hex");

    const ahead = (await call(rpc, "guests:stateAhead", ["demo"])).value;
    expect(ahead).toEqual({ kind: "url", url: `${shell.origin}/state/demo`, size: state.length, sha256 });
    const served = await getBytes(`${shell.origin}/state/demo`, { cookie });
    expect(served.status).toBe(200);
    expect(served.body.equals(state)).toBe(true);
    expect(((await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan).machine.initialState).toEqual(ahead);

    // Damaged: nothing to fetch, and nothing set aside or told until a start's plan does it.
    const folder = join(dataDir, "guests", "demo");
    const bytes = readFileSync(join(folder, "suspend.state"));
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    writeFileSync(join(folder, "suspend.state"), bytes);
    expect((await call(rpc, "guests:stateAhead", ["demo"])).value).toBeNull();
    expect(readFileSync(join(folder, "suspend.state"))).toEqual(bytes);
    const plan = (await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan;
    expect(plan.notice).toMatch(/^demo: its saved state cannot be used \(damaged: .*\); it starts cold$/);
    expect(existsSync(join(folder, "suspend.state"))).toBe(false);
    expect(await call(rpc, "guests:stateAhead", ["no-such-guest"])).toMatchObject({ ok: false });
  });

  it("sets a damaged state aside with one line, and the plan boots", async () => {
    const folder = join(dataDir, "guests", "demo");
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "suspend.state"), Buffer.from("UNMSTATE\xff\xff\xff\x00", "latin1"));
    const plan = (await call(rpc, "guests:plan", ["demo", 0])).value as BootPlan;
    expect(plan.notice).toBe("demo: its saved state cannot be used (damaged: its header is cut short); it starts cold");
    expect(plan.machine.initialState).toBeUndefined();
    expect(existsSync(join(folder, "suspend.state"))).toBe(false);
    expect(existsSync(join(folder, "suspend.state.unusable"))).toBe(true);
  });
});
