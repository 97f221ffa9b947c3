// Bytes handed to what takes an ArrayBuffer (v86's restore, a worker's transfer list, a
// structured clone): a view's own buffer stands for it only when the view spans all of it and
// it is not shared. A Node Buffer may be a slice of an 8 KiB pool of unrelated data, and a
// SharedArrayBuffer's bytes may change under the taker.

/** Whether `bytes` spans the whole of an ArrayBuffer (not a SharedArrayBuffer). */
export function spansOwnBuffer(bytes: ArrayBufferView): bytes is ArrayBufferView<ArrayBuffer> {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
}

/** The bytes as an ArrayBuffer of their own: the view's buffer when it spans all of one, else a copy. */
export function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  return spansOwnBuffer(bytes) ? bytes.buffer : new Uint8Array(bytes).buffer;
}
