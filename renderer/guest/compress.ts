// A guest's state compressed or decoded off the page's thread (compress-worker.ts), one worker
// for each, ended when it answers: saves and looks ahead are rare and the worker's zstd module is small.
import type { CodecReply, CodecRequest } from "./compress-worker.js";
import { ownBuffer } from "../../core/bytes.js";

function runCodec(request: CodecRequest, what: string): Promise<CodecReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./compress-worker.ts", import.meta.url), { type: "module" });
    const end = (): void => worker.terminate();
    worker.onmessage = (event: MessageEvent<CodecReply>) => {
      end();
      if (event.data.error === undefined) resolve(event.data);
      else reject(new Error(`the state could not be ${what}: ${event.data.error}`));
    };
    worker.onerror = (event) => {
      end();
      reject(new Error(`the state could not be ${what}: ${event.message || "its worker failed to start"}`));
    };
    worker.postMessage(request, [request.buffer]);
  });
}

/**
 * v86's raw state, compressed as v86 restores it; `raw`'s buffer is handed to the worker, and
 * comes back as `raw` (its RAM's bitmap put first), for a resume to read as it is.
 */
export async function compressOffThread(raw: Uint8Array): Promise<{ bytes: Uint8Array; raw: Uint8Array }> {
  const reply = await runCodec({ kind: "compress", buffer: ownBuffer(raw) }, "compressed");
  if (!reply.bytes || !reply.raw) throw new Error("the state could not be compressed: no answer");
  return { bytes: reply.bytes, raw: reply.raw };
}

/** A compressed state decoded (at most `limit` bytes); `bytes`' buffer is handed to the worker. */
export async function decodeOffThread(bytes: Uint8Array, limit: number): Promise<Uint8Array> {
  const reply = await runCodec({ kind: "decode", buffer: ownBuffer(bytes), limit }, "decoded");
  if (!reply.raw) throw new Error("the state could not be decoded: no answer");
  return reply.raw;
}
