// The web shell's gatekeeping, over real sockets: the page, media and every WebSocket need the
// token or the session cookie it (or a one-time code, once) is exchanged for; a WebSocket from
// a foreign Origin or with a foreign Host is refused; a taken port is a clear error; commands
// and pipes work for the page that has the key; sensitive shares need the user's confirmation.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, mkdirSync, realpathSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as connectTcp } from "node:net";
import { startWebShell, type WebShell } from "../../../main/web/server.js";
import { CODE_TTL_MS } from "../../../main/web/auth.js";
import { SettingsStore } from "../../../main/guests/settings-store.js";
import { call, connect, fixture, get } from "../../support/web-shell.js";

/** The session cookie (name=value) an address with a token or code is exchanged for. */
async function cookieOf(url: string): Promise<string> {
  const reply = await get(url);
  if (reply.status !== 303) throw new Error(`${url}: ${reply.status} ${reply.body}`);
  return String(reply.headers["set-cookie"]).split(";")[0]!;
}

describe("web shell", () => {
  let shell: WebShell;
  const rpc = (token: string): string => `${shell.origin.replace("http", "ws")}/rpc?token=${token}`;

  beforeAll(async () => {
    const { library, pageDir } = fixture();
    shell = await startWebShell({ library, pageDir, port: 0, settings: new SettingsStore(mkdtempSync(join(tmpdir(), "unmachine-web-data-"))) });
  });
  afterAll(async () => {
    await shell.close();
  });
  // A test's closed page ends its sessions before the next test starts a guest.
  afterEach(async () => {
    await expect.poll(() => shell.sessions.list()).toEqual([]);
  });

  it("listens on 127.0.0.1 with a long random token in the printed address", () => {
    expect(shell.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48}$/);
  });

  it("serves the page only with the token's cookie, with a CSP and no referrer", async () => {
    expect((await get(`${shell.origin}/`)).status).toBe(403);
    for (const spelling of ["/index.html", "/index.html/", "/%69ndex.html", "//index.html", "/x/../index.html"]) expect((await get(`${shell.origin}${spelling}`)).status, spelling).toBe(403);
    expect((await get(`${shell.origin}/?token=${"0".repeat(48)}`)).status).toBe(403);
    const page = await get(`${shell.origin}/`, { cookie: await cookieOf(shell.url) });
    expect(page.status).toBe(200);
    expect(page.body).toContain("<title>Unmachine</title>");
    expect(String(page.headers["content-security-policy"])).toContain("default-src 'self'");
    expect(page.headers["referrer-policy"]).toBe("no-referrer");
  });

  it("refuses a request whose Host is not its own (DNS rebinding)", async () => {
    const res = await get(shell.url, { host: `evil.example:${shell.port}` });
    expect(res.status).toBe(421);
  });

  it("serves media and firmware only with the token", async () => {
    expect((await get(`${shell.origin}/media/demo/bzimage`)).status).toBe(403);
    const kernel = await get(`${shell.origin}/media/demo/bzimage?token=${shell.token}`);
    expect(kernel.status).toBe(200);
    expect(kernel.body).toBe("kernel bytes");
    expect((await get(`${shell.origin}/firmware/bios?token=${shell.token}`)).headers["content-length"]).toBe(String(128 * 1024));
    expect((await get(`${shell.origin}/media/demo/hda?token=${shell.token}`)).status).toBe(404);
    expect((await get(`${shell.origin}/media/..%2F..%2Fetc/bzimage?token=${shell.token}`)).status).toBe(404);
  });

  it("refuses a WebSocket without the token, with a wrong one, or from another Origin", async () => {
    expect(await connect(`${shell.origin.replace("http", "ws")}/rpc`, shell.origin)).toBe(403);
    expect(await connect(rpc("f".repeat(48)), shell.origin)).toBe(403);
    expect(await connect(rpc(shell.token), "http://evil.example")).toBe(403);
    expect(await connect(rpc(shell.token), `http://localhost:${shell.port}`)).toBe(403);
    expect(await connect(rpc(shell.token), undefined)).toBe(403);
  });

  it("answers the contract's commands for the page with the token", async () => {
    const ws = await connect(rpc(shell.token), shell.origin);
    if (typeof ws === "number") throw new Error(`refused: ${ws}`);
    const guests = await call(ws, "guests:list", []);
    expect(guests.ok).toBe(true);
    expect(guests.value).toEqual([expect.objectContaining({ name: "demo", title: "Demo", memory: 96, ready: true })]);
    const plan = await call(ws, "guests:plan", ["demo", 0]);
    expect(plan.value).toMatchObject({ guest: "demo", machine: { memory: 96, media: { bzimage: { kind: "url", size: 12 } } }, ready: { kind: "prompt", prompt: "# " } });
    // The page fetches media with its cookie: the token is never handed to the page.
    expect((plan.value as { machine: { media: { bzimage: { url: string } } } }).machine.media.bzimage.url).toBe(`${shell.origin}/media/demo/bzimage`);
    expect(JSON.stringify(plan.value)).not.toContain(shell.token);
    // Bad input from the page is an error reply, and the host keeps serving.
    expect(await call(ws, "guests:plan", ["demo"])).toMatchObject({ ok: false, error: expect.stringContaining("expected 2 argument") });
    expect(await call(ws, "fs:read", ["/etc/passwd"])).toMatchObject({ ok: false, error: expect.stringContaining("unknown command") });
    expect(await call(ws, "guests:plan", ["nope", 0])).toMatchObject({ ok: false, error: expect.stringContaining('no guest named "nope"') });
    const refused = new Promise<string>((resolve) => ws.once("message", (data: Buffer) => resolve(data.toString())));
    ws.send("{not json");
    expect(JSON.parse(await refused)).toMatchObject({ id: -1, ok: false });
    expect((await call(ws, "host:info", [])).ok).toBe(true);
    ws.close();
  });

  it("carries console frames from the page to the host's session transcript", async () => {
    const ws = await connect(rpc(shell.token), shell.origin);
    if (typeof ws === "number") throw new Error(`refused: ${ws}`);
    const opened = (await call(ws, "sessions:open", ["demo"])).value as { id: string };
    const pipe = await connect(`${shell.origin.replace("http", "ws")}/pipe/${opened.id}/console?token=${shell.token}`, shell.origin);
    if (typeof pipe === "number") throw new Error(`pipe refused: ${pipe}`);
    pipe.send(Buffer.from("Linux version 6.1\r\n"));
    pipe.send(Buffer.from("tiny:/# "));
    await expect.poll(() => shell.sessions.transcript(opened.id)).toBe("Linux version 6.1\r\ntiny:/# ");
    expect(await connect(`${shell.origin.replace("http", "ws")}/pipe/no-such-session/console?token=${shell.token}`, shell.origin)).toBe(404);
    // Closing the page's command socket ends the sessions it opened.
    ws.close();
    await expect.poll(() => shell.sessions.has(opened.id)).toBe(false);
    pipe.close();
  });

  it("survives requests that cannot be parsed or carry odd tokens, and keeps serving", async () => {
    const raw = (text: string): Promise<string> =>
      new Promise((resolve) => {
        const socket = connectTcp(shell.port, "127.0.0.1", () => socket.end(text));
        let reply = "";
        socket.on("data", (d) => (reply += d.toString()));
        socket.on("close", () => resolve(reply));
        socket.on("error", () => resolve(reply));
      });
    expect(await raw(`GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${shell.port}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(`GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${shell.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400/);
    // As many characters as the token, but not as many bytes.
    expect(await connect(rpc(encodeURIComponent("é" + "a".repeat(47))), shell.origin)).toBe(403);
    expect((await get(shell.url)).status).toBe(303);
  });

  it("opens sessions only for guests it knows, and pipes only for services that exist", async () => {
    const ws = await connect(rpc(shell.token), shell.origin);
    if (typeof ws === "number") throw new Error(`refused: ${ws}`);
    expect(await call(ws, "sessions:open", ["../../../tmp/escaped"])).toMatchObject({ ok: false, error: expect.stringContaining("no guest named") });
    const opened = (await call(ws, "sessions:open", ["demo"])).value as { id: string };
    expect(await connect(`${shell.origin.replace("http", "ws")}/pipe/${opened.id}/usb?token=${shell.token}`, shell.origin)).toBe(404);
    ws.close();
  });

  it("runs a library guest once, whichever page starts it, and dropped images side by side", async () => {
    const [first, second] = [await connect(rpc(shell.token), shell.origin), await connect(rpc(shell.token), shell.origin)];
    if (typeof first === "number" || typeof second === "number") throw new Error("refused");
    try {
      const opened = await call(first, "sessions:open", ["demo"]);
      expect(opened.ok).toBe(true);
      const again = { ok: false, error: expect.stringContaining('guest "demo" is already running in another Unmachine window or tab') };
      expect(await call(first, "sessions:open", ["demo"])).toMatchObject(again);
      expect(await call(second, "sessions:open", ["demo"])).toMatchObject(again);
      expect((await call(second, "sessions:open", ["dropped-image"])).ok).toBe(true);
      expect((await call(second, "sessions:open", ["dropped-image"])).ok).toBe(true);
      expect(shell.sessions.list().map((s) => s.guest).sort()).toEqual(["demo", "dropped-image", "dropped-image"]);
      // Once stopped there, it starts here.
      expect((await call(first, "sessions:close", [(opened.value as { id: string }).id])).ok).toBe(true);
      expect((await call(second, "sessions:open", ["demo"])).ok).toBe(true);
    } finally {
      first.close();
      second.close();
    }
  });

  it("names the port when it is already in use", async () => {
    const { library, pageDir } = fixture();
    await expect(startWebShell({ library, pageDir, port: shell.port })).rejects.toThrow(`port ${shell.port} on 127.0.0.1 is in use`);
  });

  describe("keys for the page", () => {
    it("exchanges the printed address for an HttpOnly, SameSite=Strict cookie and a clean address", async () => {
      const reply = await get(shell.url);
      expect(reply.status).toBe(303);
      expect(reply.headers.location).toBe("/");
      expect(reply.headers["set-cookie"]).toEqual([expect.stringMatching(/^unmachine-[0-9a-f]{12}=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\/$/)]);
      expect(String(reply.headers["set-cookie"])).not.toContain(shell.token);
      // The printed address keeps working, for each browser the user opens it in.
      expect((await get(shell.url)).status).toBe(303);
    });

    it("takes a one-time code once, and not after it expired", async () => {
      let now = 1_000_000;
      const { library, pageDir } = fixture();
      const timed = await startWebShell({ library, pageDir, port: 0, now: () => now });
      try {
        const once = timed.oneTimeUrl();
        expect(once).toMatch(new RegExp(`^${timed.origin}/\\?code=[\\w-]{24,}$`));
        expect(once).not.toContain(timed.token);
        const first = await get(once);
        expect(first.status).toBe(303);
        expect(first.headers.location).toBe("/");
        const cookie = String(first.headers["set-cookie"]).split(";")[0]!;
        expect((await get(`${timed.origin}/`, { cookie })).status).toBe(200);
        const again = await get(once);
        expect(again.status).toBe(403);
        expect(again.body).toContain("used already, has expired or is wrong");
        expect(again.headers["set-cookie"]).toBeUndefined();

        const late = timed.oneTimeUrl();
        now += CODE_TTL_MS + 1;
        expect((await get(late)).status).toBe(403);
        const inTime = timed.oneTimeUrl();
        now += CODE_TTL_MS - 1000;
        expect((await get(inTime)).status).toBe(303);
        expect((await get(`${timed.origin}/?code=${"A".repeat(32)}`)).status).toBe(403);
      } finally {
        await timed.close();
      }
    });

    it("lets the cookie open the commands and pipes, only from its own Origin", async () => {
      const cookie = await cookieOf(shell.oneTimeUrl());
      const base = `${shell.origin.replace("http", "ws")}`;
      const ws = await connect(`${base}/rpc`, shell.origin, { cookie });
      if (typeof ws === "number") throw new Error(`refused: ${ws}`);
      expect(await call(ws, "guests:list", [])).toMatchObject({ ok: true, value: [expect.objectContaining({ name: "demo" })] });
      const opened = (await call(ws, "sessions:open", ["demo"])).value as { id: string };
      const pipe = await connect(`${base}/pipe/${opened.id}/console`, shell.origin, { cookie });
      expect(typeof pipe).not.toBe("number");
      if (typeof pipe !== "number") pipe.close();
      ws.close();
      // Another port on 127.0.0.1 is the same site (the browser sends it the cookie), not the same Origin.
      expect(await connect(`${base}/rpc`, "http://127.0.0.1:1", { cookie })).toBe(403);
      expect(await connect(`${base}/rpc`, "http://evil.example", { cookie })).toBe(403);
      const [name, value] = cookie.split("=") as [string, string];
      expect(await connect(`${base}/rpc`, shell.origin, { cookie: `${name}=${"x".repeat(value.length)}` })).toBe(403);
      expect(await connect(`${base}/rpc`, shell.origin, { cookie: `unmachine-000000000000=${value}` })).toBe(403);
      // Among other cookies of the same site, in any order.
      const among = await connect(`${base}/rpc`, shell.origin, { cookie: `theme=dark; ${cookie}; unmachine-000000000000=x` });
      expect(typeof among).not.toBe("number");
      if (typeof among !== "number") among.close();
    });

    it("serves media for the cookie to the page's own origin only", async () => {
      const cookie = await cookieOf(shell.url);
      const kernel = await get(`${shell.origin}/media/demo/bzimage`, { cookie, "sec-fetch-site": "same-origin" });
      expect(kernel.status).toBe(200);
      expect(kernel.body).toBe("kernel bytes");
      expect((await get(`${shell.origin}/firmware/bios`, { cookie })).status).toBe(200);
      expect((await get(`${shell.origin}/media/demo/bzimage`, { cookie, "sec-fetch-site": "same-site" })).status).toBe(403);
      expect((await get(`${shell.origin}/media/demo/bzimage`, { cookie, "sec-fetch-site": "cross-site" })).status).toBe(403);
    });
  });

  describe("sharing a sensitive folder from the page", () => {
    const savedHome = process.env.HOME;
    const home = mkdtempSync(join(tmpdir(), "unmachine-web-home-"));
    mkdirSync(join(home, ".ssh"));
    mkdirSync(join(home, "Projects"));
    symlinkSync("/", join(home, "Projects", "link-to-root"));
    beforeAll(() => {
      process.env.HOME = home;
    });
    afterAll(() => {
      process.env.HOME = savedHome;
    });
    const settings = (hostPath: string, confirmedSensitive?: boolean) => ({
      shares: [{ hostPath, tag: "s", readOnly: false, ...(confirmedSensitive ? { confirmedSensitive } : {}) }],
      forwards: [],
      allowHost: false,
      clipboard: false,
    });

    it("refuses /, the home folder and ~/.ssh without the user's confirmation, and saves them with it", async () => {
      const ws = await connect(rpc(shell.token), shell.origin);
      if (typeof ws === "number") throw new Error(`refused: ${ws}`);
      for (const [path, why] of [
        ["/", "the root of the whole file system"],
        [home, "your home folder"],
        [join(home, ".ssh"), "a hidden folder of your home folder (.ssh)"],
        [join(home, "Projects", "link-to-root"), "the root of the whole file system"],
      ] as const) {
        const before = (await call(ws, "settings:get", ["demo"])).value;
        const refused = await call(ws, "settings:set", ["demo", settings(path)]);
        expect(refused, path).toMatchObject({ ok: false, error: expect.stringContaining(`${path}`) });
        expect(refused.error).toContain(why);
        expect(refused.error).toContain("the guest could read and change every file in it");
        expect((await call(ws, "settings:get", ["demo"])).value).toEqual(before);
        // Saved with its links resolved: serving it later follows none.
        const real = realpathSync(path);
        const accepted = await call(ws, "settings:set", ["demo", settings(path, true)]);
        expect(accepted, path).toMatchObject({ ok: true, value: { shares: [{ hostPath: real, confirmedSensitive: true }] } });
        expect((await call(ws, "settings:get", ["demo"])).value).toMatchObject({ shares: [{ hostPath: real, confirmedSensitive: true }] });
      }
      // An ordinary folder needs no confirmation.
      expect(await call(ws, "settings:set", ["demo", settings(join(home, "Projects"))])).toMatchObject({ ok: true });
      ws.close();
    });

    it("tells the page beforehand which folders need the confirmation", async () => {
      const ws = await connect(rpc(shell.token), shell.origin);
      if (typeof ws === "number") throw new Error(`refused: ${ws}`);
      expect((await call(ws, "host:checkShare", [join(home, ".ssh")])).value).toEqual({ path: join(home, ".ssh"), sensitive: expect.stringContaining("hidden folder") });
      expect((await call(ws, "host:checkShare", [join(home, "Projects", "link-to-root")])).value).toEqual({ path: "/", sensitive: "the root of the whole file system" });
      expect((await call(ws, "host:checkShare", [join(home, "Projects")])).value).toEqual({ path: join(home, "Projects"), sensitive: null });
      ws.close();
    });
  });
});
