// FramePipe: the one way bulk bytes cross between the page (or a worker) and the host —
// console bytes now; 9P messages, Ethernet frames and agent frames later. One send() is one
// frame on the far side, in order. Carriers: MessagePort (Electron, workers), WebSocket binary
// frames (web shell), direct calls (in-process). Frames are never merged or split in transit.

import { Emitter, toDisposable, type Disposable } from "../disposable.js";
import { ownBuffer, spansOwnBuffer } from "../bytes.js";

export interface FramePipe extends Disposable {
  send(frame: Uint8Array): void;
  onFrame(listener: (frame: Uint8Array) => void): Disposable;
  onClose(listener: () => void): Disposable;
  readonly closed: boolean;
}

/**
 * The services that may open a pipe, each a stream of frames of its own protocol: serial
 * console bytes, whole 9P messages, whole Ethernet frames, agent (virtio-console) bytes, and
 * hard disk block requests and replies (core/disk/protocol.ts).
 */
export const PIPE_SERVICES = ["console", "p9", "net", "agent", "disk"] as const;
export type PipeService = (typeof PIPE_SERVICES)[number];

/** What a pipe keeps for a listener that has not subscribed yet: 8 MiB. */
export const EARLY_LIMIT = 8 * 1024 * 1024;

export function isPipeService(value: unknown): value is PipeService {
  return typeof value === "string" && (PIPE_SERVICES as readonly string[]).includes(value);
}

/**
 * A pipe over any carrier: `post` puts one frame on the wire, the carrier calls `deliver` for
 * each frame that arrives and `end` when the far side is gone.
 */
export class CarrierPipe implements FramePipe {
  readonly #frames = new Emitter<Uint8Array>();
  readonly #closes = new Emitter<void>();
  #closed = false;
  // Frames that arrive before anyone listens are kept, so nothing is lost at start-up; a far
  // side that sends more than EARLY_LIMIT bytes before then is cut off.
  #early: Uint8Array[] | undefined = [];
  #earlyBytes = 0;

  readonly #post: (frame: Uint8Array) => void;
  readonly #shut: () => void;

  constructor(post: (frame: Uint8Array) => void, shut: () => void = () => {}) {
    this.#post = post;
    this.#shut = shut;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(frame: Uint8Array): void {
    if (this.#closed) return;
    this.#post(frame);
  }

  onFrame(listener: (frame: Uint8Array) => void): Disposable {
    const sub = this.#frames.event(listener);
    const early = this.#early;
    this.#early = undefined;
    if (early) for (const frame of early) listener(frame);
    return sub;
  }

  onClose(listener: () => void): Disposable {
    if (this.#closed) {
      queueMicrotask(listener);
      return toDisposable(() => {});
    }
    return this.#closes.event(listener);
  }

  /** Called by the carrier for each frame received. */
  deliver(frame: Uint8Array): void {
    if (this.#closed) return;
    if (this.#early) {
      this.#earlyBytes += frame.length;
      if (this.#earlyBytes > EARLY_LIMIT) {
        this.dispose();
        return;
      }
      this.#early.push(frame);
    } else this.#frames.fire(frame);
  }

  /** Called by the carrier when the far side is gone. */
  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closes.fire();
    this.#frames.dispose();
    this.#closes.dispose();
  }

  dispose(): void {
    if (this.#closed) return;
    this.#shut();
    this.end();
  }
}

/** Two pipes joined in memory: what one sends the other receives (tests, headless). */
export function createPipePair(): [FramePipe, FramePipe] {
  const ends: CarrierPipe[] = [];
  const far = (i: number): CarrierPipe => ends[1 - i]!;
  for (const i of [0, 1]) {
    ends.push(
      new CarrierPipe(
        (frame) => {
          const copy = frame.slice();
          queueMicrotask(() => far(i).deliver(copy));
        },
        () => queueMicrotask(() => far(i).end()),
      ),
    );
  }
  return [ends[0]!, ends[1]!];
}

/**
 * Minimal shape of a MessagePort, in a worker, a page or Electron. Nothing is ever transferred:
 * Electron's MessagePortMain takes only ports in a transfer list, and a message posted from the
 * page with an ArrayBuffer there reaches the main process as `null`.
 */
export interface PortLike {
  postMessage(message: unknown): void;
  close(): void;
  start?(): void;
}

/** The explicit goodbye on a port; anything that is neither a frame nor this is ignored. */
export const PORT_END = { unmachinePipe: "end" } as const;

/**
 * Exactly the frame's bytes in a buffer of their own. A view is serialized with its whole
 * backing buffer (a Node Buffer's is an 8 KiB pool shared with unrelated data), so a view of
 * part of a buffer, or of a shared one, is copied first.
 */
export function exactBytes(frame: Uint8Array): Uint8Array {
  return spansOwnBuffer(frame) && frame.constructor === Uint8Array ? frame : new Uint8Array(ownBuffer(frame));
}

/**
 * A pipe over a MessagePort. The owner wires incoming messages to `deliver` (DOM ports use
 * `onmessage`, Node and Electron ports `on("message")`), so this stays runtime-free. Each
 * frame is posted as a copy of exactly its bytes, without a transfer list (the message is
 * cloned when posted, so the sender may reuse its buffer at once).
 */
export function portPipe(port: PortLike): CarrierPipe {
  return new CarrierPipe(
    (frame) => port.postMessage(exactBytes(frame)),
    () => {
      try {
        port.postMessage(PORT_END);
      } finally {
        port.close();
      }
    },
  );
}

/**
 * What arrives on a port, turned into a frame, an end, or nothing. Only PORT_END ends the
 * pipe: a message the carrier could not decode (Electron hands over `null`) is dropped.
 */
export function portMessageToFrame(data: unknown): Uint8Array | "end" | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof data === "object" && data !== null && (data as { unmachinePipe?: unknown }).unmachinePipe === PORT_END.unmachinePipe) return "end";
  return undefined;
}

/**
 * A pipe to be connected later: what is sent before connect() waits for it, in order; frames
 * and the close of the pipe it is connected to come through. Lets a machine be built with its
 * services' pipes while they still open (the page sets v86 up meanwhile). Disposed before it is
 * connected, it disposes the pipe connect() is then given.
 */
export interface PendingPipe {
  readonly pipe: FramePipe;
  connect(real: FramePipe): void;
}

export function pendingPipe(): PendingPipe {
  let real: FramePipe | undefined;
  let queued: Uint8Array[] = [];
  const subs: Disposable[] = [];
  const pipe = new CarrierPipe(
    (frame) => {
      if (real) real.send(frame);
      else queued.push(frame.slice());
    },
    () => {
      for (const sub of subs) sub.dispose();
      real?.dispose();
      queued = [];
    },
  );
  return {
    pipe,
    connect(to: FramePipe): void {
      if (real) throw new Error("this pipe is connected already");
      real = to;
      if (pipe.closed) {
        to.dispose();
        return;
      }
      for (const frame of queued) to.send(frame);
      queued = [];
      subs.push(
        to.onFrame((frame) => pipe.deliver(frame)),
        to.onClose(() => pipe.end()),
      );
    },
  };
}
