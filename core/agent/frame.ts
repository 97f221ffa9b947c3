// Agent frames: the byte stream of the agent's port (virtio-console /dev/hvc0, or COM2) cut
// into whole messages. A frame is the magic "UM", a u32 little-endian payload length, then the
// payload; guests/agent/umagent.c writes and reads the same layout. The decoder takes bytes in
// any chunking and, once it has seen a bad magic or an oversized length, stays failed: the
// stream cannot be trusted after that, so the session disconnects.

/** The two bytes every frame starts with ("UM"). */
export const FRAME_MAGIC = [0x55, 0x4d] as const;
/** Magic plus the u32 LE payload length. */
export const FRAME_HEADER_SIZE = 6;
/** Largest payload: an 8 MiB clipboard image plus room for the other fields. */
export const MAX_FRAME_PAYLOAD = 8 * 1024 * 1024 + 64 * 1024;

/** One frame on the wire for `payload`. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_PAYLOAD) {
    throw new RangeError(`agent frame payload of ${payload.length} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}`);
  }
  const frame = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  frame[0] = FRAME_MAGIC[0];
  frame[1] = FRAME_MAGIC[1];
  new DataView(frame.buffer).setUint32(2, payload.length, true);
  frame.set(payload, FRAME_HEADER_SIZE);
  return frame;
}

export interface FrameFeed {
  /** The payloads completed by this chunk, in order (those before an error included). */
  frames: Uint8Array[];
  /** Set once the stream is garbage; every later feed returns it again, with no frames. */
  error?: string;
}

/** Shows up to 16 bytes as text where printable, so an error says what arrived instead. */
export function describeBytes(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes.subarray(0, 16)) {
    text += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return `"${text}"${bytes.length > 16 ? "…" : ""}`;
}

/** Incremental frame decoder: feed it bytes as they arrive, in pieces of any size. */
export class FrameDecoder {
  readonly #maxPayload: number;
  readonly #header = new Uint8Array(FRAME_HEADER_SIZE);
  #headerFill = 0;
  #payload: Uint8Array | undefined;
  #payloadFill = 0;
  #error: string | undefined;
  #seen = 0;

  constructor(maxPayload: number = MAX_FRAME_PAYLOAD) {
    this.#maxPayload = maxPayload;
  }

  get error(): string | undefined {
    return this.#error;
  }

  /** True when no partial frame is held. */
  get idle(): boolean {
    return this.#headerFill === 0 && this.#payload === undefined;
  }

  feed(chunk: Uint8Array): FrameFeed {
    const frames: Uint8Array[] = [];
    let at = 0;
    while (this.#error === undefined && at < chunk.length) {
      if (this.#payload === undefined) {
        const take = Math.min(FRAME_HEADER_SIZE - this.#headerFill, chunk.length - at);
        this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
        this.#headerFill += take;
        at += take;
        if (this.#headerFill >= 2 && (this.#header[0] !== FRAME_MAGIC[0] || this.#header[1] !== FRAME_MAGIC[1])) {
          const shown = new Uint8Array([...this.#header.subarray(0, this.#headerFill), ...chunk.subarray(at, at + 16)]);
          this.#fail(`expected a frame (magic "UM") at byte ${this.#seen}, got ${describeBytes(shown)}`);
          break;
        }
        if (this.#headerFill < FRAME_HEADER_SIZE) continue;
        const length = new DataView(this.#header.buffer).getUint32(2, true);
        if (length > this.#maxPayload) {
          this.#fail(`frame at byte ${this.#seen} announces ${length} bytes, more than the limit of ${this.#maxPayload}`);
          break;
        }
        this.#payload = new Uint8Array(length);
        this.#payloadFill = 0;
      }
      const payload = this.#payload;
      const take = Math.min(payload.length - this.#payloadFill, chunk.length - at);
      payload.set(chunk.subarray(at, at + take), this.#payloadFill);
      this.#payloadFill += take;
      at += take;
      if (this.#payloadFill === payload.length) {
        frames.push(payload);
        this.#seen += FRAME_HEADER_SIZE + payload.length;
        this.#payload = undefined;
        this.#headerFill = 0;
      }
    }
    return this.#error === undefined ? { frames } : { frames, error: this.#error };
  }

  #fail(reason: string): void {
    this.#error = reason;
    this.#payload = undefined;
    this.#headerFill = 0;
  }
}
