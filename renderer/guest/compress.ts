// Compresses a guest's raw state off the page's thread (compress-worker.ts), one worker per
// save, ended when it answers: saves are rare and the worker's zstd module is small.

/** v86's raw state, compressed as v86 restores it; `raw`'s buffer is handed to the worker. */
export function compressOffThread(raw: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./compress-worker.ts", import.meta.url), { type: "module" });
    const end = (): void => worker.terminate();
    worker.onmessage = (event: MessageEvent<{ bytes?: Uint8Array; error?: string }>) => {
      end();
      if (event.data.bytes) resolve(event.data.bytes);
      else reject(new Error(`the state could not be compressed: ${event.data.error ?? "no answer"}`));
    };
    worker.onerror = (event) => {
      end();
      reject(new Error(`the state could not be compressed: ${event.message || "the compressor failed to start"}`));
    };
    const buffer = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw.buffer : raw.slice().buffer;
    worker.postMessage(buffer, [buffer as ArrayBuffer]);
  });
}
