// Relays between a running v86 and the host's service pipes, one per device: virtio-9p
// (whole messages; v86 routes each reply to its request by tag, so replies may come in any
// order), the NIC (one Ethernet frame per pipe frame) and the agent's virtio-console (bytes,
// sent to the guest in pieces of at most 4096, since v86 cuts longer sends there, and only
// while the guest has a receive buffer posted: v86 drops input that finds none, and its queue
// holds 16 buffers, so a large message, such as a clipboard image, waits for the guest).

import { toDisposable, type Disposable } from "../disposable.js";
import type { FramePipe } from "../pipe/frame-pipe.js";

/** The v86 event bus, which V86 instances carry as `bus` (not in v86's type declarations). */
export interface EmulatorBus {
  send(event: string, value: unknown): void;
}

type Reply = (response: Uint8Array) => void;

/** Resolves waiters once a count of requests in flight falls to zero. */
export class InFlight {
  #count = 0;
  #waiters: (() => void)[] = [];

  get count(): number {
    return this.#count;
  }

  add(): void {
    this.#count++;
  }

  done(): void {
    if (this.#count > 0) this.#count--;
    if (this.#count === 0) this.#release();
  }

  /** Resolves when nothing is in flight (at once if nothing is). */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolveIdle) => this.#waiters.push(resolveIdle));
  }

  /** Nothing more will be answered (the pipe closed): let the waiters go. */
  clear(): void {
    this.#count = 0;
    this.#release();
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter();
  }
}

export interface P9Relay extends Disposable {
  handle9p(request: Uint8Array, reply: Reply): void;
  /** Requests sent that have no reply yet. */
  readonly inFlight: number;
  idle(): Promise<void>;
}

/**
 * A handle9p hook for V86Options that sends each request to the host's 9P server. `idle()`
 * resolves once every request sent has its reply (a reply lands in guest memory even while the
 * emulator is stopped, so a state is saved only after it).
 */
export function p9Relay(pipe: FramePipe): P9Relay {
  let reply: Reply | undefined;
  const inFlight = new InFlight();
  const sub = pipe.onFrame((response) => {
    inFlight.done();
    reply?.(response);
  });
  const closed = pipe.onClose(() => inFlight.clear());
  return {
    handle9p(request, replyFn) {
      reply = replyFn;
      inFlight.add();
      pipe.send(request);
    },
    get inFlight() {
      return inFlight.count;
    },
    idle: () => inFlight.idle(),
    dispose: () => {
      sub.dispose();
      closed.dispose();
      inFlight.clear();
    },
  };
}

/** Largest single send to v86's virtio-console (measured: longer sends are cut). */
export const VIRTIO_CONSOLE_CHUNK = 4096;

export interface ListenerHost {
  add_listener(event: string, listener: (value: Uint8Array) => void): void;
  remove_listener(event: string, listener: (value: Uint8Array) => void): void;
}

/** Joins a device's byte or frame events to a pipe, both ways. */
function relay(emulator: ListenerHost, bus: EmulatorBus, pipe: FramePipe, out: string, into: string, chunk: number): Disposable {
  const onOut = (bytes: Uint8Array): void => pipe.send(bytes);
  emulator.add_listener(out, onOut);
  const sub = pipe.onFrame((frame) => {
    for (let at = 0; at < frame.length; at += chunk) bus.send(into, frame.subarray(at, at + chunk));
  });
  return toDisposable(() => {
    emulator.remove_listener(out, onOut);
    sub.dispose();
  });
}

/** The NIC: "net0-send" frames go to the host, host frames arrive as "net0-receive". */
export function netRelay(emulator: ListenerHost, bus: EmulatorBus, pipe: FramePipe): Disposable {
  return relay(emulator, bus, pipe, "net0-send", "net0-receive", Number.MAX_SAFE_INTEGER);
}

/** The agent's port on COM2 (/dev/ttyS1), for guests without virtio: bytes batched per slice. */
export interface SerialHost {
  add_listener(event: string, listener: (byte: number) => void): void;
  remove_listener(event: string, listener: (byte: number) => void): void;
  serial_send_bytes(port: number, data: Uint8Array): void;
}

export function serialAgentRelay(emulator: SerialHost, pipe: FramePipe): Disposable {
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const bytes = Uint8Array.from(pending);
    pending = [];
    pipe.send(bytes);
  };
  const onByte = (byte: number): void => {
    if (pending.push(byte) === 1) queueMicrotask(flush);
  };
  emulator.add_listener("serial1-output-byte", onByte);
  const sub = pipe.onFrame((frame) => emulator.serial_send_bytes(1, frame));
  return toDisposable(() => {
    emulator.remove_listener("serial1-output-byte", onByte);
    sub.dispose();
  });
}

/** The agent's port, virtio-console 0 (/dev/hvc0 in the guest). */
export function agentRelay(emulator: ListenerHost, bus: EmulatorBus, pipe: FramePipe, room: () => boolean = virtioConsoleRoom(emulator)): Disposable {
  const out = "virtio-console0-output-bytes";
  const onOut = (bytes: Uint8Array): void => pipe.send(bytes);
  emulator.add_listener(out, onOut);
  const waiting: Uint8Array[] = [];
  const timers = globalThis as unknown as { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
  let timer: unknown;
  const pump = (): void => {
    timer = undefined;
    while (waiting.length > 0 && room()) bus.send("virtio-console0-input-bytes", waiting.shift()!);
    if (waiting.length > 0) timer = timers.setTimeout(pump, AGENT_RETRY_MS);
  };
  const sub = pipe.onFrame((frame) => {
    for (let at = 0; at < frame.length; at += VIRTIO_CONSOLE_CHUNK) waiting.push(frame.slice(at, at + VIRTIO_CONSOLE_CHUNK));
    if (timer === undefined) pump();
  });
  return toDisposable(() => {
    emulator.remove_listener(out, onOut);
    sub.dispose();
    if (timer !== undefined) timers.clearTimeout(timer);
    waiting.length = 0;
  });
}

/** How soon a send that found no receive buffer in the guest is tried again, in ms. */
const AGENT_RETRY_MS = 2;

interface VirtioQueue {
  has_request(): boolean;
}

/**
 * Whether the guest has a receive buffer posted on virtio-console 0 (v86's device, reached
 * through the V86 instance; its queue 0 is port 0's receive queue). A V86 still setting up
 * has no device yet, and what is sent to it then is lost (a resumed guest's agent would miss
 * the host's hello): it waits for the device. A stand-in without v86's bus sends at once.
 */
export function virtioConsoleRoom(emulator: unknown): () => boolean {
  return () => {
    const host = emulator as { emulator_bus?: unknown; v86?: { cpu?: { devices?: { virtio_console?: { virtio?: { queues?: VirtioQueue[] } } } } } };
    const queue = host.v86?.cpu?.devices?.virtio_console?.virtio?.queues?.[0];
    if (typeof queue?.has_request === "function") return queue.has_request();
    return host.emulator_bus === undefined;
  };
}
