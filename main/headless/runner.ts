// HeadlessGuest: the main-thread handle on a guest running in a worker (worker.ts). It holds
// the host end of the console pipe, the latest text screen and a bounded serial transcript,
// and offers what the CLI and the vm tests need: wait for text, run a command, stop.

import { MessageChannel, type Worker } from "node:worker_threads";
import { claimWorker } from "./worker-start.js";
import { decodeState } from "../state/state-zstd.js";
import type { CarrierPipe, FramePipe } from "../../core/pipe/frame-pipe.js";
import { DisposableStore, Emitter, type Disposable } from "../../core/disposable.js";
import { nodePortPipe } from "./node-port-pipe.js";
import { execLines, ExecReader, stripAnsi, type ExecResult } from "../../core/console/serial-exec.js";
import type { LaunchPlan } from "../../core/guest/launch-plan.js";
import { DRIVE_NAMES, type SwapDrive } from "../../core/media/drives.js";
import type { FromWorker, HeadlessService, ToWorker, WorkerStart } from "./protocol.js";

const TRANSCRIPT_LIMIT = 256 * 1024;
const MiB = 1024 * 1024;
/** Beyond its RAM, what a machine's raw state may hold (its devices: video memory is the largest) before it is left compressed. */
const DEVICE_STATE_ROOM = 512 * MiB;

export class GuestFaultError extends Error {
  override name = "GuestFaultError";
}
export class GuestTimeoutError extends Error {
  override name = "GuestTimeoutError";
}
/** The guest was stopped (by the user, or it powered off) before what was awaited. */
export class GuestStoppedError extends Error {
  override name = "GuestStoppedError";
}

export interface HeadlessOptions {
  screenInterval?: number;
  /** Host services to serve: each gets the host end of its pipe and returns what to dispose. */
  services?: Partial<Record<HeadlessService, (pipe: FramePipe) => Disposable>>;
  /**
   * Set the machine up now and run it on start(): the services it will have, and whether it
   * will be started from a saved state. Its emulator then loads while the caller reads that
   * state and readies the services.
   */
  startLater?: { services: readonly HeadlessService[]; resumes: boolean };
}

export type GuestEnd = { kind: "stopped" } | { kind: "fault"; message: string };

export class HeadlessGuest implements Disposable {
  readonly console: CarrierPipe;
  readonly #worker: Worker;
  readonly #decoder = new TextDecoder();
  readonly #output = new Emitter<string>();
  readonly #changed = new Emitter<void>();
  /** Serial output as text, as it arrives. */
  readonly onOutput = this.#output.event;
  phase: "booting" | "running" = "booting";
  screen = "";
  #transcript = "";
  ended: GuestEnd | undefined;
  readonly exited: Promise<GuestEnd>;
  #execCount = 0;
  readonly #services = new DisposableStore();
  readonly #pipes = new Map<HeadlessService, FramePipe>();
  #resumes: boolean;
  #started = false;
  readonly #memoryMiB: number;

  /**
   * Boots the plan's machine (from its initial state if it has one) unless options.startLater
   * says to wait for start(). Its ready prompt, if it has one, makes the guest "running"; a
   * machine started from a saved state is "running" as soon as it is restored.
   */
  constructor(plan: Pick<LaunchPlan, "machine" | "ready">, options: HeadlessOptions = {}) {
    const { initialState, ...machine } = plan.machine;
    if (initialState && initialState.kind !== "bytes") throw new Error("a headless guest resumes from a saved state's bytes");
    const channel = new MessageChannel();
    const ports: WorkerStart["ports"] = {};
    const transfer = [channel.port2];
    const services = options.startLater?.services ?? (Object.keys(options.services ?? {}) as HeadlessService[]);
    for (const service of services) {
      const { port1, port2 } = new MessageChannel();
      const pipe = nodePortPipe(port1);
      this.#services.add(pipe);
      this.#pipes.set(service, pipe);
      ports[service] = port2;
      transfer.push(port2);
    }
    const init: WorkerStart = {
      machine,
      resumes: options.startLater?.resumes ?? initialState !== undefined,
      screenInterval: options.screenInterval ?? 100,
      services: [...services],
      consolePort: channel.port2,
      ports,
    };
    if (plan.ready.kind === "prompt") init.prompt = plan.ready.prompt;
    this.#resumes = init.resumes;
    this.#memoryMiB = machine.memory;
    this.#worker = claimWorker();
    this.#worker.postMessage({ type: "init", init } satisfies ToWorker, transfer);

    this.console = nodePortPipe(channel.port1);
    this.console.onFrame((frame) => {
      const text = this.#decoder.decode(frame, { stream: true });
      this.#transcript = (this.#transcript + text).slice(-TRANSCRIPT_LIMIT);
      this.#output.fire(text);
      this.#changed.fire();
    });

    this.exited = new Promise<GuestEnd>((resolveEnd) => {
      const finish = (end: GuestEnd): void => {
        if (this.ended) return;
        this.ended = end;
        this.#changed.fire();
        channel.port1.close();
        resolveEnd(end);
      };
      this.#worker.on("message", (message: FromWorker) => {
        if (message.type === "phase") this.phase = message.phase;
        else if (message.type === "screen") this.screen = message.text;
        else if (message.type === "fault") finish({ kind: "fault", message: message.message });
        else if (message.type === "stopped") finish({ kind: "stopped" });
        this.#changed.fire();
      });
      this.#worker.on("error", (error) => finish({ kind: "fault", message: error.message }));
      this.#worker.on("exit", (code) => finish(code === 0 ? { kind: "stopped" } : { kind: "fault", message: `the emulator exited with code ${code}` }));
    });
    if (!options.startLater) this.start(options.services ?? {}, initialState?.bytes);
  }

  /**
   * Runs the machine: each service attached to its pipe first, then the emulator started from
   * `state` (a saved state's payload, when it was set up to resume) or from power-on.
   */
  start(services: Partial<Record<HeadlessService, (pipe: FramePipe) => Disposable>>, state?: Uint8Array): void {
    if (this.#started) throw new Error("the guest was started already");
    if ((state !== undefined) !== this.#resumes) throw new Error(this.#resumes ? "this guest was set up to resume: give it its state" : "this guest was set up to boot: it takes no state");
    this.#started = true;
    for (const [service, pipe] of this.#pipes) {
      const attach = services[service];
      if (attach) this.#services.add(attach(pipe));
    }
    // Decoded here while the worker sets v86 up (main/state/state-zstd.ts), into shared memory,
    // which the message shares. Where it cannot be, copied once into a buffer of its own that is
    // handed over, not cloned: the caller's (often a view into a read file) stays the caller's.
    // (A Node Buffer's slice() is a view, not a copy: new Uint8Array(view) copies.)
    const decoded = state ? decodeState(state, this.#memoryMiB * MiB + DEVICE_STATE_ROOM) : undefined;
    if (decoded) {
      this.#worker.postMessage({ type: "start", state: decoded } satisfies ToWorker);
      return;
    }
    const own = state ? new Uint8Array(state) : undefined;
    this.#worker.postMessage({ type: "start", state: own } satisfies ToWorker, own ? [own.buffer] : []);
  }

  /** Serial output so far (the last 256 KiB), escape sequences removed. */
  get transcript(): string {
    return stripAnsi(this.#transcript).replace(/\r/g, "");
  }

  /** Resolves once `test` is true of this guest, rejects on a fault, a stop or the timeout. */
  waitFor<T>(test: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolvePromise, reject) => {
      let sub: Disposable | undefined;
      const check = (): boolean => {
        const value = test();
        if (value !== undefined && value !== false) {
          done();
          resolvePromise(value);
          return true;
        }
        if (this.ended) {
          done();
          reject(this.ended.kind === "fault" ? new GuestFaultError(this.ended.message) : new GuestStoppedError(`the guest stopped before ${what}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new GuestTimeoutError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        sub?.dispose();
      };
      if (!check()) sub = this.#changed.event(() => void check());
    });
  }

  /** Waits until the screen or the serial output matches. */
  waitForText(pattern: RegExp, timeoutMs: number): Promise<string> {
    return this.waitFor(
      () => {
        const m = pattern.exec(this.screen) ?? pattern.exec(this.transcript);
        return m ? m[0] : undefined;
      },
      timeoutMs,
      `${pattern} on the screen or the serial console`,
    );
  }

  waitForShell(timeoutMs: number): Promise<true> {
    return this.waitFor(() => this.phase === "running" || undefined, timeoutMs, "the guest's shell prompt");
  }

  /** Runs a command in the guest's serial shell: its output and exit status. */
  async exec(command: string, timeoutMs: number): Promise<ExecResult> {
    const id = `${(this.#execCount++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const reader = new ExecReader(id);
    const sub = this.onOutput((text) => reader.feed(text));
    try {
      const encoder = new TextEncoder();
      for (const line of execLines(command, id)) this.console.send(encoder.encode(line));
      return await this.waitFor(() => reader.result, timeoutMs, `the command to finish`);
    } finally {
      sub.dispose();
    }
  }

  /** Puts an image in the floppy or CD drive while the guest runs (replacing what is there). */
  insert(drive: SwapDrive, image: Uint8Array): Promise<void> {
    const copy = image.slice().buffer;
    return this.#media(drive, { type: "insert", drive, image: copy }, [copy]);
  }

  eject(drive: SwapDrive): Promise<void> {
    return this.#media(drive, { type: "eject", drive }, []);
  }

  #media(drive: SwapDrive, message: ToWorker, transfer: ArrayBuffer[]): Promise<void> {
    if (this.ended) return Promise.reject(new GuestStoppedError("the guest is not running"));
    return new Promise((resolveSwap, reject) => {
      const onMessage = (reply: FromWorker): void => {
        if (reply.type !== "media" || reply.drive !== drive) return;
        this.#worker.off("message", onMessage);
        if (reply.error) reject(new Error(`the ${DRIVE_NAMES[drive]} refused the image: ${reply.error}`));
        else resolveSwap();
      };
      this.#worker.on("message", onMessage);
      this.#worker.postMessage(message, transfer);
    });
  }

  /**
   * Gives the running guest `memory` MiB through its balloon, from the balloon's floor up to its
   * boot RAM (core/v86/balloon.ts); rejects, saying why, when it cannot.
   */
  balloon(memory: number): Promise<number> {
    return this.#resource({ type: "balloon", memory });
  }

  /** Caps the running guest's speed at `percent` of one host core (100: no cap). */
  cpu(percent: number): Promise<number> {
    return this.#resource({ type: "cpu", percent });
  }

  #resource(message: Extract<ToWorker, { type: "balloon" | "cpu" }>): Promise<number> {
    if (this.ended) return Promise.reject(new GuestStoppedError("the guest is not running"));
    return new Promise((resolveChange, reject) => {
      const onMessage = (reply: FromWorker): void => {
        if (reply.type !== "resource" || reply.resource !== message.type) return;
        this.#worker.off("message", onMessage);
        if (reply.value === undefined) reject(new Error(reply.error ?? `the guest did not take the ${message.type} change`));
        else resolveChange(reply.value);
      };
      this.#worker.on("message", onMessage);
      this.#worker.postMessage(message);
    });
  }

  /**
   * Stops the emulator, waits for the host's answers in flight, and saves the machine: v86's raw
   * state (compress it with core/v86/state-codec.ts). The worker then ends as on stop().
   */
  suspend(): Promise<Uint8Array> {
    return this.#state({ type: "suspend" });
  }

  /**
   * Saves the running guest without ending it: the emulator stops, its disks are synced, and it
   * stays stopped (so its overlays can be copied) until `resume()` is called.
   */
  async save(): Promise<{ state: Uint8Array; resume: () => void }> {
    const state = await this.#state({ type: "save" });
    return { state, resume: () => this.#worker.postMessage({ type: "continue" } satisfies ToWorker) };
  }

  #state(message: Extract<ToWorker, { type: "suspend" | "save" }>): Promise<Uint8Array> {
    if (this.ended) return Promise.reject(new GuestStoppedError("the guest is not running"));
    return new Promise((resolveState, reject) => {
      const onMessage = (reply: FromWorker): void => {
        if (reply.type !== "state") return;
        this.#worker.off("message", onMessage);
        if (reply.state) resolveState(new Uint8Array(reply.state));
        else reject(new Error(`the guest's state could not be saved: ${reply.error ?? "no reason given"}`));
      };
      this.#worker.on("message", onMessage);
      void this.exited.then((end) => {
        this.#worker.off("message", onMessage);
        reject(end.kind === "fault" ? new GuestFaultError(end.message) : new GuestStoppedError("the guest stopped before its state was saved"));
      });
      this.#worker.postMessage(message);
    });
  }

  /** Stops the emulator and ends the worker. */
  async stop(): Promise<void> {
    if (this.ended) return;
    this.#worker.postMessage({ type: "stop" } satisfies ToWorker);
    const timer = setTimeout(() => void this.#worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  dispose(): void {
    void this.#worker.terminate();
    this.#services.dispose();
    this.console.dispose();
    this.#output.dispose();
    this.#changed.dispose();
  }
}
