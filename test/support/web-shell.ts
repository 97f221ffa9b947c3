// Helpers for tests of the web shell over real sockets: a guest library with one small guest
// and a stand-in page, plain HTTP GETs, WebSockets that report how they were refused, and
// contract calls over /rpc.

import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:http";
import { WebSocket } from "ws";
import { GuestLibrary } from "../../main/guests/library.js";

export function fixture(): { library: GuestLibrary; pageDir: string; dataDir: string } {
  const root = mkdtempSync(join(tmpdir(), "unmachine-web-"));
  const guests = join(root, "guests");
  const built = join(root, "cache");
  const pageDir = join(root, "page");
  mkdirSync(join(guests, "demo"), { recursive: true });
  writeFileSync(
    join(guests, "demo", "guest.json"),
    JSON.stringify({ name: "demo", title: "Demo", memory: 96, media: { bzimage: "kernel" }, prompt: "# " }),
  );
  mkdirSync(join(built, "firmware"), { recursive: true });
  mkdirSync(join(built, "guests", "demo"), { recursive: true });
  writeFileSync(join(built, "firmware", "bios.bin"), Buffer.alloc(128 * 1024, 1));
  writeFileSync(join(built, "firmware", "vgabios-stdvga.bin"), Buffer.alloc(36 * 1024, 2));
  writeFileSync(join(built, "guests", "demo", "kernel"), Buffer.from("kernel bytes"));
  mkdirSync(pageDir);
  writeFileSync(join(pageDir, "index.html"), "<!doctype html><title>Unmachine</title>");
  const dataDir = join(root, "data");
  return { library: new GuestLibrary(guests, [built], dataDir), pageDir, dataDir };
}

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Opens a WebSocket; resolves with it, or with the HTTP status it was refused with. */
export function connect(url: string, origin: string | undefined, headers: Record<string, string> = {}): Promise<WebSocket | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { ...headers, ...(origin ? { origin } : {}) } });
    ws.on("open", () => resolve(ws));
    ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    ws.on("error", () => resolve(0));
  });
}

export function call(ws: WebSocket, name: string, args: unknown[]): Promise<{ ok: boolean; value?: unknown; error?: string }> {
  return new Promise((resolve) => {
    const id = Math.floor(Math.random() * 1e9);
    const onMessage = (data: Buffer): void => {
      const reply = JSON.parse(data.toString()) as { id: number; ok: boolean; value?: unknown; error?: string };
      if (reply.id !== id) return;
      ws.off("message", onMessage);
      resolve(reply);
    };
    ws.on("message", onMessage);
    ws.send(JSON.stringify({ id, name, args }));
  });
}
