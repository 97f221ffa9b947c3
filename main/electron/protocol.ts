// The unmachine:// scheme: the page (unmachine://app/...) and guest media
// (unmachine://media/<guest>/<role>, unmachine://firmware/<which>), served from files the host
// resolves itself. A path in the URL never reaches the file system unchecked.

import { net, protocol } from "electron";
import { join, normalize, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { MEDIA_ROLES } from "../../core/guest/profile.js";
import type { GuestLibrary } from "../guests/library.js";

import { SCHEME } from "./app-url.js";

export { APP_ORIGIN, SCHEME } from "./app-url.js";

export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  `connect-src 'self' ${SCHEME}://media ${SCHEME}://firmware`,
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

export function serveScheme(pageDir: string, library: GuestLibrary): void {
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
    } catch {
      return notFound();
    }
    return notFound();
  });
}
