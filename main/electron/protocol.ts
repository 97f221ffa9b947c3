// The unmachine:// scheme: the page (unmachine://app/...) and guest media
// (unmachine://media/<guest>/<role>, unmachine://firmware/<which>) and the payload of the saved
// state a guest resumes (unmachine://state/<guest>), served from files the host resolves itself. A path in the URL never reaches the file system unchecked.

import { net, protocol } from "electron";
import { join, normalize, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { MEDIA_ROLES } from "../../core/guest/profile.js";
import { closeSync, openSync, readSync } from "node:fs";
import type { GuestLibrary } from "../guests/library.js";
import type { PageStates, ServedState } from "../host/page-states.js";

import { SCHEME } from "./app-url.js";

export { APP_ORIGIN, SCHEME } from "./app-url.js";

export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  `connect-src 'self' ${SCHEME}://media ${SCHEME}://firmware ${SCHEME}://state`,
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Must run before the app is ready. */
export function registerScheme(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true, corsEnabled: true } },
  ]);
}

function notFound(): Response {
  return new Response("not found", { status: 404 });
}

/** A saved state's payload, read from its file (a few MiB at most). */
function readPayload(state: ServedState): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(state.size);
  const fd = openSync(state.path, "r");
  try {
    for (let at = 0; at < bytes.length; ) {
      const read = readSync(fd, bytes, at, bytes.length - at, state.start + at);
      if (read === 0) throw new Error("the state file is shorter than it was");
      at += read;
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

export function serveScheme(pageDir: string, library: GuestLibrary, states: PageStates): void {
  protocol.handle(SCHEME, async (request) => {
    const url = new URL(request.url);
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (url.host === "app") {
      const file = normalize(join(pageDir, ...(parts.length ? parts : ["index.html"])));
      if (!file.startsWith(pageDir + sep)) return notFound();
      const response = await net.fetch(pathToFileURL(file).href).catch(notFound);
      const headers = new Headers(response.headers);
      headers.set("content-security-policy", PAGE_CSP);
      headers.set("x-content-type-options", "nosniff");
      return new Response(response.body, { status: response.status, headers });
    }
    try {
      if (url.host === "firmware" && parts.length === 1) {
        const firmware = library.firmware();
        const which = parts[0];
        if (!firmware || (which !== "bios" && which !== "vgaBios")) return notFound();
        return await net.fetch(pathToFileURL(firmware[which]).href);
      }
      if (url.host === "media" && parts.length === 2 && (MEDIA_ROLES as readonly string[]).includes(parts[1]!)) {
        const path = library.resolve(parts[0]!).media[parts[1] as (typeof MEDIA_ROLES)[number]];
        return path ? await net.fetch(pathToFileURL(path).href) : notFound();
      }
      if (url.host === "state" && parts.length === 1) {
        const state = states.served(parts[0]!);
        return state ? new Response(readPayload(state), { headers: { "content-type": "application/octet-stream" } }) : notFound();
      }
    } catch {
      return notFound();
    }
    return notFound();
  });
}
