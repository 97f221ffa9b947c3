// GuestSession: one running v86 wired to the host through FramePipes, whichever runtime it is
// in (the page or a Node worker). It owns its listeners and pipes and disposes them; the
// emulator itself belongs to whoever created it. Console: serial port 0 <-> the "console"
// pipe, output batched per emulator slice so one frame carries many bytes. It also watches for
// the guest stopping by itself (a panic on the console or screen, a halted processor): onStop.

import { DisposableStore, Emitter, toDisposable, type Disposable } from "../disposable.js";
import type { FramePipe } from "../pipe/frame-pipe.js";
import { PromptWatcher } from "../console/serial-exec.js";
import { TextScreen } from "../screen/text-screen.js";
import { StopDetector, type GuestStop } from "./stop-detector.js";
import type { Event as V86Event } from "v86";
import { agentRelay, netRelay, serialAgentRelay, type EmulatorBus, type ListenerHost, type SerialHost } from "./relays.js";

/** The part of v86's V86 class a session uses (so tests can drive a fake). */
export interface EmulatorLike {
  add_listener<E extends keyof V86Event>(event: E, listener: (value: V86Event[E]) => void): void;
  remove_listener<E extends keyof V86Event>(event: E, listener: (value: V86Event[E]) => void): void;
  serial_send_bytes(port: number, data: Uint8Array): void;
  /** v86's event bus (present on real V86 instances); needed for the NIC and agent relays. */
  bus?: EmulatorBus;
}

export type GuestPhase = "booting" | "running";

export interface GuestSessionOptions {
  console?: FramePipe;
  /** Ethernet frames to and from the host's network (needs a NIC in the machine). */
  net?: FramePipe;
  /** The agent's bytes on virtio-console 0 (needs virtioConsole in the machine), or on COM2. */
  agent?: FramePipe;
  agentPort?: "virtio" | "com2";
  /** Other things the session owns and disposes with itself (the 9P relay, pipes). */
  owns?: Disposable[];
  /** The guest's prompt (a regular expression): the session is "running" once it shows. */
  prompt?: string;
}

const MAX_FRAME = 16 * 1024;

export class GuestSession implements Disposable {
  readonly screen = new TextScreen();
  readonly #store = new DisposableStore();
  readonly #phase = new Emitter<GuestPhase>();
  readonly #serial = new Emitter<Uint8Array>();
  readonly onPhase = this.#phase.event;
  /** Serial output as it leaves the guest, in batches. */
  readonly onSerial = this.#serial.event;
  readonly #stopped = new Emitter<GuestStop>();
  /** Fires once if the guest stops by itself: panicked, halted for good, or shut down. */
  readonly onStop = this.#stopped.event;
  readonly #detector = new StopDetector();
  #screenSeen = -1;
  #reported = false;
  phase: GuestPhase = "booting";
  #pending: number[] = [];
  #flushQueued = false;
  readonly #emulator: EmulatorLike;
  readonly #console: FramePipe | undefined;

  constructor(emulator: EmulatorLike, options: GuestSessionOptions = {}) {
    this.#emulator = emulator;
    this.#console = options.console;
    this.#store.add(this.#phase);
    this.#store.add(this.#serial);
    this.#store.add(this.#stopped);

    this.#listen("serial0-output-byte", (byte) => {
      this.#pending.push(byte);
      if (this.#pending.length >= MAX_FRAME) this.#flush();
      else if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => this.#flush());
      }
    });
    this.#listen("screen-put-char", ([row, col, chr]) => this.screen.putChar(row, col, chr));
    this.#listen("screen-set-size", ([cols, rows, bpp]) => this.screen.setSize(cols, rows, bpp));

    const stopDecoder = new TextDecoder();
    this.#store.add(this.onSerial((bytes) => this.#verdict(this.#detector.feedSerial(stopDecoder.decode(bytes, { stream: true })))));
    // v86 sends this when the guest runs HLT with interrupts off; its typed event map lacks it.
    const halt = (): void => this.#verdict(this.#detector.halted());
    const untyped = emulator as unknown as { add_listener(event: string, listener: () => void): void; remove_listener(event: string, listener: () => void): void };
    untyped.add_listener("cpu-event-halt", halt);
    this.#store.add(toDisposable(() => untyped.remove_listener("cpu-event-halt", halt)));

    if (options.prompt !== undefined) {
      const watcher = new PromptWatcher(options.prompt);
      const decoder = new TextDecoder();
      const sub = this.onSerial((bytes) => {
        if (watcher.feed(decoder.decode(bytes, { stream: true }))) {
          sub.dispose();
          this.#setPhase("running");
        }
      });
      this.#store.add(sub);
    } else {
      this.#listen("emulator-started", () => this.#setPhase("running"));
    }

    const devices = emulator as unknown as ListenerHost;
    if (options.net && emulator.bus) this.#store.add(netRelay(devices, emulator.bus, options.net));
    if (options.agent && options.agentPort === "com2") this.#store.add(serialAgentRelay(emulator as unknown as SerialHost, options.agent));
    else if (options.agent && emulator.bus) this.#store.add(agentRelay(devices, emulator.bus, options.agent));
    for (const owned of [options.net, options.agent, ...(options.owns ?? [])]) if (owned) this.#store.add(owned);

    if (this.#console) {
      const pipe = this.#console;
      this.#store.add(pipe.onFrame((frame) => this.sendSerial(frame)));
      this.#store.add(this.onSerial((bytes) => pipe.send(bytes)));
      this.#store.add(pipe);
    }
  }

  /** Types bytes into the guest's first serial port. */
  sendSerial(bytes: Uint8Array): void {
    if (this.#store.disposed) return;
    this.#emulator.serial_send_bytes(0, bytes);
  }

  /** How the guest stopped by itself, if it did. */
  get stopped(): GuestStop | undefined {
    return this.#detector.stop;
  }

  /** Looks at the text screen for a panic, if it changed since the last look (call it now and then). */
  checkScreen(): void {
    if (this.#store.disposed || this.screen.version === this.#screenSeen) return;
    this.#screenSeen = this.screen.version;
    this.#verdict(this.#detector.feedScreen(this.screen.text()));
  }

  #verdict(stop: GuestStop | undefined): void {
    if (!stop || this.#store.disposed || this.#reported) return;
    this.#reported = true;
    // After the rest of this batch reaches every listener, so the console shows what led here first.
    queueMicrotask(() => {
      if (!this.#store.disposed) this.#stopped.fire(stop);
    });
  }

  #listen<E extends keyof V86Event>(event: E, listener: (value: V86Event[E]) => void): void {
    this.#emulator.add_listener(event, listener);
    this.#store.add(toDisposable(() => this.#emulator.remove_listener(event, listener)));
  }

  #setPhase(phase: GuestPhase): void {
    if (this.phase === phase) return;
    this.phase = phase;
    this.#phase.fire(phase);
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#pending.length === 0 || this.#store.disposed) return;
    const bytes = Uint8Array.from(this.#pending);
    this.#pending = [];
    this.#serial.fire(bytes);
  }

  dispose(): void {
    this.#flush();
    this.#store.dispose();
  }
}
