// Adding a guest from a browser tab: the page uploads a dropped image (PUT /library/add) and the
// host keeps it as a user guest's image. Only the page itself may (its cookie, its own Origin);
// a file that is no image is refused with its name and leaves nothing in the data folder.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { request } from "node:http";
import { startWebShell, type WebShell } from "../../../main/web/server.js";
import { fixture, get } from "../../support/web-shell.js";
import type { GuestLibrary } from "../../../main/guests/library.js";

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

function kernel(): Uint8Array {
  const bytes = new Uint8Array(8192);
  bytes[0x1fe] = 0x55;
  bytes[0x1ff] = 0xaa;
  bytes.set(new TextEncoder().encode("HdrS"), 0x202);
  return bytes;
}

describe("a page upload to the library", () => {
  let shell: WebShell;
  let library: GuestLibrary;
  let dataDir: string;
  let cookie: string;
  const guests = (): string[] => (existsSync(join(dataDir, "guests")) ? readdirSync(join(dataDir, "guests")) : []);

  beforeAll(async () => {
    const f = fixture();
    library = f.library;
    dataDir = f.dataDir;
    shell = await startWebShell({ library, pageDir: f.pageDir, port: 0 });
    const reply = await get(shell.url);
    cookie = String(reply.headers["set-cookie"]).split(";")[0]!;
  });
  afterAll(async () => {
    await shell.close();
  });

  it("is refused without the page's cookie or from another origin", async () => {
    const url = `${shell.origin}/library/add?name=k.bin`;
    expect((await put(url, kernel(), { origin: shell.origin })).status).toBe(403);
    expect((await put(url, kernel(), { cookie, origin: "http://127.0.0.1:1" })).status).toBe(403);
    expect((await put(url, kernel(), { cookie })).status).toBe(403);
    expect((await get(url, { cookie })).status).toBe(405);
    expect(guests()).toEqual([]);
  });

  it("refuses noise by the file's name and keeps nothing", async () => {
    const noise = new Uint8Array(100_000).map((_, i) => (i * 2654435761) >>> 24);
    const r = await put(`${shell.origin}/library/add?name=${encodeURIComponent("holiday photos.img")}`, noise, { cookie, origin: shell.origin });
    expect(r.status).toBe(400);
    expect(r.body).toMatch(/^holiday photos\.img: not a disk image or kernel this can boot/);
    expect(r.body).not.toContain(dataDir);
    expect(guests()).toEqual([]);
  });

  it("adds an image as a guest whose image the upload becomes, listed with its family", async () => {
    const r = await put(`${shell.origin}/library/add?name=${encodeURIComponent("My Kernel.bin")}`, kernel(), { cookie, origin: shell.origin });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ name: "my-kernel", family: "linux", builtIn: false, memory: 128, ready: true, title: "My Kernel.bin" });
    expect(guests()).toEqual(["my-kernel"]);
    expect(statSync(join(dataDir, "guests", "my-kernel", "image")).size).toBe(8192);
    expect(statSync(join(dataDir, "guests", "my-kernel", "image")).mode & 0o777).toBe(0o600);
    expect(library.summaries().map((g) => g.name)).toEqual(["demo", "my-kernel"]);
  });

  it("adds a file whose name starts with a dot or holds a path, by its name alone", async () => {
    const r = await put(`${shell.origin}/library/add?name=${encodeURIComponent(".hidden kernel.bin")}`, kernel(), { cookie, origin: shell.origin });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ name: "hidden-kernel", title: "hidden kernel.bin" });
    const path = await put(`${shell.origin}/library/add?name=${encodeURIComponent("../../etc/kernel.bin")}`, kernel(), { cookie, origin: shell.origin });
    expect(path.status).toBe(200);
    expect(JSON.parse(path.body)).toMatchObject({ name: "kernel", title: "kernel.bin" });
    expect((await put(`${shell.origin}/library/add?name=${encodeURIComponent("../..")}`, kernel(), { cookie, origin: shell.origin })).status).toBe(400);
  });
});
