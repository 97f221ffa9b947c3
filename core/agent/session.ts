// AgentSession: the host's end of the guest agent (guests/agent/umagent.c) over the byte
// stream of its port. It answers the guest's hello with the agreed protocol version, matches
// replies to requests by id, and never trusts the guest: a malformed, oversized or
// wrong-version frame disconnects the agent with a reason (a malformed clipboard is only
// dropped, with its reason), unknown types are skipped, and no guest input can make it throw. Host-to-guest bytes go out in sends of at most 4096 bytes.

import { DisposableStore, Emitter, type Disposable } from "../disposable.js";
import type { FramePipe } from "../pipe/frame-pipe.js";
import { encodeFrame, FrameDecoder } from "./frame.js";
import { clampDisplaySize } from "./display-size.js";
import {
  CLIPBOARD_IMAGE_CAPABILITY,
  CLIPBOARD_PNG,
  decodeMessage,
  encodeMessage,
  isPng,
  LIMITS,
  MESSAGE_TYPES,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  type AgentMessage,
  type AppsRequest,
  type Clipboard,
  type Display,
  type Exec,
  type GuestApp,
  type GuestWindow,
  type Hello,
  type Launch,
  type Ping,
  type WindowAction,
  type WindowActionRequest,
} from "./messages.js";

/** A byte stream to and from the agent's port: v86's virtio-console events, or a FramePipe. */
export interface AgentTransport {
  send(bytes: Uint8Array): void;
  onData(listener: (bytes: Uint8Array) => void): Disposable;
}

/** The agent's bytes carried by a FramePipe (frames there are arbitrary pieces of the stream). */
export function pipeTransport(pipe: FramePipe): AgentTransport {
  return { send: (bytes) => pipe.send(bytes), onData: (listener) => pipe.onFrame(listener) };
}

/** Timers, injectable for tests; by default the runtime's own. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

interface TimerGlobals {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const runtimeTimers: Timers = {
  setTimeout: (callback, ms) => (globalThis as unknown as TimerGlobals).setTimeout(callback, ms),
  clearTimeout: (handle) => (globalThis as unknown as TimerGlobals).clearTimeout(handle),
};

/** Largest single host-to-guest send (v86 cuts longer virtio-console sends). */
export const AGENT_SEND_CHUNK = 4096;

export const AGENT_DEFAULTS = {
  pingTimeoutMs: 5_000,
  execTimeoutMs: 30_000,
  execMaxOutput: 64 * 1024,
  /** Extra wait after an exec's own timeout, for the guest's report of it to arrive. */
  execGraceMs: 5_000,
  appsTimeoutMs: 10_000,
  /** The agent waits 30 s for a launched app's window; this adds room for its answer. */
  launchTimeoutMs: 35_000,
  windowActionTimeoutMs: 5_000,
} as const;

export interface AgentSessionOptions {
  /** Named in the host's hello, e.g. "unmachine 0.1.0". */
  software?: string;
  /**
   * Ask an agent that is already running (a restored state, a new session on a running guest)
   * to say hello again. Leave it off at boot: bytes that reach the port before the agent has
   * made it raw are echoed back by the guest's tty, mangled.
   */
  probe?: boolean;
  /**
   * The agent a resumed guest had when it was saved (SavedAgent, from `saved()` then). It is
   * still running, its port raw: the probe goes out, and requests right behind it, in the
   * version agreed with it, instead of after its hello comes back (one round trip through a
   * just-restored guest less: 25-35 ms here). Its hello confirms it. Another agent of the same
   * version (restarted) answers them as its own; one of another version cannot be read, and
   * what went out early fails, saying so.
   */
  saved?: SavedAgent;
  timers?: Timers;
  /** The largest single send, e.g. smaller for a serial port; never more than AGENT_SEND_CHUNK. */
  sendChunk?: number;
}

export type AgentState = "waiting" | "ready" | "disconnected";

/** What a suspended guest's session keeps of its agent: the version agreed with it, its pid. */
export interface SavedAgent {
  version: number;
  pid: number;
}

/** A SavedAgent read back (untrusted: from a state file), or undefined if it is not one. */
export function savedAgent(value: unknown): SavedAgent | undefined {
  const { version, pid } = (value ?? {}) as Partial<Record<keyof SavedAgent, unknown>>;
  const isInt = (n: unknown, min: number, max: number): n is number => Number.isSafeInteger(n) && (n as number) >= min && (n as number) <= max;
  return isInt(version, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION) && isInt(pid, 1, 0x7fffffff) ? { version, pid } : undefined;
}

export interface ExecOptions {
  /** The guest kills the command after this long. */
  timeoutMs?: number;
  /** Output beyond this many bytes is dropped (the result says `truncated`). */
  maxOutput?: number;
}

export interface ExecOutcome {
  /** Exit status; 128 + signal when the command was killed, as a shell reports it. */
  status: number;
  /** The signal that ended the command, 0 if none. */
  signal: number;
  timedOut: boolean;
  truncated: boolean;
  /** stdout and stderr as the command interleaved them, decoded as UTF-8. */
  output: string;
  outputBytes: Uint8Array;
}

/** What `launch` answers: the app's first window (in `windows` by then) and its process. */
export interface LaunchOutcome {
  window: number;
  pid: number;
}

/** Why a request failed: the agent answered with an error, went away, or did not answer. */
export class AgentError extends Error {
  override name = "AgentError";
}

type Pending =
  | { kind: "ping"; resolve: (ms: number) => void; reject: (error: Error) => void; timer: unknown; sentAt: number }
  | { kind: "exec"; resolve: (outcome: ExecOutcome) => void; reject: (error: Error) => void; timer: unknown; sentAt: number }
  | { kind: "apps"; resolve: (apps: GuestApp[]) => void; reject: (error: Error) => void; timer: unknown; sentAt: number }
  | { kind: "launch"; resolve: (outcome: LaunchOutcome) => void; reject: (error: Error) => void; timer: unknown; sentAt: number }
  | { kind: "windowAction"; resolve: () => void; reject: (error: Error) => void; timer: unknown; sentAt: number };

type Request = Ping | Exec | AppsRequest | Launch | WindowAction;

const HOST_CAPABILITIES = ["ping", "exec", "clipboard", "display", "windows", "apps", "launch", "window-action", "display.size", CLIPBOARD_IMAGE_CAPABILITY];

export class AgentSession implements Disposable {
  readonly #store = new DisposableStore();
  readonly #hellos = this.#store.add(new Emitter<Hello>());
  readonly #clipboards = this.#store.add(new Emitter<string>());
  readonly #clipboardImages = this.#store.add(new Emitter<Uint8Array>());
  readonly #dropped = this.#store.add(new Emitter<string>());
  readonly #displays = this.#store.add(new Emitter<Display>());
  readonly #disconnects = this.#store.add(new Emitter<string>());
  readonly #windowLists = this.#store.add(new Emitter<readonly GuestWindow[]>());
  /** The guest's hello, each time an agent introduces itself (again after a restart). */
  readonly onHello = this.#hellos.event;
  /** Text the guest put on its clipboard. */
  readonly onClipboard = this.#clipboards.event;
  /** A PNG image the guest put on its clipboard (its signature checked, at most 8 MiB). */
  readonly onClipboardImage = this.#clipboardImages.event;
  /** A message from the guest that was dropped without ending the session, and why (for the log). */
  readonly onDropped = this.#dropped.event;
  /** The guest's screen size, when it first reports it and whenever it changes. */
  readonly onDisplay = this.#displays.event;
  /** The guest's top-level windows (bottom of the stack first), each time the list changes. */
  readonly onWindows = this.#windowLists.event;
  /** Why the session ended; it then ignores the stream and fails every request. */
  readonly onDisconnect = this.#disconnects.event;

  readonly #transport: AgentTransport;
  readonly #timers: Timers;
  readonly #software: string;
  readonly #chunk: number;
  readonly #decoder = new FrameDecoder();
  readonly #pending = new Map<number, Pending>();
  readonly #inbox: Uint8Array[] = [];
  #busy = false;
  #dataSub: Disposable | undefined;
  #state: AgentState = "waiting";
  #reason: string | undefined;
  #version = 0;
  #info: Hello | undefined;
  #infoKey = "";
  #display: Display | undefined;
  #windows: readonly GuestWindow[] | undefined;
  #windowsKey = "";
  /**
   * Request ids start anywhere: a guest resumed from a saved state may still answer a request
   * of the run that saved it (a command that ended after the save), and that answer must not
   * be taken for this session's request of the same id.
   */
  #nextId = 1 + Math.floor(Math.random() * 0xfffffff0);
  /** Requests made before the handshake, sent once it is done. */
  #queued: Request[] = [];
  /** The saved agent requests go out to before its hello (options.saved), and the ids of those sent. */
  #presumed: SavedAgent | undefined;
  readonly #early = new Set<number>();
  #queuedClipboard: Clipboard | undefined;

  constructor(transport: AgentTransport, options: AgentSessionOptions = {}) {
    this.#transport = transport;
    this.#timers = options.timers ?? runtimeTimers;
    this.#software = options.software ?? "unmachine";
    this.#chunk = Math.max(1, Math.min(options.sendChunk ?? AGENT_SEND_CHUNK, AGENT_SEND_CHUNK));
    this.#dataSub = transport.onData((bytes) => this.#receive(bytes));
    this.#presumed = options.saved && savedAgent(options.saved);
    if ((options.probe ?? false) || this.#presumed) this.#send(this.#hostHello(undefined), PROTOCOL_VERSION);
  }

  /** Whether requests go out before the agent's hello: to a resumed guest's saved agent (options.saved), until it answers. */
  get early(): boolean {
    return this.#state === "waiting" && this.#presumed !== undefined;
  }

  /** What a suspended guest keeps of its agent, to take it up early on resume; undefined before its hello. */
  saved(): SavedAgent | undefined {
    const pid = this.#info?.pid;
    return this.#state === "ready" && pid !== undefined ? { version: this.#version, pid } : undefined;
  }

  get state(): AgentState {
    return this.#state;
  }

  /**
   * Asks an agent that is already running to say hello (as `probe` does at construction), while
   * none has: a restored guest's port may drop bytes sent before its emulator runs again.
   */
  probe(): void {
    if (this.#state === "waiting") this.#send(this.#hostHello(undefined), PROTOCOL_VERSION);
  }

  /** The agreed protocol version (0 before the handshake). */
  get version(): number {
    return this.#version;
  }

  /** The guest's last hello. */
  get info(): Hello | undefined {
    return this.#info;
  }

  get display(): Display | undefined {
    return this.#display;
  }

  /** The guest's latest window list, bottom of the stack first; undefined until it reports one. */
  get windows(): readonly GuestWindow[] | undefined {
    return this.#windows;
  }

  /** Why the session was disconnected, once it is. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** Resolves with the guest's hello once the handshake is done. */
  whenReady(timeoutMs: number = AGENT_DEFAULTS.pingTimeoutMs): Promise<Hello> {
    if (this.#state === "ready" && this.#info) return Promise.resolve(this.#info);
    if (this.#state === "disconnected") return Promise.reject(new AgentError(`agent disconnected: ${this.#reason}`));
    return new Promise((resolve, reject) => {
      const subs = new DisposableStore();
      const timer = this.#timers.setTimeout(() => {
        subs.dispose();
        reject(new AgentError(`the guest agent did not say hello within ${timeoutMs} ms; is umagent running in the guest?`));
      }, timeoutMs);
      subs.add(this.onHello((hello) => {
        this.#timers.clearTimeout(timer);
        subs.dispose();
        resolve(hello);
      }));
      subs.add(this.onDisconnect((reason) => {
        this.#timers.clearTimeout(timer);
        subs.dispose();
        reject(new AgentError(`agent disconnected: ${reason}`));
      }));
    });
  }

  /** Round trip to the agent, in milliseconds. */
  ping(timeoutMs: number = AGENT_DEFAULTS.pingTimeoutMs): Promise<number> {
    return new Promise((resolve, reject) => {
      const id = this.#request(timeoutMs, "ping", reject, (timer) => ({ kind: "ping", resolve, reject, timer, sentAt: Date.now() }));
      if (id !== undefined) this.#dispatch({ type: "ping", id });
    });
  }

  /** Runs `command` with the guest's /bin/sh -c; stdin is /dev/null. */
  exec(command: string, options: ExecOptions = {}): Promise<ExecOutcome> {
    const timeoutMs = options.timeoutMs ?? AGENT_DEFAULTS.execTimeoutMs;
    const maxOutput = options.maxOutput ?? AGENT_DEFAULTS.execMaxOutput;
    const size = new TextEncoder().encode(command).length;
    if (size > LIMITS.commandBytes) {
      return Promise.reject(new RangeError(`the command is ${size} bytes; the agent takes at most ${LIMITS.commandBytes}`));
    }
    if (command.includes("\0")) return Promise.reject(new RangeError("the command contains a NUL character"));
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > LIMITS.execTimeoutMs) {
      return Promise.reject(new RangeError(`exec timeout must be 1..${LIMITS.execTimeoutMs} ms, got ${timeoutMs}`));
    }
    if (!Number.isInteger(maxOutput) || maxOutput < 0 || maxOutput > LIMITS.execOutputBytes) {
      return Promise.reject(new RangeError(`exec maxOutput must be 0..${LIMITS.execOutputBytes} bytes, got ${maxOutput}`));
    }
    return new Promise((resolve, reject) => {
      const wait = timeoutMs + AGENT_DEFAULTS.execGraceMs;
      const id = this.#request(wait, "exec", reject, (timer) => ({ kind: "exec", resolve, reject, timer, sentAt: Date.now() }));
      if (id !== undefined) this.#dispatch({ type: "exec", id, command, timeoutMs, maxOutput });
    });
  }

  /** The apps the guest can launch, from its .desktop files. */
  apps(timeoutMs: number = AGENT_DEFAULTS.appsTimeoutMs): Promise<GuestApp[]> {
    const missing = this.#lacks("apps");
    if (missing) return Promise.reject(missing);
    return new Promise((resolve, reject) => {
      const id = this.#request(timeoutMs, "apps", reject, (timer) => ({ kind: "apps", resolve, reject, timer, sentAt: Date.now() }));
      if (id !== undefined) this.#dispatch({ type: "appsRequest", id });
    });
  }

  /**
   * Starts `app` (an app's id, name or command, as `apps` lists them) in the guest and
   * resolves with its first window once the guest maps it.
   */
  launch(app: string, timeoutMs: number = AGENT_DEFAULTS.launchTimeoutMs): Promise<LaunchOutcome> {
    const size = new TextEncoder().encode(app).length;
    if (app === "" || size > LIMITS.appNameBytes || app.includes("\0")) {
      return Promise.reject(new RangeError(`an app name is 1..${LIMITS.appNameBytes} bytes with no NUL character, got ${JSON.stringify(app.slice(0, 64))}`));
    }
    const missing = this.#lacks("launch");
    if (missing) return Promise.reject(missing);
    return new Promise((resolve, reject) => {
      const id = this.#request(timeoutMs, "launch", reject, (timer) => ({ kind: "launch", resolve, reject, timer, sentAt: Date.now() }));
      if (id !== undefined) this.#dispatch({ type: "launch", id, app });
    });
  }

  /**
   * Moves, resizes, raises (and focuses) or closes one of the guest's windows, by its id in the
   * latest list; resolves once the guest's window manager has been asked (the next list shows it).
   */
  windowAction(window: number, action: WindowActionRequest, timeoutMs: number = AGENT_DEFAULTS.windowActionTimeoutMs): Promise<void> {
    if (!this.#windows?.some((w) => w.id === window)) {
      return Promise.reject(new AgentError(`the guest shows no window ${window}`));
    }
    const missing = this.#lacks("window-action");
    if (missing) return Promise.reject(missing);
    let message: WindowAction;
    try {
      message = { type: "windowAction", id: 1, window, action };
      encodeMessage(message);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new RangeError(String(error)));
    }
    return new Promise((resolve, reject) => {
      const id = this.#request(timeoutMs, "windowAction", reject, (timer) => ({ kind: "windowAction", resolve, reject, timer, sentAt: Date.now() }));
      if (id !== undefined) this.#dispatch({ ...message, id });
    });
  }

  /**
   * Asks the guest for a screen of `width` x `height` pixels, clamped to what its VGA shows
   * (display-size.ts); the guest's `display` report says when it has it. Whether it was sent:
   * nothing is queued (only the latest size matters), and an agent without "display.size" is not asked.
   */
  setDisplaySize(width: number, height: number): boolean {
    const info = this.#info;
    if (this.#state !== "ready" || !info?.capabilities.includes("display.size")) return false;
    const size = clampDisplaySize(width, height);
    this.#send({ type: "setDisplay", ...size }, this.#version);
    return true;
  }

  /** Puts `text` on the guest's clipboard (the latest text wins if the agent is not ready yet). */
  setClipboard(text: string): void {
    const size = new TextEncoder().encode(text).length;
    if (size > LIMITS.clipboardBytes) {
      throw new RangeError(`clipboard text is ${size} bytes; the guest agent takes at most ${LIMITS.clipboardBytes}`);
    }
    if (this.#state === "disconnected") return;
    if (this.#state === "waiting") {
      this.#queuedClipboard = { type: "clipboard", text };
      return;
    }
    this.#send({ type: "clipboard", text }, this.#version);
  }

  /**
   * Puts a PNG image on the guest's clipboard (the latest clipboard wins if the agent is not
   * ready yet). False when the agent takes no images (its hello lacks "clipboard.png").
   */
  setClipboardImage(png: Uint8Array): boolean {
    if (png.length > LIMITS.clipboardImageBytes) {
      throw new RangeError(`clipboard image is ${png.length} bytes; the guest agent takes at most ${LIMITS.clipboardImageBytes}`);
    }
    if (!isPng(png)) throw new RangeError("clipboard image is not a PNG");
    const message: Clipboard = { type: "clipboard", mime: CLIPBOARD_PNG, data: png };
    if (this.#state === "waiting") {
      this.#queuedClipboard = message;
      return true;
    }
    if (this.#state === "disconnected" || !this.#info?.capabilities.includes(CLIPBOARD_IMAGE_CAPABILITY)) return false;
    this.#send(message, this.#version);
    return true;
  }

  /**
   * Sets the guest's clock to `epochMs` (milliseconds since the Unix epoch, the host's clock),
   * if the agent is ready: a clock set late is wrong, so nothing is queued. Whether it was sent.
   */
  setTime(epochMs: number): boolean {
    const version = this.#state === "ready" ? this.#version : this.early ? this.#presumed!.version : undefined;
    if (version === undefined || !Number.isFinite(epochMs) || epochMs < 0) return false;
    const ms = Math.floor(epochMs);
    this.#send({ type: "setTime", seconds: Math.floor(ms / 1000), nanoseconds: (ms % 1000) * 1_000_000 }, version);
    return true;
  }

  /** Stops talking to the agent: pending requests fail with `reason`. */
  disconnect(reason: string): void {
    if (this.#state === "disconnected") return;
    this.#state = "disconnected";
    this.#reason = reason;
    this.#dataSub?.dispose();
    this.#dataSub = undefined;
    this.#inbox.length = 0;
    const error = new AgentError(`agent disconnected: ${reason}`);
    this.#failAll(error);
    this.#disconnects.fire(reason);
  }

  dispose(): void {
    this.disconnect("the agent session was closed");
    this.#store.dispose();
  }

  // -------------------------------------------------------------------------

  /** Read through a getter, so a handler that disconnected is seen after the call. */
  get #closed(): boolean {
    return this.#state === "disconnected";
  }

  /** Registers a pending request; undefined (and `reject` called) if the session is over. */
  #request(timeoutMs: number, what: string, reject: (error: Error) => void, make: (timer: unknown) => Pending): number | undefined {
    if (this.#state === "disconnected") {
      reject(new AgentError(`agent disconnected: ${this.#reason}`));
      return undefined;
    }
    const id = this.#takeId();
    const timer = this.#timers.setTimeout(() => {
      if (!this.#pending.delete(id)) return;
      this.#queued = this.#queued.filter((message) => message.id !== id);
      const waiting = this.#state === "waiting" ? " (it never said hello; is umagent running in the guest?)" : "";
      reject(new AgentError(`the guest agent did not answer ${what} within ${timeoutMs} ms${waiting}`));
    }, timeoutMs);
    this.#pending.set(id, make(timer));
    return id;
  }

  #takeId(): number {
    let id = this.#nextId;
    while (this.#pending.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.#nextId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  /** An error if the agent said hello without `capability` (an older agent ignores the request). */
  #lacks(capability: string): AgentError | undefined {
    const info = this.#info;
    if (this.#state !== "ready" || !info || info.capabilities.includes(capability)) return undefined;
    return new AgentError(`the guest agent (${info.software}) cannot ${capability === "apps" ? "list apps" : capability}; install the agent that comes with this host`);
  }

  #dispatch(message: Request): void {
    if (this.#state === "ready") this.#send(message, this.#version);
    else if (this.early) {
      this.#early.add(message.id);
      this.#send(message, this.#presumed!.version);
    } else this.#queued.push(message);
  }

  #hostHello(version: number | undefined): Hello {
    const hello: Hello = {
      type: "hello",
      minVersion: MIN_PROTOCOL_VERSION,
      maxVersion: PROTOCOL_VERSION,
      software: this.#software,
      capabilities: HOST_CAPABILITIES,
    };
    if (version !== undefined) hello.version = version;
    return hello;
  }

  #send(message: AgentMessage, version: number): void {
    if (this.#state === "disconnected") return;
    const frame = encodeFrame(encodeMessage(message, version));
    try {
      for (let at = 0; at < frame.length; at += this.#chunk) {
        this.#transport.send(frame.slice(at, at + this.#chunk));
      }
    } catch (error) {
      this.disconnect(`cannot write to the agent's port: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #receive(bytes: Uint8Array): void {
    if (this.#state === "disconnected") return;
    // A reply sent from inside a handler may come back synchronously: queue it (a copy, the
    // sender may reuse its buffer) behind the frames still being handled, so order is kept.
    this.#inbox.push(this.#busy ? bytes.slice() : bytes);
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#inbox.length > 0 && !this.#closed) {
        const fed = this.#decoder.feed(this.#inbox.shift()!);
        for (const payload of fed.frames) {
          if (this.#closed) break;
          this.#handle(payload);
        }
        if (fed.error !== undefined) this.disconnect(`the agent's stream is not agent frames: ${fed.error}`);
      }
    } catch (error) {
      this.disconnect(`handling the agent's message failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.#busy = false;
    }
  }

  #handle(payload: Uint8Array): void {
    const decoded = decodeMessage(payload);
    if (!decoded.ok && payload[1] === MESSAGE_TYPES.clipboard && this.#state === "ready") {
      // A clipboard the guest got wrong is only its clipboard: the frame around it was whole.
      this.#dropped.fire(`dropped the guest's clipboard: ${decoded.error}`);
      return;
    }
    if (!decoded.ok) {
      this.disconnect(`malformed message from the agent: ${decoded.error}`);
      return;
    }
    const { version, message } = decoded;
    if (message.type === "hello") {
      this.#onHello(message);
      return;
    }
    // Before the handshake the stream may hold what an agent sent to an earlier session.
    if (this.#state !== "ready") return;
    if (version !== this.#version) {
      this.disconnect(`the agent sent a ${message.type} message in protocol version ${version}, but version ${this.#version} was agreed`);
      return;
    }
    switch (message.type) {
      case "ping":
        this.#send({ type: "pong", id: message.id }, this.#version);
        return;
      case "pong": {
        // A pong answers a ping, or acknowledges a window action.
        const kind = this.#pending.get(message.id)?.kind === "windowAction" ? "windowAction" : "ping";
        const pending = this.#settle(message.id, kind, "pong");
        if (pending?.kind === "ping") pending.resolve(Date.now() - pending.sentAt);
        if (pending?.kind === "windowAction") pending.resolve();
        return;
      }
      case "execResult": {
        const pending = this.#settle(message.id, "exec", "execResult");
        if (pending?.kind === "exec") {
          pending.resolve({
            status: message.status,
            signal: message.signal,
            timedOut: message.timedOut,
            truncated: message.truncated,
            output: new TextDecoder().decode(message.output),
            outputBytes: message.output,
          });
        }
        return;
      }
      case "error": {
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        this.#timers.clearTimeout(pending.timer);
        pending.reject(new AgentError(`the guest agent refused ${pending.kind}: ${message.message}`));
        return;
      }
      case "clipboard":
        if ("mime" in message) this.#clipboardImages.fire(message.data);
        else this.#clipboards.fire(message.text);
        return;
      case "display": {
        const last = this.#display;
        if (last && last.mode === message.mode && last.width === message.width && last.height === message.height) return;
        this.#display = message;
        this.#displays.fire(message);
        return;
      }
      case "windows": {
        const key = JSON.stringify(message.windows);
        if (this.#windows !== undefined && key === this.#windowsKey) return;
        this.#windows = message.windows;
        this.#windowsKey = key;
        this.#windowLists.fire(message.windows);
        return;
      }
      case "apps": {
        const pending = this.#settle(message.id, "apps", "apps");
        if (pending?.kind === "apps") pending.resolve(message.apps);
        return;
      }
      case "launched": {
        const pending = this.#settle(message.id, "launch", "launched");
        if (pending?.kind === "launch") pending.resolve({ window: message.window, pid: message.pid });
        return;
      }
      // The host runs nothing on the guest's behalf; other types are for newer hosts.
      case "exec":
      case "setTime":
      case "appsRequest":
      case "launch":
      case "windowAction":
      case "setDisplay":
      case "unknown":
        return;
    }
  }

  /** The pending request a reply answers; a reply of the wrong kind is misbehaviour. */
  #settle(id: number, kind: Pending["kind"], reply: string): Pending | undefined {
    const pending = this.#pending.get(id);
    if (!pending) return undefined; // late: its request already timed out
    if (pending.kind !== kind) {
      this.disconnect(`the agent answered ${pending.kind} request ${id} with ${reply}`);
      return undefined;
    }
    this.#pending.delete(id);
    this.#timers.clearTimeout(pending.timer);
    return pending;
  }

  #onHello(hello: Hello): void {
    const version = Math.min(PROTOCOL_VERSION, hello.maxVersion);
    if (version < Math.max(MIN_PROTOCOL_VERSION, hello.minVersion)) {
      this.disconnect(
        `the guest agent (${hello.software}) speaks protocol versions ${hello.minVersion}..${hello.maxVersion}, ` +
          `this host ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}; install the agent that comes with this host`,
      );
      return;
    }
    const presumed = this.#presumed;
    this.#presumed = undefined;
    if (presumed && presumed.version !== version) this.#failEarly(presumed, version);
    this.#early.clear();
    const previous = this.#info;
    const info: Hello = { ...hello };
    delete info.version;
    const key = JSON.stringify(info);
    const restarted = previous?.pid !== undefined && info.pid !== undefined && previous.pid !== info.pid;
    if (restarted) this.#failAll(new AgentError(`the guest agent restarted (pid ${previous.pid} → ${info.pid}) before answering`));
    const changed = this.#state !== "ready" || key !== this.#infoKey;
    this.#version = version;
    this.#info = info;
    this.#infoKey = key;
    this.#state = "ready";
    if (restarted) this.#display = undefined;
    this.#send(this.#hostHello(version), version);
    const queued = this.#queued;
    this.#queued = [];
    for (const message of queued) this.#send(message, version);
    if (this.#queuedClipboard !== undefined) {
      const clipboard = this.#queuedClipboard;
      this.#queuedClipboard = undefined;
      if (!("mime" in clipboard) || info.capabilities.includes(CLIPBOARD_IMAGE_CAPABILITY)) this.#send(clipboard, version);
    }
    if (changed && !this.#closed) this.#hellos.fire(info);
  }

  /** Fails what went out before the hello in the saved agent's version, when the agent speaks another. */
  #failEarly(presumed: SavedAgent, version: number): void {
    const error = new AgentError(
      `the guest's agent speaks protocol ${version}, not the ${presumed.version} of the one its saved state had: a request sent to it on resume may have run, but its answer cannot be read`,
    );
    for (const id of this.#early) {
      const pending = this.#pending.get(id);
      if (!pending) continue;
      this.#pending.delete(id);
      this.#timers.clearTimeout(pending.timer);
      pending.reject(error);
    }
  }

  #failAll(error: AgentError): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#queued = [];
    for (const request of pending) {
      this.#timers.clearTimeout(request.timer);
      request.reject(error);
    }
  }
}
