// A page upload of a dropped image (the web shell's way to add a guest: the host cannot see a
// browser's file). PUT /library/add?name=FILE with the file's bytes, from the page's own origin
// with its session cookie (checked by server.ts). The bytes are streamed to a hidden folder in the
// data folder, never held whole, at most MAX_UPLOAD bytes; then added as a guest whose image they
// become (main/guests/library-edit.ts), or removed with the reason as the answer.

import { createWriteStream, rmSync } from "node:fs";
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ImageError } from "../../core/media/detect.js";
import type { GuestLibrary } from "../guests/library.js";
import { addGuest } from "../guests/library-edit.js";
import { LibraryError } from "../guests/user-guests.js";
import { PRIVATE_FILE_MODE } from "../private-files.js";

/** The largest upload: 8 GiB, so that a hard disk image past 2 GiB can be added from a browser. */
export const MAX_UPLOAD = 8 * 1024 ** 3;

function answer(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

export function receiveUpload(req: IncomingMessage, res: ServerResponse, library: GuestLibrary, name: string | null): void {
  // The file's own name only: no folders, no leading dots (a hidden file's name is still its name).
  const shown = ((name ?? "").split(/[/\\]/).pop() ?? "").replace(/\0/g, "_").replace(/^[.\s]+/, "").slice(0, 255);
  if (shown === "") return answer(res, 400, "the upload needs the file's name (?name=)");
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > MAX_UPLOAD) {
    answer(res, 413, `${shown}: more than the ${MAX_UPLOAD / 1024 ** 3} GiB a page can upload; add it with: unmachine add FILE`);
    req.resume();
    return;
  }
  const folder = library.user.uploadFolder();
  const path = join(folder, "image");
  const out = createWriteStream(path, { flags: "wx", mode: PRIVATE_FILE_MODE });
  let received = 0;
  let failed = false;
  const fail = (status: number, message: string): void => {
    if (failed) return;
    failed = true;
    out.destroy();
    req.unpipe(out);
    req.resume();
    rmSync(folder, { recursive: true, force: true });
    answer(res, status, message);
  };
  req.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (received > MAX_UPLOAD) fail(413, `${shown}: more than the ${MAX_UPLOAD / 1024 ** 3} GiB a page can upload; add it with: unmachine add FILE`);
  });
  req.on("aborted", () => fail(400, "the upload was cut off"));
  out.on("error", (error) => fail(500, `${shown}: could not be stored (${error.message})`));
  out.on("finish", () => {
    if (failed) return;
    try {
      const added = addGuest(library, path, { displayName: shown, upload: true });
      const summary = library.summaries().find((g) => g.name === added.name);
      answer(res, 200, JSON.stringify({ ...summary, detected: added.description }), "application/json");
    } catch (error) {
      const known = error instanceof ImageError || error instanceof LibraryError;
      answer(res, known ? 400 : 500, (error as Error).message);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
  req.pipe(out);
}
