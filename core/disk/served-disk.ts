// A hard disk the host serves, as v86 takes it: an object with get/set/load (v86's "loadable"
// buffer, libv86's `r.get&&r.set&&r.load`), reading and writing blocks through the "disk"
// FramePipe (protocol.ts) to the host (main/host/disk-service.ts). The page and the headless
// worker hold only sector 0 (v86 reads it synchronously to guess the geometry), never the disk.
// Requests are answered in order, so a read after a write sees it.

import type { V86Options } from "v86";
import { DisposableStore, type Disposable } from "../disposable.js";
import type { FramePipe } from "../pipe/frame-pipe.js";
import type { DiskRole, LaunchMachine } from "../guest/launch-plan.js";
import { decodeReply, DISK_ROLES, encodeRequest, MAX_DISK_IO, type DiskReply, type DiskRequest } from "./protocol.js";

const SECTOR = 512;

type Pending = (reply: DiskReply) => void;
/** A request before the client gives it its id. */
type Unsent = DiskRequest extends infer R ? (R extends DiskRequest ? Omit<R, "id"> : never) : never;

/** One "disk" pipe's requests and their replies, for all the disks it serves. */
export class DiskClient implements Disposable {
  readonly #pipe: FramePipe;
  readonly #pending = new Map<number, Pending>();
  readonly #store = new DisposableStore();
  #nextId = 1;
  #idle: (() => void)[] = [];
  readonly #onError: (message: string) => void;
  #failed = false;

  constructor(pipe: FramePipe, onError: (message: string) => void) {
    this.#pipe = pipe;
    this.#onError = onError;
    this.#store.add(
      pipe.onFrame((frame) => {
        let reply: DiskReply;
        try {
          reply = decodeReply(frame);
        } catch (error) {
          this.#fail(`the host's disk service sent a bad reply: ${(error as Error).message}`);
          return;
        }
        const pending = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        pending?.(reply);
        this.#releaseIdle();
      }),
    );
    this.#store.add(pipe.onClose(() => this.#fail("the host's disk service closed")));
  }

  #fail(message: string): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const answer of pending) answer({ op: "read", id: 0, ok: false, message });
    this.#releaseIdle();
    if (!this.#failed) {
      this.#failed = true;
      this.#onError(message);
    }
  }

  /** Sends one request; resolves with its reply's data, rejects with the host's message. */
  request(request: Unsent): Promise<Uint8Array> {
    if (this.#pipe.closed) return Promise.reject(new Error("the host's disk service is closed"));
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (reply) => (reply.ok ? resolve(reply.data) : reject(new Error(reply.message))));
      this.#pipe.send(encodeRequest({ ...request, id } as DiskRequest));
    });
  }

  /** How many requests wait for their reply. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Resolves once no request waits for its reply. With the emulator stopped a reply still lands
   * in guest memory, so a state is saved after this (and after v86's callbacks, which the
   * caller lets run: they may send more).
   */
  idle(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise<void>((resolveIdle) => this.#idle.push(resolveIdle));
  }

  #releaseIdle(): void {
    if (this.#pending.size > 0) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const waiter of waiters) waiter();
  }

  /** Reports a failed disk operation (the guest then sees zeros or a lost write). */
  report(message: string): void {
    this.#onError(message);
  }

  dispose(): void {
    this.#store.dispose();
    this.#pending.clear();
    this.#releaseIdle();
  }
}

/** v86's loadable buffer for one served disk. */
export class ServedDiskBuffer {
  readonly byteLength: number;
  readonly #client: DiskClient;
  readonly #role: DiskRole;
  #first: Uint8Array | undefined;
  /** Set by v86 before load(); called once the disk is ready. */
  onload: ((event: object) => void) | undefined;
  onprogress: ((event: object) => void) | undefined;

  constructor(client: DiskClient, role: DiskRole, size: number) {
    this.#client = client;
    this.#role = role;
    this.byteLength = size;
  }

  load(): void {
    queueMicrotask(() => this.onload?.({}));
  }

  /** v86 asks for sector 0 this way before it builds the IDE drives, which read it synchronously. */
  get_and_cache(start: number, length: number, callback: (bytes: Uint8Array) => void): void {
    void this.#read(start, length).then((bytes) => {
      if (start === 0) this.#first = bytes.slice(0, SECTOR);
      callback(bytes);
    });
  }

  async #read(start: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const parts: Promise<void>[] = [];
    for (let at = 0; at < length; at += MAX_DISK_IO) {
      const size = Math.min(MAX_DISK_IO, length - at);
      parts.push(
        this.#client.request({ op: "read", disk: this.#role, offset: start + at, length: size }).then(
          (data) => out.set(data.subarray(0, size), at),
          (error: unknown) => this.#client.report(`${this.#role}: reading ${size} bytes at ${start + at} failed: ${(error as Error).message}`),
        ),
      );
    }
    await Promise.all(parts);
    return out;
  }

  get(start: number, length: number, callback: (bytes: Uint8Array) => void): void {
    void this.#read(start, length).then(callback);
  }

  set(start: number, data: Uint8Array, callback: () => void): void {
    // v86's PIO path hands over a view of a buffer it reuses: copy before anything is queued.
    const copy = data.slice();
    if (start < SECTOR && this.#first) this.#first.set(copy.subarray(0, Math.max(0, Math.min(copy.length, this.#first.length - start))), start);
    const parts: Promise<void>[] = [];
    for (let at = 0; at < copy.length; at += MAX_DISK_IO) {
      const part = copy.subarray(at, Math.min(copy.length, at + MAX_DISK_IO));
      parts.push(
        this.#client.request({ op: "write", disk: this.#role, offset: start + at, data: part }).then(
          () => undefined,
          (error: unknown) => this.#client.report(`${this.#role}: writing ${part.length} bytes at ${start + at} failed: ${(error as Error).message}`),
        ),
      );
    }
    void Promise.all(parts).then(callback);
  }

  /** What v86 may read synchronously: only sector 0, kept since get_and_cache. */
  get_from_cache(start: number, length: number): Uint8Array | undefined {
    if (!this.#first || start + length > this.#first.length) return undefined;
    return this.#first.slice(start, start + length);
  }

  get_buffer(callback: (buffer?: ArrayBuffer) => void): void {
    callback(undefined);
  }

  /** A saved machine state holds nothing of a served disk: its data is the host's overlay. */
  get_state(): unknown[] {
    return [];
  }

  set_state(): void {}
}

/**
 * The machine's served hard disks as v86 takes them, through one client. v86's typings know
 * only images, but its loader takes any object with get, set and load: that is said here once.
 */
export function withServedDisks(options: V86Options, machine: Pick<LaunchMachine, "media">, client: DiskClient | undefined): V86Options {
  const disks: Partial<Record<DiskRole, ServedDiskBuffer>> = {};
  for (const role of DISK_ROLES) {
    const source = machine.media[role];
    if (source?.kind !== "served") continue;
    if (!client) throw new Error(`${role}: a served disk needs the host's disk service`);
    disks[role] = new ServedDiskBuffer(client, role, source.size);
  }
  return { ...options, ...(disks as Partial<Record<DiskRole, V86Options["hda"]>>) };
}

/** What a runtime's image loader returns for a served disk until withServedDisks replaces it. */
export const SERVED_PLACEHOLDER = { buffer: new ArrayBuffer(0) } as const;
