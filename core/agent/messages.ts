// Agent messages: the payload of one frame (frame.ts), encoded and decoded with every field
// checked. Layout, shared with guests/agent/umagent.c: u8 protocol version, u8 type, u32 LE
// request id, then fields as TLV (u8 tag, u32 LE length, value); integers are u32 LE, text
// is UTF-8 (checked strictly), lists repeat their tag. Unknown types and unknown tags are
// skipped so newer peers can add them; anything short, lying or out of range is an error.

/** The protocol versions this side speaks; hello negotiates the highest both know. */
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;

export const MESSAGE_TYPES = {
  hello: 1,
  ping: 2,
  pong: 3,
  exec: 4,
  execResult: 5,
  clipboard: 6,
  display: 7,
  error: 8,
  setTime: 9,
  windows: 10,
  appsRequest: 11,
  apps: 12,
  launch: 13,
  launched: 14,
  windowAction: 15,
  setDisplay: 16,
} as const;
export type MessageType = keyof typeof MESSAGE_TYPES;

/** Caps applied by both sides (umagent.c has the same numbers). */
export const LIMITS = {
  clipboardBytes: 1024 * 1024,
  /** A PNG on the clipboard (agents with the "clipboard.png" capability). */
  clipboardImageBytes: 8 * 1024 * 1024,
  mimeBytes: 64,
  commandBytes: 64 * 1024,
  execOutputBytes: 1024 * 1024,
  execTimeoutMs: 24 * 60 * 60 * 1000,
  infoBytes: 256,
  errorBytes: 1024,
  capabilities: 64,
  capabilityBytes: 32,
  displaySize: 65535,
  windows: 256,
  titleBytes: 1024,
  classBytes: 256,
  /** X11 coordinates are 16-bit signed. */
  coordinate: 32768,
  apps: 128,
  appIdBytes: 128,
  appNameBytes: 256,
  appExecBytes: 1024,
  iconBytes: 64 * 1024,
} as const;

/** u8 version, u8 type, u32 id. */
export const MESSAGE_HEADER_SIZE = 6;

/** Who is who. The guest says what it is; the host's answer carries the agreed `version`. */
export interface Hello {
  type: "hello";
  minVersion: number;
  maxVersion: number;
  /** Set in the host's answer: the version both sides use from now on. */
  version?: number;
  /** "umagent 1.0.0", "unmachine 0.1.0". */
  software: string;
  /** uname: sysname, release, version, machine, nodename. */
  os?: string;
  osRelease?: string;
  osVersion?: string;
  machine?: string;
  hostname?: string;
  capabilities: string[];
  /** The agent's process id, so a restarted agent is told from a repeated hello. */
  pid?: number;
}

export interface Ping {
  type: "ping";
  id: number;
}

export interface Pong {
  type: "pong";
  id: number;
}

/** Run `command` with /bin/sh -c, stdin from /dev/null, stdout and stderr combined. */
export interface Exec {
  type: "exec";
  id: number;
  command: string;
  timeoutMs: number;
  maxOutput: number;
}

export interface ExecResult {
  type: "execResult";
  id: number;
  /** Exit status 0..255; 128 + signal when the command was killed. */
  status: number;
  /** The signal that ended the command, 0 if none. */
  signal: number;
  timedOut: boolean;
  truncated: boolean;
  output: Uint8Array;
}

/** The clipboard, either way (the guest's changes, or the host setting it): text, or a PNG image. */
export type Clipboard = ClipboardText | ClipboardImage;

/** Text: every agent takes it. */
export interface ClipboardText {
  type: "clipboard";
  text: string;
}

/** A PNG image: only for agents whose hello lists CLIPBOARD_IMAGE_CAPABILITY. */
export interface ClipboardImage {
  type: "clipboard";
  mime: typeof CLIPBOARD_PNG;
  data: Uint8Array;
}

export const CLIPBOARD_TEXT = "text/plain;charset=utf-8";
export const CLIPBOARD_PNG = "image/png";
/** The hello capability of a side that takes PNG images on the clipboard. */
export const CLIPBOARD_IMAGE_CAPABILITY = "clipboard.png";
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Whether `data` starts with the PNG signature (the image itself is left to the host's decoder). */
export function isPng(data: Uint8Array): boolean {
  return data.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((byte, i) => data[i] === byte);
}

/** The guest's screen: columns and rows in text mode, pixels in graphics mode. */
export interface Display {
  type: "display";
  mode: "text" | "graphics";
  width: number;
  height: number;
}

/** A request (`id`) that failed before it could run. */
export interface ErrorReply {
  type: "error";
  id: number;
  message: string;
}

/** Sets the guest's clock (CLOCK_REALTIME) to this time since the Unix epoch, UTC. */
export interface SetTime {
  type: "setTime";
  seconds: number;
  nanoseconds: number;
}

/** A rectangle in the guest's screen (root window) coordinates, in pixels. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One top-level window: a client the guest's window manager manages. */
export interface GuestWindow extends Rect {
  /** The X window id of the client. x, y, width and height are its content, in root coordinates. */
  id: number;
  title: string;
  minimized: boolean;
  focused: boolean;
  /** _NET_WM_PID, when the client sets it. */
  pid?: number;
  /** WM_CLASS's class, e.g. "XTerm". */
  className?: string;
  /** The window manager's frame around it (title bar and borders included). */
  frame: Rect;
}

/** The guest's top-level windows, bottom of the stack first; sent whenever anything changes. */
export interface Windows {
  type: "windows";
  windows: GuestWindow[];
}

/** Asks for the apps the guest can launch. */
export interface AppsRequest {
  type: "appsRequest";
  id: number;
}

/** An app from one of the guest's .desktop files. */
export interface GuestApp {
  /** The .desktop file's name without the suffix, e.g. "xcalc". */
  id: string;
  name: string;
  /** The command, field codes removed. */
  exec: string;
  /** A PNG icon, when the guest has a small one. */
  icon?: Uint8Array;
}

export interface Apps {
  type: "apps";
  id: number;
  apps: GuestApp[];
}

/** Starts an app (by its id, name or command) and answers with its first window. */
export interface Launch {
  type: "launch";
  id: number;
  app: string;
}

export interface Launched {
  type: "launched";
  id: number;
  /** The new window's X id (as in the windows list). */
  window: number;
  pid: number;
}

/** What the host asks of one guest window: its content moved or resized (root coordinates), raised, closed. */
export type WindowActionRequest =
  | { kind: "move"; x: number; y: number }
  | { kind: "resize"; width: number; height: number }
  | { kind: "raise" }
  | { kind: "close" };

export const WINDOW_ACTIONS = ["move", "resize", "raise", "close"] as const;

/**
 * Acts on one window of the current list (umagent.c refuses an id it does not list). The agent
 * answers a pong of the same id once the window manager has been asked, or an error.
 */
export interface WindowAction {
  type: "windowAction";
  id: number;
  window: number;
  action: WindowActionRequest;
}

/** Asks the guest for a screen of this size (the agent clamps it and sets it with xrandr). */
export interface SetDisplay {
  type: "setDisplay";
  width: number;
  height: number;
}

export type AgentMessage =
  | Hello
  | Ping
  | Pong
  | Exec
  | ExecResult
  | Clipboard
  | Display
  | ErrorReply
  | SetTime
  | Windows
  | AppsRequest
  | Apps
  | Launch
  | Launched
  | WindowAction
  | SetDisplay;

/** A type this side does not know: skipped by the receiver. */
export interface UnknownMessage {
  type: "unknown";
  code: number;
  id: number;
}

export type DecodeResult =
  | { ok: true; version: number; message: AgentMessage | UnknownMessage }
  | { ok: false; error: string };

const FIELD = {
  hello: { minVersion: 1, maxVersion: 2, version: 3, software: 4, os: 5, osRelease: 6, osVersion: 7, machine: 8, hostname: 9, capability: 10, pid: 11 },
  exec: { command: 1, timeoutMs: 2, maxOutput: 3 },
  execResult: { status: 1, signal: 2, timedOut: 3, truncated: 4, output: 5 },
  clipboard: { text: 1, mime: 2, data: 3 },
  display: { mode: 1, width: 2, height: 3 },
  error: { message: 1 },
  setTime: { seconds: 1, nanoseconds: 2 },
  windows: { window: 1 },
  window: { id: 1, title: 2, x: 3, y: 4, width: 5, height: 6, flags: 7, pid: 8, className: 9, frameX: 10, frameY: 11, frameWidth: 12, frameHeight: 13 },
  apps: { app: 1 },
  app: { id: 1, name: 2, exec: 3, icon: 4 },
  launch: { app: 1 },
  launched: { window: 1, pid: 2 },
  windowAction: { window: 1, action: 2, x: 3, y: 4, width: 5, height: 6 },
  setDisplay: { width: 1, height: 2 },
} as const;

const WINDOW_FLAGS = { minimized: 1, focused: 2 } as const;

const DISPLAY_MODES = ["text", "graphics"] as const;
const CAPABILITY = /^[a-z][a-z0-9.-]*$/;
const U32_MAX = 0xffffffff;

/** Why a payload was refused: it is short, lying, or out of range. */
export class MessageError extends Error {
  override name = "MessageError";
}

// ---------------------------------------------------------------------------
// encoding

class Writer {
  readonly #parts: Uint8Array[] = [];
  #size = 0;

  raw(bytes: Uint8Array): void {
    this.#parts.push(bytes);
    this.#size += bytes.length;
  }

  field(tag: number, value: Uint8Array): void {
    const head = new Uint8Array(5);
    head[0] = tag;
    new DataView(head.buffer).setUint32(1, value.length, true);
    this.raw(head);
    this.raw(value);
  }

  u32(tag: number, value: number): void {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value, true);
    this.field(tag, bytes);
  }

  i32(tag: number, value: number): void {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setInt32(0, value, true);
    this.field(tag, bytes);
  }

  text(tag: number, value: string): void {
    this.field(tag, new TextEncoder().encode(value));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const part of this.#parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`agent message field ${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}

function checkText(name: string, value: string, maxBytes: number): void {
  const size = new TextEncoder().encode(value).length;
  if (size > maxBytes) throw new RangeError(`agent message field ${name} is ${size} bytes, more than the limit of ${maxBytes}`);
}

function needsId(message: AgentMessage): message is Ping | Pong | Exec | ExecResult | ErrorReply | AppsRequest | Apps | Launch | Launched | WindowAction {
  return "id" in message;
}

function encodeRect(w: Writer, rect: Rect, tags: { x: number; y: number; width: number; height: number }, what: string): void {
  checkInt(`${what} x`, rect.x, -LIMITS.coordinate, LIMITS.coordinate - 1);
  checkInt(`${what} y`, rect.y, -LIMITS.coordinate, LIMITS.coordinate - 1);
  checkInt(`${what} width`, rect.width, 0, LIMITS.displaySize);
  checkInt(`${what} height`, rect.height, 0, LIMITS.displaySize);
  w.i32(tags.x, rect.x);
  w.i32(tags.y, rect.y);
  w.u32(tags.width, rect.width);
  w.u32(tags.height, rect.height);
}

function encodeWindow(window: GuestWindow): Uint8Array {
  const f = FIELD.window;
  const w = new Writer();
  checkInt("window id", window.id, 1, U32_MAX);
  checkText("window title", window.title, LIMITS.titleBytes);
  w.u32(f.id, window.id);
  w.text(f.title, window.title);
  encodeRect(w, window, f, "window");
  w.u32(f.flags, (window.minimized ? WINDOW_FLAGS.minimized : 0) | (window.focused ? WINDOW_FLAGS.focused : 0));
  if (window.pid !== undefined) {
    checkInt("window pid", window.pid, 1, U32_MAX);
    w.u32(f.pid, window.pid);
  }
  if (window.className !== undefined) {
    checkText("window className", window.className, LIMITS.classBytes);
    w.text(f.className, window.className);
  }
  encodeRect(w, window.frame, { x: f.frameX, y: f.frameY, width: f.frameWidth, height: f.frameHeight }, "window frame");
  return w.finish();
}

function encodeApp(app: GuestApp): Uint8Array {
  const f = FIELD.app;
  const w = new Writer();
  checkText("app id", app.id, LIMITS.appIdBytes);
  checkText("app name", app.name, LIMITS.appNameBytes);
  checkText("app exec", app.exec, LIMITS.appExecBytes);
  if (app.id === "") throw new RangeError("agent app id is empty");
  w.text(f.id, app.id);
  w.text(f.name, app.name);
  w.text(f.exec, app.exec);
  if (app.icon !== undefined) {
    if (app.icon.length > LIMITS.iconBytes) throw new RangeError(`agent app icon is ${app.icon.length} bytes, more than ${LIMITS.iconBytes}`);
    w.field(f.icon, app.icon);
  }
  return w.finish();
}

/**
 * The payload for `message` in protocol `version`. Throws a RangeError for values the
 * receiver would refuse (the same checks as decodeMessage), so this side never sends them.
 */
export function encodeMessage(message: AgentMessage, version: number = PROTOCOL_VERSION): Uint8Array {
  checkInt("version", version, 1, 255);
  const w = new Writer();
  const head = new Uint8Array(MESSAGE_HEADER_SIZE);
  head[0] = version;
  head[1] = MESSAGE_TYPES[message.type];
  if (needsId(message)) {
    checkInt("id", message.id, 1, U32_MAX);
    new DataView(head.buffer).setUint32(2, message.id, true);
  }
  w.raw(head);
  switch (message.type) {
    case "hello": {
      const f = FIELD.hello;
      checkInt("minVersion", message.minVersion, 1, 255);
      checkInt("maxVersion", message.maxVersion, message.minVersion, 255);
      w.u32(f.minVersion, message.minVersion);
      w.u32(f.maxVersion, message.maxVersion);
      if (message.version !== undefined) {
        checkInt("version", message.version, 1, 255);
        w.u32(f.version, message.version);
      }
      checkText("software", message.software, LIMITS.infoBytes);
      w.text(f.software, message.software);
      for (const key of ["os", "osRelease", "osVersion", "machine", "hostname"] as const) {
        const value = message[key];
        if (value === undefined) continue;
        checkText(key, value, LIMITS.infoBytes);
        w.text(f[key], value);
      }
      if (message.capabilities.length > LIMITS.capabilities) {
        throw new RangeError(`agent hello lists ${message.capabilities.length} capabilities, more than ${LIMITS.capabilities}`);
      }
      for (const capability of message.capabilities) {
        if (!CAPABILITY.test(capability) || capability.length > LIMITS.capabilityBytes) {
          throw new RangeError(`agent capability names are [a-z][a-z0-9.-]* up to ${LIMITS.capabilityBytes} bytes, got ${JSON.stringify(capability)}`);
        }
        w.text(f.capability, capability);
      }
      if (message.pid !== undefined) {
        checkInt("pid", message.pid, 0, U32_MAX);
        w.u32(f.pid, message.pid);
      }
      break;
    }
    case "ping":
    case "pong":
      break;
    case "exec": {
      const f = FIELD.exec;
      checkText("command", message.command, LIMITS.commandBytes);
      if (message.command.includes("\0")) throw new RangeError("agent exec command contains a NUL character");
      checkInt("timeoutMs", message.timeoutMs, 1, LIMITS.execTimeoutMs);
      checkInt("maxOutput", message.maxOutput, 0, LIMITS.execOutputBytes);
      w.text(f.command, message.command);
      w.u32(f.timeoutMs, message.timeoutMs);
      w.u32(f.maxOutput, message.maxOutput);
      break;
    }
    case "execResult": {
      const f = FIELD.execResult;
      checkInt("status", message.status, 0, 255);
      checkInt("signal", message.signal, 0, 127);
      if (message.output.length > LIMITS.execOutputBytes) {
        throw new RangeError(`agent exec output is ${message.output.length} bytes, more than the limit of ${LIMITS.execOutputBytes}`);
      }
      w.u32(f.status, message.status);
      w.u32(f.signal, message.signal);
      w.u32(f.timedOut, message.timedOut ? 1 : 0);
      w.u32(f.truncated, message.truncated ? 1 : 0);
      w.field(f.output, message.output);
      break;
    }
    case "clipboard":
      if ("mime" in message) {
        if (message.data.length > LIMITS.clipboardImageBytes) {
          throw new RangeError(`agent clipboard image is ${message.data.length} bytes, more than the limit of ${LIMITS.clipboardImageBytes}`);
        }
        if (!isPng(message.data)) throw new RangeError("agent clipboard image is not a PNG");
        w.text(FIELD.clipboard.mime, message.mime);
        w.field(FIELD.clipboard.data, message.data);
        break;
      }
      checkText("text", message.text, LIMITS.clipboardBytes);
      w.text(FIELD.clipboard.text, message.text);
      break;
    case "display": {
      const f = FIELD.display;
      checkInt("width", message.width, 1, LIMITS.displaySize);
      checkInt("height", message.height, 1, LIMITS.displaySize);
      w.u32(f.mode, DISPLAY_MODES.indexOf(message.mode));
      w.u32(f.width, message.width);
      w.u32(f.height, message.height);
      break;
    }
    case "error":
      checkText("message", message.message, LIMITS.errorBytes);
      w.text(FIELD.error.message, message.message);
      break;
    case "setTime":
      checkInt("seconds", message.seconds, 0, U32_MAX);
      checkInt("nanoseconds", message.nanoseconds, 0, 999_999_999);
      w.u32(FIELD.setTime.seconds, message.seconds);
      w.u32(FIELD.setTime.nanoseconds, message.nanoseconds);
      break;
    case "windows":
      if (message.windows.length > LIMITS.windows) throw new RangeError(`agent windows lists ${message.windows.length} windows, more than ${LIMITS.windows}`);
      for (const window of message.windows) w.field(FIELD.windows.window, encodeWindow(window));
      break;
    case "appsRequest":
      break;
    case "apps":
      if (message.apps.length > LIMITS.apps) throw new RangeError(`agent apps lists ${message.apps.length} apps, more than ${LIMITS.apps}`);
      for (const app of message.apps) w.field(FIELD.apps.app, encodeApp(app));
      break;
    case "launch":
      checkText("app", message.app, LIMITS.appNameBytes);
      if (message.app === "" || message.app.includes("\0")) throw new RangeError("agent launch names no app, or contains a NUL character");
      w.text(FIELD.launch.app, message.app);
      break;
    case "launched":
      checkInt("window", message.window, 1, U32_MAX);
      checkInt("pid", message.pid, 1, U32_MAX);
      w.u32(FIELD.launched.window, message.window);
      w.u32(FIELD.launched.pid, message.pid);
      break;
    case "windowAction":
      encodeWindowAction(w, message);
      break;
    case "setDisplay":
      checkInt("width", message.width, 1, LIMITS.displaySize);
      checkInt("height", message.height, 1, LIMITS.displaySize);
      w.u32(FIELD.setDisplay.width, message.width);
      w.u32(FIELD.setDisplay.height, message.height);
      break;
  }
  return w.finish();
}

function encodeWindowAction(w: Writer, message: WindowAction): void {
  const f = FIELD.windowAction;
  const { action } = message;
  checkInt("window", message.window, 1, U32_MAX);
  w.u32(f.window, message.window);
  w.u32(f.action, WINDOW_ACTIONS.indexOf(action.kind));
  if (action.kind === "move") {
    checkInt("x", action.x, -LIMITS.coordinate, LIMITS.coordinate - 1);
    checkInt("y", action.y, -LIMITS.coordinate, LIMITS.coordinate - 1);
    w.i32(f.x, action.x);
    w.i32(f.y, action.y);
  } else if (action.kind === "resize") {
    checkInt("width", action.width, 1, LIMITS.displaySize);
    checkInt("height", action.height, 1, LIMITS.displaySize);
    w.u32(f.width, action.width);
    w.u32(f.height, action.height);
  }
}

// ---------------------------------------------------------------------------
// decoding

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The fields of one message, by tag; a tag may repeat (lists). */
class Fields {
  readonly #byTag = new Map<number, Uint8Array[]>();
  readonly #type: string;

  constructor(type: string, payload: Uint8Array, at: number) {
    this.#type = type;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    while (at < payload.length) {
      if (payload.length - at < 5) throw new MessageError(`${type}: field header cut short at byte ${at}`);
      const tag = payload[at]!;
      const length = view.getUint32(at + 1, true);
      at += 5;
      if (length > payload.length - at) {
        throw new MessageError(`${type}: field ${tag} claims ${length} bytes, only ${payload.length - at} left`);
      }
      const value = payload.subarray(at, at + length);
      at += length;
      const list = this.#byTag.get(tag);
      if (list) list.push(value);
      else this.#byTag.set(tag, [value]);
    }
  }

  #one(tag: number, name: string): Uint8Array | undefined {
    const list = this.#byTag.get(tag);
    if (!list) return undefined;
    if (list.length > 1) throw new MessageError(`${this.#type}: field ${name} appears ${list.length} times`);
    return list[0];
  }

  #need<T>(value: T | undefined, name: string): T {
    if (value === undefined) throw new MessageError(`${this.#type}: field ${name} is missing`);
    return value;
  }

  u32(tag: number, name: string, min: number, max: number): number | undefined {
    const raw = this.#one(tag, name);
    if (raw === undefined) return undefined;
    if (raw.length !== 4) throw new MessageError(`${this.#type}: field ${name} must be 4 bytes, got ${raw.length}`);
    const value = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, true);
    if (value < min || value > max) throw new MessageError(`${this.#type}: field ${name} is ${value}, expected ${min}..${max}`);
    return value;
  }

  needU32(tag: number, name: string, min: number, max: number): number {
    return this.#need(this.u32(tag, name, min, max), name);
  }

  needI32(tag: number, name: string, min: number, max: number): number {
    const raw = this.#need(this.#one(tag, name), name);
    if (raw.length !== 4) throw new MessageError(`${this.#type}: field ${name} must be 4 bytes, got ${raw.length}`);
    const value = new DataView(raw.buffer, raw.byteOffset, 4).getInt32(0, true);
    if (value < min || value > max) throw new MessageError(`${this.#type}: field ${name} is ${value}, expected ${min}..${max}`);
    return value;
  }

  /** A repeated field whose values are nested fields, at most maxCount of them. */
  nested(tag: number, name: string, maxCount: number): Fields[] {
    const list = this.#byTag.get(tag) ?? [];
    if (list.length > maxCount) throw new MessageError(`${this.#type}: ${list.length} ${name} entries, more than ${maxCount}`);
    return list.map((raw, i) => new Fields(`${this.#type} ${name} ${i}`, raw, 0));
  }

  has(tag: number): boolean {
    return this.#byTag.has(tag);
  }

  flag(tag: number, name: string): boolean {
    return this.needU32(tag, name, 0, 1) === 1;
  }

  bytes(tag: number, name: string, maxBytes: number): Uint8Array | undefined {
    const raw = this.#one(tag, name);
    if (raw !== undefined && raw.length > maxBytes) {
      throw new MessageError(`${this.#type}: field ${name} is ${raw.length} bytes, more than the limit of ${maxBytes}`);
    }
    return raw;
  }

  text(tag: number, name: string, maxBytes: number): string | undefined {
    const raw = this.bytes(tag, name, maxBytes);
    return raw === undefined ? undefined : decodeText(raw, `${this.#type}: field ${name}`);
  }

  needText(tag: number, name: string, maxBytes: number): string {
    return this.#need(this.text(tag, name, maxBytes), name);
  }

  texts(tag: number, name: string, maxCount: number, maxBytes: number): string[] {
    const list = this.#byTag.get(tag) ?? [];
    if (list.length > maxCount) throw new MessageError(`${this.#type}: ${list.length} ${name} entries, more than ${maxCount}`);
    return list.map((raw) => {
      if (raw.length > maxBytes) throw new MessageError(`${this.#type}: a ${name} entry is ${raw.length} bytes, more than ${maxBytes}`);
      return decodeText(raw, `${this.#type}: field ${name}`);
    });
  }
}

function decodeClipboard(f: Fields): Clipboard {
  const k = FIELD.clipboard;
  const mime = f.text(k.mime, "mime", LIMITS.mimeBytes);
  if (mime === undefined || mime === CLIPBOARD_TEXT) return { type: "clipboard", text: f.needText(k.text, "text", LIMITS.clipboardBytes) };
  if (mime !== CLIPBOARD_PNG) throw new MessageError(`clipboard: MIME type ${JSON.stringify(mime)} is neither ${CLIPBOARD_TEXT} nor ${CLIPBOARD_PNG}`);
  const data = f.bytes(k.data, "data", LIMITS.clipboardImageBytes);
  if (data === undefined) throw new MessageError("clipboard: field data is missing");
  if (!isPng(data)) throw new MessageError("clipboard: the image/png data does not start with the PNG signature");
  return { type: "clipboard", mime, data: data.slice() };
}

function decodeRect(f: Fields, tags: { x: number; y: number; width: number; height: number }, prefix: string): Rect {
  return {
    x: f.needI32(tags.x, `${prefix}x`, -LIMITS.coordinate, LIMITS.coordinate - 1),
    y: f.needI32(tags.y, `${prefix}y`, -LIMITS.coordinate, LIMITS.coordinate - 1),
    width: f.needU32(tags.width, `${prefix}width`, 0, LIMITS.displaySize),
    height: f.needU32(tags.height, `${prefix}height`, 0, LIMITS.displaySize),
  };
}

function decodeWindow(f: Fields): GuestWindow {
  const k = FIELD.window;
  const flags = f.needU32(k.flags, "flags", 0, U32_MAX);
  const window: GuestWindow = {
    id: f.needU32(k.id, "id", 1, U32_MAX),
    title: f.text(k.title, "title", LIMITS.titleBytes) ?? "",
    ...decodeRect(f, k, ""),
    minimized: (flags & WINDOW_FLAGS.minimized) !== 0,
    focused: (flags & WINDOW_FLAGS.focused) !== 0,
    frame: decodeRect(f, { x: k.frameX, y: k.frameY, width: k.frameWidth, height: k.frameHeight }, "frame "),
  };
  const pid = f.u32(k.pid, "pid", 1, U32_MAX);
  if (pid !== undefined) window.pid = pid;
  const className = f.text(k.className, "className", LIMITS.classBytes);
  if (className !== undefined) window.className = className;
  return window;
}

function decodeApp(f: Fields): GuestApp {
  const k = FIELD.app;
  const app: GuestApp = {
    id: f.needText(k.id, "id", LIMITS.appIdBytes),
    name: f.needText(k.name, "name", LIMITS.appNameBytes),
    exec: f.needText(k.exec, "exec", LIMITS.appExecBytes),
  };
  if (app.id === "") throw new MessageError("apps: an app has an empty id");
  const icon = f.bytes(k.icon, "icon", LIMITS.iconBytes);
  if (icon !== undefined) app.icon = icon.slice();
  return app;
}

function decodeText(raw: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(raw);
  } catch {
    throw new MessageError(`${what} is not valid UTF-8`);
  }
}

const TYPE_NAMES = new Map<number, MessageType>(
  (Object.entries(MESSAGE_TYPES) as [MessageType, number][]).map(([name, code]) => [code, name]),
);

/** Decodes one frame's payload; never throws. */
export function decodeMessage(payload: Uint8Array): DecodeResult {
  try {
    return decodeOrThrow(payload);
  } catch (error) {
    if (error instanceof MessageError) return { ok: false, error: error.message };
    return { ok: false, error: `undecodable message: ${String(error)}` };
  }
}

function decodeOrThrow(payload: Uint8Array): DecodeResult {
  if (payload.length < MESSAGE_HEADER_SIZE) {
    throw new MessageError(`message of ${payload.length} bytes is shorter than its ${MESSAGE_HEADER_SIZE}-byte header`);
  }
  const version = payload[0]!;
  if (version === 0) throw new MessageError("message carries protocol version 0");
  const code = payload[1]!;
  const id = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(2, true);
  const type = TYPE_NAMES.get(code);
  if (type === undefined) return { ok: true, version, message: { type: "unknown", code, id } };
  const f = new Fields(type, payload, MESSAGE_HEADER_SIZE);
  const needId = (): number => {
    if (id === 0) throw new MessageError(`${type}: request id 0 is reserved`);
    return id;
  };
  let message: AgentMessage;
  switch (type) {
    case "hello": {
      const k = FIELD.hello;
      const minVersion = f.needU32(k.minVersion, "minVersion", 1, 255);
      const maxVersion = f.needU32(k.maxVersion, "maxVersion", minVersion, 255);
      const hello: Hello = {
        type,
        minVersion,
        maxVersion,
        software: f.needText(k.software, "software", LIMITS.infoBytes),
        capabilities: f.texts(k.capability, "capability", LIMITS.capabilities, LIMITS.capabilityBytes),
      };
      for (const capability of hello.capabilities) {
        if (!CAPABILITY.test(capability)) throw new MessageError(`hello: capability ${JSON.stringify(capability)} is not [a-z][a-z0-9.-]*`);
      }
      const chosen = f.u32(k.version, "version", 1, 255);
      if (chosen !== undefined) hello.version = chosen;
      for (const key of ["os", "osRelease", "osVersion", "machine", "hostname"] as const) {
        const value = f.text(k[key], key, LIMITS.infoBytes);
        if (value !== undefined) hello[key] = value;
      }
      const pid = f.u32(k.pid, "pid", 0, U32_MAX);
      if (pid !== undefined) hello.pid = pid;
      message = hello;
      break;
    }
    case "ping":
    case "pong":
      message = { type, id: needId() };
      break;
    case "exec": {
      const k = FIELD.exec;
      const command = f.needText(k.command, "command", LIMITS.commandBytes);
      if (command.includes("\0")) throw new MessageError("exec: command contains a NUL character");
      message = {
        type,
        id: needId(),
        command,
        timeoutMs: f.needU32(k.timeoutMs, "timeoutMs", 1, LIMITS.execTimeoutMs),
        maxOutput: f.needU32(k.maxOutput, "maxOutput", 0, LIMITS.execOutputBytes),
      };
      break;
    }
    case "execResult": {
      const k = FIELD.execResult;
      message = {
        type,
        id: needId(),
        status: f.needU32(k.status, "status", 0, 255),
        signal: f.needU32(k.signal, "signal", 0, 127),
        timedOut: f.flag(k.timedOut, "timedOut"),
        truncated: f.flag(k.truncated, "truncated"),
        output: (f.bytes(k.output, "output", LIMITS.execOutputBytes) ?? new Uint8Array()).slice(),
      };
      break;
    }
    case "clipboard":
      message = decodeClipboard(f);
      break;
    case "display": {
      const k = FIELD.display;
      message = {
        type,
        mode: DISPLAY_MODES[f.needU32(k.mode, "mode", 0, DISPLAY_MODES.length - 1)]!,
        width: f.needU32(k.width, "width", 1, LIMITS.displaySize),
        height: f.needU32(k.height, "height", 1, LIMITS.displaySize),
      };
      break;
    }
    case "error":
      message = { type, id: needId(), message: f.needText(FIELD.error.message, "message", LIMITS.errorBytes) };
      break;
    case "setTime":
      message = {
        type,
        seconds: f.needU32(FIELD.setTime.seconds, "seconds", 0, U32_MAX),
        nanoseconds: f.needU32(FIELD.setTime.nanoseconds, "nanoseconds", 0, 999_999_999),
      };
      break;
    case "windows": {
      const windows = f.nested(FIELD.windows.window, "window", LIMITS.windows).map(decodeWindow);
      const ids = new Set(windows.map((window) => window.id));
      if (ids.size !== windows.length) throw new MessageError("windows: a window id appears twice");
      message = { type, windows };
      break;
    }
    case "appsRequest":
      message = { type, id: needId() };
      break;
    case "apps":
      message = { type, id: needId(), apps: f.nested(FIELD.apps.app, "app", LIMITS.apps).map(decodeApp) };
      break;
    case "launch": {
      const app = f.needText(FIELD.launch.app, "app", LIMITS.appNameBytes);
      if (app === "" || app.includes("\0")) throw new MessageError("launch: the app name is empty or contains a NUL character");
      message = { type, id: needId(), app };
      break;
    }
    case "launched":
      message = {
        type,
        id: needId(),
        window: f.needU32(FIELD.launched.window, "window", 1, U32_MAX),
        pid: f.needU32(FIELD.launched.pid, "pid", 1, U32_MAX),
      };
      break;
    case "windowAction":
      message = { type, id: needId(), ...decodeWindowAction(f) };
      break;
    case "setDisplay":
      message = {
        type,
        width: f.needU32(FIELD.setDisplay.width, "width", 1, LIMITS.displaySize),
        height: f.needU32(FIELD.setDisplay.height, "height", 1, LIMITS.displaySize),
      };
      break;
  }
  return { ok: true, version, message };
}

/** A windowAction's fields: the ones its action needs, and no others. */
function decodeWindowAction(f: Fields): { window: number; action: WindowActionRequest } {
  const k = FIELD.windowAction;
  const window = f.needU32(k.window, "window", 1, U32_MAX);
  const kind = WINDOW_ACTIONS[f.needU32(k.action, "action", 0, WINDOW_ACTIONS.length - 1)]!;
  const extra = (tags: number[], names: string): void => {
    if (tags.some((tag) => f.has(tag))) throw new MessageError(`windowAction: ${kind} takes no ${names}`);
  };
  switch (kind) {
    case "move":
      extra([k.width, k.height], "width or height");
      return { window, action: { kind, x: f.needI32(k.x, "x", -LIMITS.coordinate, LIMITS.coordinate - 1), y: f.needI32(k.y, "y", -LIMITS.coordinate, LIMITS.coordinate - 1) } };
    case "resize":
      extra([k.x, k.y], "x or y");
      return { window, action: { kind, width: f.needU32(k.width, "width", 1, LIMITS.displaySize), height: f.needU32(k.height, "height", 1, LIMITS.displaySize) } };
    case "raise":
    case "close":
      extra([k.x, k.y, k.width, k.height], "position or size");
      return { window, action: { kind } };
  }
}
