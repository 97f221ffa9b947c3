// The page's state codec, in a worker of its own: zstd on a guest's state takes a few seconds
// to compress and a few hundred milliseconds to decode, which on the page's thread would freeze
// every other guest's screen and console. One message in, one out:
// - "compress": the raw state (transferred) in; the compressed bytes out, with the raw state
//   back as compressState left it (its RAM's bitmap first), both transferred;
// - "decode": a compressed state (transferred) in; the raw state out, transferred.
// An error comes back as why.
import { compressState, decodeState } from "../../core/v86/state-codec.js";

export type CodecRequest = { kind: "compress"; buffer: ArrayBuffer } | { kind: "decode"; buffer: ArrayBuffer; limit: number };
export interface CodecReply {
  bytes?: Uint8Array<ArrayBuffer>;
  raw?: Uint8Array<ArrayBuffer>;
  error?: string;
}

interface WorkerScope {
  onmessage: ((event: MessageEvent<CodecRequest>) => void) | null;
  postMessage(message: CodecReply, transfer?: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;

async function answer(request: CodecRequest): Promise<void> {
  if (request.kind === "compress") {
    const raw = new Uint8Array(request.buffer);
    const bytes = (await compressState(raw)) as Uint8Array<ArrayBuffer>;
    scope.postMessage({ bytes, raw }, bytes.buffer === raw.buffer ? [bytes.buffer] : [bytes.buffer, raw.buffer]);
    return;
  }
  const raw = (await decodeState(new Uint8Array(request.buffer), request.limit)) as Uint8Array<ArrayBuffer>;
  scope.postMessage({ raw }, [raw.buffer]);
}

scope.onmessage = (event) => {
  answer(event.data).catch((error: unknown) => scope.postMessage({ error: error instanceof Error ? error.message : String(error) }));
};
