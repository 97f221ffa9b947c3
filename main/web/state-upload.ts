// A page's saved guest state, sent to the web shell (whose commands are JSON and cannot carry
// bytes): PUT /state/SESSION?tag=TAG with the compressed state, from the page's own origin with
// its session cookie (checked by server.ts). At most MAX_STATE_BYTES are taken; then the state
// goes to the same handler Electron's "sessions:saveState" reaches, or the one line why not answers.

import type { IncomingMessage, ServerResponse } from "node:http";
import { MAX_STATE_BYTES, type CommandHandlers } from "../../core/ipc/contract.js";

function answer(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(body);
}

const TOO_BIG = `the saved state is larger than the ${MAX_STATE_BYTES / 1024 ** 2} MiB the host takes`;

export function receiveState(req: IncomingMessage, res: ServerResponse, save: CommandHandlers["sessions:saveState"], session: string, tag: string): void {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > MAX_STATE_BYTES) {
    answer(res, 413, TOO_BIG);
    req.resume();
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  let failed = false;
  const fail = (status: number, message: string): void => {
    if (failed) return;
    failed = true;
    chunks.length = 0;
    req.resume();
    answer(res, status, message);
  };
  req.on("data", (chunk: Buffer) => {
    if (failed) return;
    received += chunk.length;
    if (received > MAX_STATE_BYTES) fail(413, TOO_BIG);
    else chunks.push(chunk);
  });
  req.on("aborted", () => fail(400, "the saved state was cut off on its way"));
  req.on("end", () => {
    if (failed) return;
    const bytes = new Uint8Array(Buffer.concat(chunks, received));
    Promise.resolve()
      .then(() => save(session, tag, bytes))
      .then(
        () => answer(res, 204, ""),
        (error: unknown) => answer(res, 400, error instanceof Error ? error.message : String(error)),
      );
  });
}
