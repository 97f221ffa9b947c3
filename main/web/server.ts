// The web shell: the page and the host contract over HTTP and WebSocket on 127.0.0.1 only.
// The printed address's token, or a launched browser's one-time code, is exchanged for a
// session cookie (auth.ts) that gates the page, media and every WebSocket; the Host header and
// each WebSocket's Origin must be this server's own, so no other page in the browser (and no
// DNS-rebinding trick) can drive a guest. Commands go over /rpc, FramePipes over /pipe/...;
// the page adds a guest with PUT /library/add and downloads one's disk with GET /library/export/NAME,
// sends a guest's saved state with PUT /state/SESSION?tag=TAG and restores one from GET /state/GUEST.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createReadStream, existsSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import type { Duplex } from "node:stream";
import sirv from "sirv";
import { WebSocketServer, type WebSocket } from "ws";
import { dispatch, type CommandReply, type CommandRequest, type CommandHandlers, type EventMessage } from "../../core/ipc/contract.js";
import { isPipeService, MEDIA_ROLES_SET } from "./routes.js";
import type { GuestLibrary } from "../guests/library.js";
import { HostSessions } from "../host/sessions.js";
import { createHostApi } from "../host/host-api.js";
import { webSocketPipe } from "./ws-pipe.js";
import { dataDir, rendererDir } from "../paths.js";
import { SettingsStore } from "../guests/settings-store.js";
import { registerHostServices } from "../host/services.js";
import { WebAuth } from "./auth.js";
import { ownUserPeer } from "./peer.js";
import { receiveUpload } from "./upload.js";
import { sendExport } from "./download.js";
import { receiveState } from "./state-upload.js";
import { pageStates, type PageStates } from "../host/page-states.js";
import { currentWindows, forwardWindows } from "../host/window-events.js";

export interface WebShellOptions {
  library: GuestLibrary;
  sessions?: HostSessions;
  /** 0 picks a free port. */
  port?: number;
  /** Where the built page is (dist/renderer). */
  pageDir?: string;
  /** Where guest settings live (default: the user's data folder). */
  settings?: SettingsStore;
  /** The clock one-time codes expire by, in ms (tests). */
  now?: () => number;
  /** Where guests' saved states are kept (default: the user's data folder). */
  states?: PageStates;
}

export interface WebShell {
  /** The address for the user, with the full token: printed, never passed to another program. */
  url: string;
  origin: string;
  token: string;
  /** An address for a browser this process starts: its code works once, within a minute. */
  oneTimeUrl(): string;
  port: number;
  sessions: HostSessions;
  close(): Promise<void>;
}

export class PortInUseError extends Error {
  override name = "PortInUseError";
}

const MAX_COMMAND_BYTES = 64 * 1024;
/** How much of a file the shell reads and sends at a time. */
const SEND_PIECE = 1024 * 1024;

export async function startWebShell(options: WebShellOptions): Promise<WebShell> {
  const { library } = options;
  const pageDir = options.pageDir ?? rendererDir;
  if (!existsSync(join(pageDir, "index.html"))) {
    throw new Error(`the page is not built (${join(pageDir, "index.html")} is missing); run: npm run build`);
  }
  const sessions = options.sessions ?? new HostSessions();
  const settings = options.settings ?? new SettingsStore(dataDir());
  const services = registerHostServices(sessions);
  const states = options.states ?? pageStates(library.dataDir, library);
  // Each session's page, for pushing its guest's clipboard to it.
  const pages = new Map<string, WebSocket>();
  services.onAgent(({ session, agent }) => {
    agent.onClipboard((text) => {
      const ws = pages.get(session);
      if (ws && ws.readyState === ws.OPEN && services.sharesClipboard(session)) {
        ws.send(JSON.stringify({ event: { type: "clipboard", session, text } } satisfies EventMessage));
      }
    });
    agent.onClipboardImage((png) => {
      const ws = pages.get(session);
      if (ws && ws.readyState === ws.OPEN && services.sharesClipboard(session)) {
        ws.send(JSON.stringify({ event: { type: "clipboardImage", session, png: Buffer.from(png).toString("base64") } } satisfies EventMessage));
      }
    });
  });
  // Each session's guest windows, to the page that runs it.
  const pushEvent = (session: string, event: EventMessage["event"]): void => {
    const ws = pages.get(session);
    if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event } satisfies EventMessage));
  };
  const windowEvents = forwardWindows(services, (event) => pushEvent(event.session, event));
  let origin = "";
  let hosts: string[] = [];
  const auth = new WebAuth(options.now);
  /**
   * A request for media or firmware: with the token, or with the page's cookie from this
   * origin itself (not from a page on another port, which counts as the same site).
   */
  const mayFetch = (req: IncomingMessage, url: URL): boolean => {
    if (auth.tokenOk(url.searchParams.get("token"))) return true;
    const site = req.headers["sec-fetch-site"];
    return auth.hasSession(req.headers.cookie) && (site === undefined || site === "same-origin" || site === "none");
  };
  /** The request's URL, or undefined when it cannot be parsed. */
  const parse = (raw: string | undefined): URL | undefined => {
    try {
      return new URL(raw ?? "/", "http://127.0.0.1");
    } catch {
      return undefined;
    }
  };

  const api: CommandHandlers = createHostApi({
    library,
    sessions,
    settings,
    services,
    states,
    shell: "web",
    urls: {
      media: (guest, role) => `${origin}/media/${encodeURIComponent(guest)}/${role}`,
      firmware: (which) => `${origin}/firmware/${which}`,
      state: (guest) => `${origin}/state/${encodeURIComponent(guest)}`,
    },
  });

  const assets = sirv(pageDir, { dev: false, etag: true, gzip: false, brotli: false, dotfiles: false });

  const send = (res: ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    res.end(`${text}\n`);
  };

  /** A file, or `size` bytes of it from `start` (a saved state's payload). */
  const sendFile = (req: IncomingMessage, res: ServerResponse, path: string, part?: { start: number; size: number }): void => {
    const size = part?.size ?? statSync(path).size;
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": size,
      "cache-control": "no-store",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const range = part && part.size > 0 ? { start: part.start, end: part.start + part.size - 1 } : {};
    // In pieces of 1 MiB: a 12 MiB state in 64 KiB pieces (the default) took 3 to 6 times as long here.
    createReadStream(path, { ...range, highWaterMark: SEND_PIECE }).on("error", () => res.destroy()).pipe(res);
  };

  const pageHeaders = {
    "content-security-policy": [
      "default-src 'self'",
      "script-src 'self' 'wasm-unsafe-eval'",
      "worker-src 'self' blob:",
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data: blob:",
      "connect-src 'self' ws://127.0.0.1:* ",
      "object-src 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
  };

  // The page under any spelling the static server would accept (/index.html/, /%69ndex.html).
  const isPage = (pathname: string): boolean => {
    try {
      return posix.normalize(decodeURIComponent(pathname)).replace(/\/+$/, "") === "/index.html";
    } catch {
      return false;
    }
  };
  const ownPeer = ownUserPeer();
  const server = createServer((req, res) => {
    if (ownPeer(req.socket)) serveRequest(req, res);
    else send(res, 403, "This shell serves only the user who started it.");
  });
  const serveRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = parse(req.url);
    if (!url) return send(res, 400, "bad request");
    if (!hosts.includes(req.headers.host ?? "")) return send(res, 421, "wrong Host header: open the address unmachine printed");
    if (url.pathname === "/library/add") {
      // Only the page itself adds guests: its cookie, from its own origin (a PUT is never simple,
      // so another site's page cannot send one without a preflight this server never answers).
      if (req.method !== "PUT") return send(res, 405, "method not allowed");
      if (!auth.hasSession(req.headers.cookie) || req.headers.origin !== origin) return send(res, 403, "only the page of this shell may add guests");
      return receiveUpload(req, res, library, url.searchParams.get("name"));
    }
    if (url.pathname.startsWith("/state/") && req.method === "PUT") {
      // As an upload: the page itself, with its cookie, from its own origin.
      if (!auth.hasSession(req.headers.cookie) || req.headers.origin !== origin) return send(res, 403, "only the page of this shell may save guests' states");
      const session = url.pathname.slice("/state/".length);
      if (!sessions.has(session)) return send(res, 404, "no such running guest session");
      return receiveState(req, res, api["sessions:saveState"], session, url.searchParams.get("tag") ?? "");
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "method not allowed");
    if (url.pathname.startsWith("/library/export/")) {
      // Only the page itself exports: its cookie, on a request the browser says comes from this
      // origin (a GET carries no Origin header of a same-origin page; one that does must be ours).
      const site = req.headers["sec-fetch-site"];
      const fromPage = site === "same-origin" && (req.headers.origin === undefined || req.headers.origin === origin);
      if (!auth.hasSession(req.headers.cookie) || !fromPage) return send(res, 403, "only the page of this shell may export guests");
      let guest: string;
      try {
        guest = decodeURIComponent(url.pathname.slice("/library/export/".length));
      } catch {
        return send(res, 400, "bad guest name");
      }
      return sendExport(req, res, library, sessions, guest);
    }
    for (const [k, v] of Object.entries(pageHeaders)) res.setHeader(k, v);
    const parts = url.pathname.split("/").filter(Boolean);
    try {
      if (url.pathname === "/" || isPage(url.pathname)) {
        res.setHeader("cache-control", "no-store");
        if (url.searchParams.has("code") || url.searchParams.has("token")) {
          // The address's key becomes a cookie, and the key leaves the address bar.
          const cookie = auth.exchange(url.searchParams);
          if (!cookie) return send(res, 403, "This address was used already, has expired or is wrong: open the address that `unmachine serve` printed.");
          res.writeHead(303, { "set-cookie": cookie, location: "/" });
          res.end();
          return;
        }
        if (!auth.hasSession(req.headers.cookie)) {
          return send(res, 403, "This page needs its key: open the address that `unmachine serve` printed.");
        }
        req.url = "/index.html";
        return assets(req, res, () => send(res, 404, "index.html missing"));
      }
      if (parts[0] === "media" || parts[0] === "firmware" || parts[0] === "state") {
        if (!mayFetch(req, url)) return send(res, 403, "missing or wrong token");
        if (parts[0] === "firmware" && parts.length === 2) {
          const firmware = library.firmware();
          const which = parts[1];
          if (!firmware || (which !== "bios" && which !== "vgaBios")) return send(res, 404, "no such firmware");
          return sendFile(req, res, firmware[which]);
        }
        if (parts[0] === "media" && parts.length === 3) {
          const guest = decodeURIComponent(parts[1]!);
          const role = parts[2]!;
          if (!MEDIA_ROLES_SET.has(role)) return send(res, 404, "no such medium");
          const resolved = library.resolve(guest);
          const path = resolved.media[role as keyof typeof resolved.media];
          if (!path) return send(res, 404, `guest ${guest} has no ${role}`);
          return sendFile(req, res, path);
        }
        if (parts[0] === "state" && parts.length === 2) {
          const served = states.served(decodeURIComponent(parts[1]!));
          if (!served) return send(res, 404, "this guest has no saved state to resume");
          return sendFile(req, res, served.path, served);
        }
        return send(res, 404, "not found");
      }
      return assets(req, res, () => send(res, 404, "not found"));
    } catch (error) {
      return send(res, 404, (error as Error).message);
    }
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });

  const refuse = (socket: Duplex, status: number, reason: string): void => {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  };

  server.on("upgrade", (req, socket, head) => {
    socket.on("error", () => socket.destroy());
    if (ownPeer(req.socket)) upgrade(req, socket, head);
    else refuse(socket, 403, "Forbidden");
  });
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = parse(req.url);
    if (!url) return refuse(socket, 400, "Bad Request");
    if (!hosts.includes(req.headers.host ?? "")) return refuse(socket, 421, "Misdirected Request");
    if (req.headers.origin !== origin) return refuse(socket, 403, "Forbidden Origin");
    if (!auth.tokenOk(url.searchParams.get("token")) && !auth.hasSession(req.headers.cookie)) return refuse(socket, 403, "Forbidden");
    const parts = url.pathname.split("/").filter(Boolean);
    if (url.pathname === "/rpc") {
      wss.handleUpgrade(req, socket, head, (ws) => serveCommands(ws));
      return;
    }
    if (parts[0] === "pipe" && parts.length === 3 && isPipeService(parts[2]) && sessions.has(parts[1]!) && sessions.serves(parts[2])) {
      const id = parts[1]!;
      const service = parts[2];
      wss.handleUpgrade(req, socket, head, (ws) => {
        try {
          sessions.attachPipe(id, service, webSocketPipe(ws));
        } catch {
          ws.close(1011, "not served");
        }
      });
      return;
    }
    refuse(socket, 404, "Not Found");
  };

  const serveCommands = (ws: WebSocket): void => {
    // Sessions this page opened end when the page goes away (tab closed, reloaded).
    const opened = new Set<string>();
    ws.on("error", () => ws.terminate());
    ws.on("close", () => {
      for (const id of opened) {
        pages.delete(id);
        sessions.close(id);
      }
    });
    ws.on("message", (data, isBinary) => {
      const reply = (r: CommandReply): void => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(r));
      };
      const raw = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      let request: CommandRequest;
      try {
        if (isBinary || raw.length > MAX_COMMAND_BYTES) throw new Error("a command must be a JSON text message under 64 KiB");
        request = JSON.parse(raw.toString("utf8")) as CommandRequest;
        if (typeof request !== "object" || request === null || typeof request.id !== "number") throw new Error("a command needs a numeric id");
      } catch (error) {
        reply({ id: -1, ok: false, error: (error as Error).message });
        return;
      }
      dispatch(api, request.name, request.args).then(
        (value) => {
          if (request.name === "sessions:open") {
            opened.add((value as { id: string }).id);
            pages.set((value as { id: string }).id, ws);
          }
          reply({ id: request.id, ok: true, value: value ?? null });
          if (request.name === "sessions:open") {
            const current = currentWindows(services, (value as { id: string }).id);
            if (current) pushEvent(current.session, current);
          }
        },
        (error: unknown) => reply({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
      );
    });
  };

  const port = await new Promise<number>((resolvePort, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") reject(new PortInUseError(`port ${options.port} on 127.0.0.1 is in use; choose another with --port, or 0 for any free port`));
      else reject(error);
    });
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      const address = server.address();
      resolvePort(typeof address === "object" && address ? address.port : 0);
    });
  });
  origin = `http://127.0.0.1:${port}`;
  hosts = [`127.0.0.1:${port}`];

  return {
    url: `${origin}/?token=${auth.token}`,
    origin,
    token: auth.token,
    oneTimeUrl: () => `${origin}/?code=${auth.issueCode()}`,
    port,
    sessions,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      windowEvents.dispose();
      sessions.dispose();
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
    },
  };
}
