// A user guest's disk downloaded from a browser tab (GET /library/export/NAME, main/web/download.ts):
// only the page itself may (its cookie, a request its browser marks same-origin, never another
// Origin); the answer is the image with the guest's changes, the image left as it was; a running
// guest, a built-in one and an unknown one are refused with the reason.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:http";
import { startWebShell, type WebShell } from "../../../main/web/server.js";
import { fixture, get } from "../../support/web-shell.js";
import { addGuest } from "../../../main/guests/library-edit.js";
import { OverlayDisk } from "../../../main/disk/overlay.js";
import { buildFatImage, materialize } from "../../../core/fat/image.js";
import { fileFromBytes } from "../../../core/fat/tree.js";

function fetchBytes(url: string, headers: Record<string, string>, method = "GET"): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("a page download of a guest's disk", () => {
  let shell: WebShell;
  let cookie: string;
  let image: string;
  let before: Buffer;
  let url: string;

  beforeAll(async () => {
    const f = fixture();
    shell = await startWebShell({ library: f.library, pageDir: f.pageDir, port: 0 });
    cookie = String((await get(shell.url)).headers["set-cookie"]).split(";")[0]!;
    image = join(mkdtempSync(join(tmpdir(), "unmachine-img-")), "games.img");
    writeFileSync(image, materialize(buildFatImage([fileFromBytes("IO.SYS", new Uint8Array(4), 0)])));
    before = readFileSync(image);
    addGuest(f.library, image);
    const disk = new OverlayDisk(image, join(f.dataDir, "guests", "games", "hda.overlay"));
    disk.write(512, Buffer.alloc(512, 0x77));
    disk.close();
    url = `${shell.origin}/library/export/games`;
  });
  afterAll(async () => {
    await shell.close();
  });

  it("is refused without the page's cookie, from another site or another Origin", async () => {
    expect((await fetchBytes(url, { "sec-fetch-site": "same-origin" })).status).toBe(403);
    expect((await fetchBytes(url, { cookie })).status).toBe(403);
    expect((await fetchBytes(url, { cookie, "sec-fetch-site": "same-site" })).status).toBe(403);
    expect((await fetchBytes(url, { cookie, "sec-fetch-site": "same-origin", origin: "http://127.0.0.1:1" })).status).toBe(403);
  });

  it("answers the image with the guest's changes, leaving the image as it was", async () => {
    const r = await fetchBytes(url, { cookie, "sec-fetch-site": "same-origin" });
    expect(r.status).toBe(200);
    expect(r.headers["content-disposition"]).toBe('attachment; filename="games.img"');
    const expected = Buffer.from(before);
    expected.fill(0x77, 512, 1024);
    expect(r.body.length).toBe(before.length);
    expect(r.body.equals(expected)).toBe(true);
    expect(readFileSync(image).equals(before)).toBe(true);
    const head = await fetchBytes(url, { cookie, "sec-fetch-site": "same-origin" }, "HEAD");
    expect(head.status).toBe(200);
    expect(Number(head.headers["content-length"])).toBe(before.length);
  });

  it("refuses a running guest, a built-in one and an unknown one, saying why", async () => {
    const session = shell.sessions.open("games");
    shell.sessions.report(session.id, "running", "");
    const running = await fetchBytes(url, { cookie, "sec-fetch-site": "same-origin" });
    expect(running.status).toBe(409);
    expect(running.body.toString()).toBe("games is running; stop it first\n");
    shell.sessions.close(session.id);
    expect((await fetchBytes(url, { cookie, "sec-fetch-site": "same-origin" })).status).toBe(200);
    const builtIn = await fetchBytes(`${shell.origin}/library/export/demo`, { cookie, "sec-fetch-site": "same-origin" });
    expect(builtIn.status).toBe(409);
    expect(builtIn.body.toString()).toMatch(/demo is a built-in guest; it cannot be exported/);
    expect((await fetchBytes(`${shell.origin}/library/export/nobody`, { cookie, "sec-fetch-site": "same-origin" })).status).toBe(404);
  });
});
