// The page's state compressor, in a worker of its own: zstd on a guest's state takes a few
// seconds, which on the page's thread would freeze every other guest's screen and console.
// One message in (the raw state, transferred), one out (the compressed bytes, or why not).
import { compressState } from "../../core/v86/state-codec.js";

interface WorkerScope {
  onmessage: ((event: MessageEvent<ArrayBuffer>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;

scope.onmessage = (event) => {
  compressState(new Uint8Array(event.data)).then(
    (bytes) => scope.postMessage({ bytes }, [bytes.buffer]),
    (error: unknown) => scope.postMessage({ error: error instanceof Error ? error.message : String(error) }),
  );
};
