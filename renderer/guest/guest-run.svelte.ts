// One guest running in this page: v86 drawing into the screen element, wired to the host by a
// GuestSession (core) and a console FramePipe. Its state (booting / running / stopped /
// failed, with the reason) is rune state the components read, and is reported to the host.
// A guest that stops by itself (panic, halt) ends failed with the reason the session found.
// Each guest's last boot time is kept in localStorage so the next boot can say how long it takes.
// A library guest's Stop suspends it: the emulator stops, its requests to the host drain, its
// state is saved (compressed) with the host, and the next start resumes it, running as soon as
// it is restored. Power off stops without saving and discards the state; a dropped image has
// nothing to keep, so its Stop powers it off. Its guest's windows (the host's "windows" events)
// are rune state for the seamless view, which acts on them and points the guest's mouse.

import { V86 } from "v86";
import wasmUrl from "v86/build/v86.wasm?url";
import { DROPPED_IMAGE, type BootPlan, type GuestWindow, type HostBridge, type SessionState, type WindowActionRequest } from "../../core/ipc/contract.js";
import { GuestSession } from "../../core/guest/session.js";
import { bootMemory, buildV86Options, machineSpec } from "../../core/v86/options.js";
import { interpretFirst, restoreFresh, resumeOptions } from "../../core/v86/restore.js";
import { balloonRange, setBalloon } from "../../core/v86/balloon.js";
import { SpeedControl } from "../../core/v86/speed-cap.js";
import { launchPlan, plannedServices, SETTLED_MS, type MediaSource } from "../../core/guest/launch-plan.js";
import type { V86Image } from "v86";
import { pendingPipe, type FramePipe, type PendingPipe } from "../../core/pipe/frame-pipe.js";
import type { Disposable } from "../../core/disposable.js";
import { p9Relay, type EmulatorBus } from "../../core/guest/relays.js";
import { DiskClient, SERVED_PLACEHOLDER, withServedDisks } from "../../core/disk/served-disk.js";
import { ClipboardSync } from "../../core/agent/clipboard-sync.js";
import { fromBase64, pageClipboard, toBase64 } from "./page-clipboard.js";
import { detectImage, HEADER_BYTES, type DetectedImage } from "../../core/media/detect.js";
import { checkFitsDrive, DRIVE_NAMES, type SwapDrive } from "../../core/media/drives.js";
import type { GuestStop } from "../../core/guest/stop-detector.js";
import { compressOffThread, decodeOffThread } from "./compress.js";
import { ownBuffer } from "../../core/bytes.js";
import { wheelNotches } from "./wheel.js";

/** What to boot: a guest from the library, or an image the user dropped. */
export type BootSource =
  | { kind: "guest"; name: string; memory: number }
  | { kind: "image"; file: File; detected: DetectedImage; memory: number };

/** What v86 reads for a planned medium: the host's URL, or the bytes of a file the user dropped. */
function pageImage(source: MediaSource): V86Image {
  if (source.kind === "url") return { url: source.url, size: source.size };
  if (source.kind === "bytes") return { buffer: source.bytes.buffer as ArrayBuffer };
  if (source.kind === "file") throw new Error(`${source.path}: the page reads media from the host's URLs, not host files`);
  if (source.kind === "fat") throw new Error(`${source.drive.from}: the host builds a FAT drive and serves it; the page was given it unbuilt`);
  // Read block by block through the host's disk service: withServedDisks puts it in place.
  return SERVED_PLACEHOLDER;
}

/**
 * v86's WebAssembly, fetched and compiled once for every guest this page starts; begun when the
 * page loads, so a first Start (most often a resume) does not wait for it.
 */
let compiledV86: Promise<WebAssembly.Module> | undefined;
function v86Module(): Promise<WebAssembly.Module> {
  compiledV86 ??= fetch(wasmUrl)
    .then((response) => {
      if (!response.ok) throw new Error(`could not load the emulator (HTTP ${response.status})`);
      return response.arrayBuffer();
    })
    .then((bytes) => WebAssembly.compile(bytes))
    .catch((error: unknown) => {
      compiledV86 = undefined; // the next start tries again
      throw error;
    });
  return compiledV86;
}
void v86Module().catch(() => {});

/**
 * A file from the host, read as it arrives into one buffer of the size the plan gave (no copy
 * of the whole at its end); `what` names it in the error when it cannot be had.
 */
async function fetchBytes(url: string, size: number, what: string): Promise<ArrayBuffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${what} (HTTP ${response.status})`);
  if (!response.body) return response.arrayBuffer();
  const bytes = new Uint8Array(size);
  const reader = response.body.getReader();
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > size) {
      await reader.cancel();
      throw new Error(`could not load ${what}: it is larger than the ${size} bytes planned`);
    }
    bytes.set(value, at);
    at += value.length;
  }
  if (at !== size) throw new Error(`could not load ${what}: it arrived cut short (${at} of ${size} bytes)`);
  return bytes.buffer;
}

/**
 * A guest's saved state this page holds for its next Start: the one it saved at the guest's
 * last Stop, or the one it fetched ahead of a Start (readAhead). While the host's saved state is
 * still these bytes (the plan gives their SHA-256), the guest resumes from them instead of a
 * download made after the click. With them, where it could be had, the state decoded (`raw`:
 * the one a Stop compressed, or decoded off the page's thread after a look ahead), which the
 * resume reads as it lies instead of decoding it after the click. One at a time; given up at
 * the next resume of any guest.
 */
let kept: { guest: string; sha256: string; size: number; bytes: Promise<ArrayBuffer>; raw: Promise<Uint8Array | undefined> } | undefined;
/** A Stop's state whose checksum is still being made: a look ahead waits for it. */
let keeping: Promise<void> = Promise.resolve();
/** Starts that have taken their state: a look ahead that a start overtook fetches nothing. */
let resumes = 0;

/** The SHA-256 of `bytes` in hex, as the host's state files give it; undefined where the page has no WebCrypto. */
async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string | undefined> {
  if (!globalThis.crypto?.subtle) return undefined;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Keeps what a Stop saved for `guest`, and its raw state (its checksum made off the click's path). */
function keepSaved(guest: string, state: Uint8Array, raw: Uint8Array): void {
  const bytes = ownBuffer(state);
  kept = undefined;
  keeping = sha256Hex(new Uint8Array(bytes)).then(
    (sha256) => {
      if (sha256) kept = { guest, sha256, size: bytes.byteLength, bytes: Promise.resolve(bytes), raw: Promise.resolve(raw) };
    },
    () => {}, // not kept: the next start downloads it
  );
}

/** The largest state fetched ahead of a Start: the page holds it for a Start that may not come. */
const READ_AHEAD_LIMIT = 128 * 1024 * 1024;
/** The largest state decoded ahead of a Start (decoded, tiny's is 43 MB). */
const DECODE_AHEAD_LIMIT = 256 * 1024 * 1024;

/**
 * Fetches the state a start of `guest` would resume (and the firmware), while the page shows it stopped, so that
 * its Start has nothing to download, and decodes it off the page's thread, so that its Start
 * has nothing to decode. Nothing when the page already holds that state, the guest would boot,
 * or its state is larger than READ_AHEAD_LIMIT (decoded, than DECODE_AHEAD_LIMIT: then the Start
 * decodes it). The bytes are kept only if they are the state the host named (their SHA-256
 * checked): the file may change between the two requests.
 */
export async function readAhead(host: HostBridge, guest: string): Promise<void> {
  const before = resumes;
  // The firmware too: v86 is set up with it as soon as a Start has its plan.
  void host
    .invoke("firmware:get")
    .then((firmware) => Promise.all(Object.values(firmware).map((source) => (source.kind === "url" ? firmwareBytes(source) : undefined))))
    .catch(() => {}); // the Start fetches it then
  await keeping;
  const ahead = await host.invoke("guests:stateAhead", guest).catch(() => null);
  if (!ahead?.sha256 || ahead.size > READ_AHEAD_LIMIT || !globalThis.crypto?.subtle || resumes !== before) return;
  const sha256 = ahead.sha256;
  if (kept && kept.guest === guest && kept.sha256 === sha256 && kept.size === ahead.size) return;
  const bytes = fetchBytes(ahead.url, ahead.size, "its saved state").then(async (buffer) => {
    if ((await sha256Hex(new Uint8Array(buffer))) !== sha256) throw new Error("its saved state changed while it was fetched");
    return buffer;
  });
  // A copy goes to the decoder (its buffer is handed over): the bytes stay the Start's if it fails.
  const raw = bytes.then((buffer) => decodeOffThread(new Uint8Array(buffer).slice(), DECODE_AHEAD_LIMIT)).catch(() => undefined);
  const entry = { guest, sha256, size: ahead.size, bytes, raw };
  kept = entry;
  await bytes.catch(() => {
    if (kept === entry) kept = undefined; // the Start downloads it then
  });
}

/**
 * The state a start of `guest` resumes: the one the page holds when it is the host's (decoded,
 * where the page has it so), else downloaded.
 */
function stateToResume(guest: string, source: Extract<MediaSource, { kind: "url" }>): Promise<ArrayBuffer | Uint8Array> {
  const held = kept;
  kept = undefined;
  resumes++;
  const download = (): Promise<ArrayBuffer> => fetchBytes(source.url, source.size, "its saved state");
  if (held && held.guest === guest && source.sha256 !== undefined && held.sha256 === source.sha256 && held.size === source.size) {
    return held.raw.then((raw): Promise<ArrayBuffer | Uint8Array> | Uint8Array => raw ?? held.bytes).catch(download);
  }
  return download();
}

/** The firmware this page has fetched, by URL and size: every guest it starts boots the same BIOS. */
const firmwareFetched = new Map<string, Promise<ArrayBuffer>>();

/** The firmware at `source` (a URL the host gave), fetched once for this page. */
function firmwareBytes(source: Extract<MediaSource, { kind: "url" }>): Promise<ArrayBuffer> {
  const key = `${source.size} ${source.url}`;
  let bytes = firmwareFetched.get(key);
  if (!bytes) {
    bytes = fetchBytes(source.url, source.size, "the firmware").catch((error: unknown) => {
      firmwareFetched.delete(key); // the next start tries again
      throw error;
    });
    firmwareFetched.set(key, bytes);
  }
  return bytes;
}

/** A planned firmware image as bytes (fetched once, while the rest of a start goes on, or ahead of it); other kinds as they are. */
async function firmwareImage(source: MediaSource): Promise<V86Image> {
  if (source.kind !== "url") return pageImage(source);
  // A copy of its own for each machine.
  return { buffer: (await firmwareBytes(source)).slice(0) };
}

/**
 * Marks a step of a start on the page's timeline (User Timing, "unmachine:start:STEP"), for a
 * profile or the benchmark (test/bench/resume.js) to say where a start's time went.
 */
function mark(step: string, detail?: Record<string, unknown>): void {
  performance.mark(`unmachine:start:${step}`, detail ? { detail } : undefined);
}

const BOOT_TIME_KEY = "unmachine.boot-seconds.";
/** How much a user may type into a resuming guest's console before it runs. */
const TYPE_AHEAD_BYTES = 4096;
/** How long a guest that stopped by itself still runs, to print the rest of what it says. */
const STOP_GRACE_MS = 1500;

/** A line between runs on the console: a guest stopped, failed or started again. */
export interface RunMark {
  kind: "start" | "stop";
  text: string;
}

function bootKey(source: BootSource): string {
  return BOOT_TIME_KEY + (source.kind === "guest" ? source.name : `image:${source.file.name}`);
}

function readBootSeconds(key: string): number | undefined {
  try {
    const value = Number(localStorage.getItem(key));
    return Number.isFinite(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether this emulator threw the error being reported: v86's loop marks itself busy for the
 * length of a tick (its `idle` false) and idle again as it schedules the next, so a throw from
 * a tick leaves it busy for good, while every other emulator in the page is between ticks.
 */
function faulted(emulator: V86): boolean {
  const loop = (emulator as unknown as { v86?: { idle?: unknown } }).v86;
  return loop?.idle === false;
}

export class GuestRun {
  state: SessionState = $state("stopped");
  reason = $state("");
  title = $state("");
  /** The library guest running, or "" for a dropped image. */
  guest = $state("");
  /** The RAM the guest has now, in MiB: its boot RAM less what its balloon holds. */
  memory = $state(0);
  /** The RAM it booted with: the most its balloon can give it without a restart. */
  bootMemory = $state(0);
  /** Its machine has a balloon: its RAM can change while it runs (between balloonRange's bounds). */
  balloon = $state(false);
  /** Its speed cap in percent of one host core (100: none). */
  cpuPercent = $state(100);
  #speed: SpeedControl | undefined;
  /** The JIT held off for a resumed guest's first instructions (core/v86/restore.ts). */
  #warming: Disposable | undefined;
  /** How long this guest's last boot took, in seconds, if it has booted here before. */
  lastBootSeconds: number | undefined = $state();
  /** What the guest's last start resumed from: its saved state (true), or a cold boot. */
  resumed = $state(false);
  /** A one-line notice of the last start or stop (a saved state set aside, a state not saved). */
  notice = $state("");
  /** A guest has been started in this page (so Restart has something to start again). */
  started = $state(false);
  /** Console marks: a line where one run ends and the next begins. */
  readonly #markListeners = new Set<(mark: RunMark) => void>();
  #bootStartedAt = 0;
  #ticker: ReturnType<typeof setInterval> | undefined;
  /** Serial output listeners (the console component). */
  readonly #serialListeners = new Set<(bytes: Uint8Array) => void>();
  #emulator: V86 | undefined;
  /** Bytes typed into the console while a saved guest resumes (sendSerial), and how many. */
  #typeAhead: Uint8Array[] = [];
  #typeAheadBytes = 0;
  /** What a save waits for: each relay's and disk client's requests in flight answered. */
  #drains: (() => Promise<void>)[] = [];
  #session: GuestSession | undefined;
  #pipe: FramePipe | undefined;
  #sessionId: string | undefined;
  #source: BootSource | undefined;
  #screen: HTMLElement | undefined;
  /**
   * What holds the keyboard for this guest: its screen, its panels, its windows (each by a name
   * of its own). The guest takes keys while any does: one letting go (a blur, which may come
   * after another's focus when the focus moves between host windows) leaves the others' hold.
   */
  readonly #keyboardHolders = new Set<string>();
  /** The wheel's travel not yet given to the guest as a notch (pixels; its sign, the direction). */
  #wheelRest = 0;
  readonly #host: HostBridge;
  /** A fault the emulator throws is an Error; the browser's own notices (such as "ResizeObserver
   * loop completed with undelivered notifications") carry none and say nothing about the guest.
   * With several guests in the page, only the one whose emulator threw it fails. */
  #onWindowError = (event: ErrorEvent): void => {
    if (event.error === null || event.error === undefined) return;
    if (this.#emulator && faulted(this.#emulator)) this.#fail(`the emulator stopped on a fault: ${event.message}`);
  };
  /** Bumped by every start and stop: a start that finds it changed after an await gives up. */
  #generation = 0;
  /** The emulator is stopped on purpose for a save: its "emulator-stopped" is no failure. */
  #pausing = false;
  /** The last start's saved state was refused by the emulator (and discarded): the start after it was ours. */
  #refusedState = false;

  constructor(host: HostBridge) {
    this.#host = host;
  }

  /** The guest's top-level windows as its agent reports them, bottom of the stack first. */
  windows: GuestWindow[] = $state([]);
  #windowsSub: Disposable | undefined;

  #watchWindows(session: string): void {
    this.#windowsSub?.dispose();
    this.#windowsSub = this.#host.onEvent?.((event) => {
      if (event.type === "windows" && event.session === session) this.windows = event.windows;
    });
  }

  #unwatchWindows(): void {
    this.#windowsSub?.dispose();
    this.#windowsSub = undefined;
    this.windows = [];
  }

  /** Moves, resizes, raises or closes one of the guest's windows (by its agent, through the host). */
  async windowAction(window: number, action: WindowActionRequest): Promise<void> {
    if (!this.#sessionId) throw new Error("the guest is not running");
    await this.#host.invoke("agent:windowAction", this.#sessionId, window, action);
  }

  /**
   * Points the guest's absolute mouse (v86's VMware mouse) at (x, y) of its screen with the
   * buttons held (MouseEvent.buttons: 1 left, 2 right, 4 middle); the guest reads it on its next
   * PS/2 interrupt. The screen size is the canvas's: v86 scales the position to it.
   */
  pointGuest(x: number, y: number, buttons: number, screen: { width: number; height: number }): void {
    const bus = (this.#emulator as unknown as { bus?: EmulatorBus } | undefined)?.bus;
    if (!bus || !this.running || screen.width <= 0 || screen.height <= 0) return;
    bus.send("mouse-absolute", [x, y, screen.width, screen.height]);
    bus.send("mouse-click", [(buttons & 1) !== 0, (buttons & 4) !== 0, (buttons & 2) !== 0]);
  }

  /**
   * A turn of the mouse wheel, as the guest's wheel: whole notches, down for a positive deltaY
   * (v86 sends them on the PS/2 IntelliMouse and the VMware mouse alike). A trackpad's many
   * small deltas add up to a notch (see wheelNotches).
   */
  wheelGuest(event: Pick<WheelEvent, "deltaY" | "deltaMode">): void {
    const bus = (this.#emulator as unknown as { bus?: EmulatorBus } | undefined)?.bus;
    if (!bus || !this.running) return;
    const { notches, rest } = wheelNotches(this.#wheelRest, event.deltaY, event.deltaMode);
    this.#wheelRest = rest;
    for (let i = 0; i < Math.abs(notches); i++) bus.send("mouse-wheel", [notches > 0 ? -1 : 1, 0]);
  }

  /** The host's session of the guest running here, if one is open (what "agent:*" commands name). */
  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** Asks the running guest for a screen of this size (its agent sets it); whether it was asked. */
  async requestDisplaySize(width: number, height: number): Promise<boolean> {
    const id = this.#sessionId;
    if (id === undefined || !this.running) return false;
    return await this.#host.invoke("agent:display", id, width, height);
  }

  get running(): boolean {
    return this.state === "booting" || this.state === "running";
  }

  onSerial(listener: (bytes: Uint8Array) => void): () => void {
    this.#serialListeners.add(listener);
    return () => this.#serialListeners.delete(listener);
  }

  onMark(listener: (mark: RunMark) => void): () => void {
    this.#markListeners.add(listener);
    return () => this.#markListeners.delete(listener);
  }

  #mark(mark: RunMark): void {
    for (const listener of this.#markListeners) listener(mark);
  }

  /** Types into the guest's serial console; refused unless the guest is on. */
  sendSerial(bytes: Uint8Array): void {
    if (!this.running) return;
    // Typed ahead while the guest starts: kept until it has a session, and while a saved guest
    // resumes until it runs (its restore would drop what reached its serial port before).
    if (this.state === "booting" && (this.resumed || !this.#session)) {
      // Past the limit nothing more is kept (no gaps in what the guest gets).
      this.#typeAheadBytes += bytes.length;
      if (this.#typeAheadBytes <= TYPE_AHEAD_BYTES) this.#typeAhead.push(bytes);
      return;
    }
    this.#session?.sendSerial(bytes);
  }

  /** What was typed ahead, to `session`; nothing is kept after. */
  #sendTypedAhead(session: GuestSession | undefined): void {
    const typed = this.#typeAhead;
    this.#typeAhead = [];
    this.#typeAheadBytes = 0;
    for (const bytes of typed) session?.sendSerial(bytes);
  }

  /**
   * Whether `holder` (the screen, the panels, one window) holds this guest's keyboard and mouse.
   * v86 listens for keys on the whole window, one listener per emulator, and takes every key not
   * aimed at a text field while enabled (its default): with several guests in the page, only the
   * focused one may be enabled.
   */
  holdKeyboard(holder: string, held: boolean): void {
    if (held) this.#keyboardHolders.add(holder);
    else this.#keyboardHolders.delete(holder);
    this.#applyKeyboard();
  }

  /** Nothing holds this guest's keyboard any more (another guest's tab came forward). */
  releaseKeyboard(): void {
    this.#keyboardHolders.clear();
    this.#applyKeyboard();
  }

  /** The guest takes keys while anything holds them. */
  #applyKeyboard(): void {
    const enabled = this.#keyboardHolders.size > 0;
    this.#emulator?.keyboard_set_enabled(enabled);
    this.#emulator?.mouse_set_enabled(enabled);
  }

  async start(source: BootSource, screen: HTMLElement): Promise<void> {
    await this.stop();
    const generation = ++this.#generation;
    const current = (): boolean => generation === this.#generation;
    this.#source = source;
    this.#screen = screen;
    if (this.started) this.#mark({ kind: "start", text: "started again" });
    this.started = true;
    this.state = "booting";
    this.reason = "";
    this.notice = "";
    this.resumed = false;
    const timeKey = bootKey(source);
    this.lastBootSeconds = readBootSeconds(timeKey);
    this.#bootStartedAt = performance.now();
    try {
      let plan: BootPlan;
      if (source.kind === "guest") {
        plan = await this.#host.invoke("guests:plan", source.name, source.memory);
        mark("plan");
      } else {
        const firmware = await this.#host.invoke("firmware:get");
        const role = source.detected.role;
        if (role === undefined || role === "initial_state") throw new Error(`${source.file.name}: ${source.detected.description} cannot be booted on its own yet`);
        const image: MediaSource = { kind: "bytes", bytes: new Uint8Array(await source.file.arrayBuffer()) };
        plan = launchPlan({ kind: "image", name: source.file.name, role, image }, firmware, { memory: source.memory });
      }
      if (!current()) return;
      if (plan.notice) this.notice = plan.notice;
      const spec = machineSpec(plan.machine, pageImage);
      const initial = plan.machine.initialState;
      this.resumed = initial !== undefined;
      // The state, the firmware and v86's code come while the session and its pipes open.
      const stateBytes = initial?.kind === "url" ? stateToResume(plan.guest, initial) : undefined;
      stateBytes?.catch(() => {}); // awaited once v86 has loaded; a failure is told there
      const firmware = Promise.all([firmwareImage(plan.machine.firmware.bios), firmwareImage(plan.machine.firmware.vgaBios)]);
      firmware.catch(() => {}); // awaited below
      const services = plannedServices(plan);
      // The page's clipboard is read only for a guest the user shares it with.
      const clipboard = plan.services.agent?.clipboard === true;
      const prompt = plan.ready.kind === "prompt" ? plan.ready.prompt : undefined;
      const settledMs = plan.ready.kind === "quiet" ? plan.ready.ms : SETTLED_MS;
      const guestName = source.kind === "guest" ? plan.guest : DROPPED_IMAGE;
      this.title = plan.title;
      this.guest = source.kind === "guest" ? plan.guest : "";
      this.memory = this.bootMemory = bootMemory(spec);
      this.balloon = spec.balloon === true;
      this.cpuPercent = spec.cpuPercent ?? 100;
      // The session opens while v86 is set up and restores its state: v86's 9P and disk services
      // take their pipes once those are open (pendingPipe), and it runs once the session is
      // whole (`runnable`, at the end of this start).
      const opening = this.#host.invoke("sessions:open", guestName);
      opening.catch(() => {}); // awaited below
      /** A start given up before the session was its own closes the session when it opens. */
      const abandon = (): void => void opening.then((opened) => this.#host.invoke("sessions:close", opened.id)).catch(() => {});
      const owns: Disposable[] = [];
      // In reverse, as a session disposes them: a client lets go before its pipe closes.
      const drop = (): void => {
        for (const owned of owns.splice(0).reverse()) owned.dispose();
      };
      const pending = new Map<string, PendingPipe>();
      let disks: DiskClient | undefined;
      const drains: (() => Promise<void>)[] = [];
      for (const service of services) {
        if (service !== "p9" && service !== "disk") continue;
        const late = pendingPipe();
        pending.set(service, late);
        owns.push(late.pipe);
        if (service === "p9") {
          const relay = p9Relay(late.pipe);
          spec.handle9p = relay.handle9p;
          owns.push(relay);
          drains.push(() => relay.idle());
        } else {
          // A start given up closes its pipe: that is no failure of the start that replaced it.
          const client = new DiskClient(late.pipe, (message) => current() && this.#fail(`the hard disk failed: ${message}`));
          disks = client;
          owns.push(client);
          drains.push(() => client.idle());
        }
      }
      // A resumed machine has its kernel and initrd in the memory it restores: not fetched again.
      // It is set up while its state still downloads, restored once both are done, then run
      // (core/v86/restore.ts).
      let emulator: V86;
      try {
        [spec.bios, spec.vgaBios] = await firmware;
        const compiled = await v86Module();
        if (!current()) {
          drop();
          abandon();
          return;
        }
        const options = initial ? resumeOptions(buildV86Options(spec)) : buildV86Options(spec);
        emulator = new V86({
          ...withServedDisks(options, plan.machine, disks),
          autostart: false, // run once the session is whole (below)
          wasm_fn: async (imports: WebAssembly.Imports) => (await WebAssembly.instantiate(compiled, imports)).exports,
          screen_container: screen,
        });
      } catch (error) {
        drop();
        abandon();
        throw error;
      }
      this.#emulator = emulator;
      mark("emulator");
      let runnable!: () => void;
      const canRun = new Promise<void>((resolveRun) => (runnable = resolveRun));
      // v86 makes its keyboard and mouse adapters (enabled) once its code has loaded, and
      // nothing hears their keys before "emulator-loaded": from there they follow the focus.
      emulator.add_listener("emulator-loaded", () => this.#applyKeyboard());
      if (stateBytes) emulator.add_listener("emulator-loaded", () => void this.#resume(emulator, stateBytes, canRun));
      else emulator.add_listener("emulator-loaded", () => void canRun.then(() => this.#emulator === emulator && void emulator.run()));
      let info: Awaited<typeof opening>;
      try {
        info = await opening;
      } catch (error) {
        drop();
        throw error;
      }
      mark("session");
      if (!current()) {
        await this.#host.invoke("sessions:close", info.id).catch(() => {});
        drop();
        return;
      }
      this.#sessionId = info.id;
      this.#watchWindows(info.id);
      const extra: { agent?: FramePipe; net?: FramePipe } = {};
      // Opened at once, the console's with the rest, each its own connection: a resume waits for
      // the slowest, not the sum.
      const [consolePipe, ...pipes] = await Promise.allSettled([this.#host.openPipe(info.id, "console"), ...services.map((service) => this.#host.openPipe(info.id, service))]);
      mark("pipes");
      const refused = [consolePipe!, ...pipes].find((opened) => opened.status === "rejected");
      if (refused) {
        for (const opened of [consolePipe!, ...pipes]) if (opened.status === "fulfilled") opened.value.dispose();
        drop();
        throw refused.reason;
      }
      this.#pipe = (consolePipe as PromiseFulfilledResult<FramePipe>).value;
      for (const [i, service] of services.entries()) {
        const pipe = (pipes[i] as PromiseFulfilledResult<FramePipe>).value;
        const late = pending.get(service);
        if (late) late.connect(pipe); // disposed with it
        else owns.push(pipe);
        if (service === "agent") extra.agent = pipe;
        else if (service === "net") extra.net = pipe;
      }
      if (!current()) {
        drop();
        return;
      }
      // The web shell's clipboard is the page's: kept in step with the guest through the host.
      if (clipboard && extra.agent && this.#host.pageClipboard && this.#host.onEvent && navigator.clipboard) {
        const id = info.id;
        const events = this.#host.onEvent;
        owns.push(
          new ClipboardSync(
            pageClipboard(),
            {
              set: (text) => void this.#host.invoke("clipboard:set", id, text).catch(() => {}),
              onChange: (listener) => events((event) => event.type === "clipboard" && event.session === id && listener(event.text)),
              setImage: (png) => {
                void this.#host.invoke("clipboard:setImage", id, toBase64(png)).catch(() => {});
                return true;
              },
              onImage: (listener) => events((event) => event.type === "clipboardImage" && event.session === id && listener(fromBase64(event.png))),
            },
            { canRead: () => document.hasFocus() },
          ),
        );
      }
      this.#drains = drains;
      this.#speed = new SpeedControl(emulator, () => performance.now(), this.cpuPercent);
      emulator.add_listener("download-error", (e) => this.#fail(`could not load ${e.file_name}`));
      // v86 says "emulator-stopped" again for each wake-up a device asks for while it is stopped
      // (an interrupt from a host's answer that lands during a save): only the stop of a
      // running emulator counts.
      let runs = false;
      emulator.add_listener("emulator-started", () => (runs = true));
      emulator.add_listener("emulator-stopped", () => {
        if (!runs) return;
        runs = false;
        if (this.#emulator === emulator && !this.#pausing) this.#fail("the emulator stopped by itself");
      });
      window.addEventListener("error", this.#onWindowError);
      const sessionOptions: ConstructorParameters<typeof GuestSession>[1] = { owns, ...extra };
      if (extra.agent && plan.machine.agentPort) sessionOptions.agentPort = plan.machine.agentPort;
      if (this.#pipe) sessionOptions.console = this.#pipe;
      if (prompt !== undefined) sessionOptions.prompt = prompt;
      const session = new GuestSession(emulator, sessionOptions);
      this.#session = session;
      // Typed before there was a session: a booting guest takes it now, a resumed one once it runs.
      if (!initial) this.#sendTypedAhead(session);
      session.onSerial((bytes) => {
        for (const listener of this.#serialListeners) listener(bytes);
      });
      const booted = (): void => {
        if (this.state !== "booting" || this.#session !== session) return;
        const seconds = Math.max(1, Math.round((performance.now() - this.#bootStartedAt) / 1000));
        try {
          localStorage.setItem(timeKey, String(seconds));
        } catch {
          // Storage refused (private window): the next boot just cannot say how long it takes.
        }
        void this.#report("running", "");
      };
      // A guest with a known prompt is running once it shows; any other once it has settled
      // (the agent's hello is the host's to hear: the page waits for quiet then too).
      if (prompt !== undefined) session.onPhase((phase) => phase === "running" && booted());
      // A resumed guest printed its prompt before it was saved: it runs once it is restored.
      if (initial) {
        emulator.add_listener("emulator-started", () => {
          if (this.state !== "booting" || this.#session !== session) return;
          void this.#report("running", "");
          // Its shell printed the prompt before the save: Ctrl-L has it drawn again on this console.
          if (prompt !== undefined) session.sendSerial(new Uint8Array([0x0c]));
          this.#sendTypedAhead(session);
        });
      }
      session.onStop((stop) => {
        // A guest that ended by itself (shut down, panicked) leaves no state to resume: its next
        // start boots. A start that failed (a file not loaded) keeps it for another try.
        if (this.guest && this.running) void this.#host.invoke("guests:discardState", this.guest).catch(() => {});
        this.#stopped(stop);
      });
      let seen = -1;
      let quietSince = performance.now();
      session.onSerial(() => (quietSince = performance.now()));
      this.#ticker = setInterval(() => {
        session.checkScreen();
        if (session.screen.version !== seen) {
          seen = session.screen.version;
          quietSince = performance.now();
        }
        if (prompt === undefined && emulator.is_running() && performance.now() - quietSince >= settledMs) booted();
      }, 1000);
      void this.#report("booting", "");
      runnable();
    } catch (error) {
      this.#fail(error instanceof Error ? error.message : String(error));
    }
  }

  /**
   * Restores a saved state into the emulator just loaded, once it has downloaded, then runs it
   * once its start has the session whole (`canRun`).
   * A download that fails ends the start, saying why. A state the emulator refuses is set
   * aside, said in one line, and the guest starts afresh in its place (from its kept started
   * state, else a cold boot).
   */
  async #resume(emulator: V86, stateBytes: Promise<ArrayBuffer | Uint8Array>, canRun: Promise<void>): Promise<void> {
    let state: ArrayBuffer | Uint8Array;
    try {
      state = await stateBytes;
      mark("state", { decoded: state instanceof Uint8Array }); // decoded ahead, or to be decoded now
    } catch (error) {
      if (this.#emulator === emulator) this.#fail(error instanceof Error ? error.message : String(error));
      return;
    }
    if (this.#emulator !== emulator) return;
    try {
      await restoreFresh(emulator, state);
      mark("restored");
    } catch (error) {
      // Acted on once the session is this start's (its pipes open): starting afresh closes it.
      await canRun;
      if (this.#emulator !== emulator) return;
      const reason = `the emulator could not restore it: ${error instanceof Error ? error.message : String(error)}`;
      const line = `${this.guest}: its saved state cannot be used (${reason}); it starts afresh`;
      // Once: if the state offered next (its kept started state) is refused too, the start ends,
      // saying why, instead of starting over and over.
      if (this.#refusedState) {
        this.#refusedState = false;
        this.#fail(line);
        return;
      }
      this.#refusedState = true;
      await this.#startAfresh(reason);
      this.notice = line;
      return;
    }
    this.#refusedState = false;
    await canRun;
    if (this.#emulator !== emulator) return;
    this.#warming = interpretFirst(emulator);
    void emulator.run();
  }

  async #report(state: SessionState, reason: string): Promise<void> {
    this.state = state;
    this.reason = reason;
    if (this.#sessionId) await this.#host.invoke("sessions:report", this.#sessionId, state, reason).catch(() => {});
  }

  #fail(reason: string): void {
    this.#stopped({ state: "failed", reason });
  }

  /**
   * The guest ended by itself (or could not start): its screen stays as it was, for the reason.
   * The emulator goes on for a moment first, so the end of a panic's report reaches the console.
   */
  #stopped(stop: GuestStop): void {
    if (!this.running) return;
    this.#generation++;
    void this.#report(stop.state, stop.reason);
    const emulator = this.#emulator;
    const end = (): void => {
      if (this.#emulator !== emulator) return;
      this.#mark({ kind: "stop", text: stop.state === "failed" ? `the guest failed: ${stop.reason}` : `${stop.reason}; it is off` });
      void this.#teardown();
    };
    if (emulator) setTimeout(end, STOP_GRACE_MS);
    else end();
  }

  async #teardown(): Promise<void> {
    this.#unwatchWindows();
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    window.removeEventListener("error", this.#onWindowError);
    this.#session?.dispose();
    this.#session = undefined;
    this.#speed?.dispose();
    this.#speed = undefined;
    this.#warming?.dispose();
    this.#warming = undefined;
    this.#pipe = undefined;
    this.#drains = [];
    const emulator = this.#emulator;
    this.#emulator = undefined;
    if (emulator) {
      try {
        await emulator.destroy();
      } catch {
        // A faulted emulator may not stop cleanly; it is dropped either way.
      }
    }
    const id = this.#sessionId;
    this.#sessionId = undefined;
    if (id) await this.#host.invoke("sessions:close", id).catch(() => {});
  }

  /**
   * Stops without saving; `why` is the line the console shows. `thenBefore` runs once the guest
   * is down and before it shows as stopped (Power off discards its state there, so a Start
   * right after cannot resume it).
   */
  async stop(why = "stopped; the guest is off", thenBefore?: () => Promise<void>): Promise<void> {
    this.#generation++;
    this.#sendTypedAhead(undefined); // what was typed for this run is not the next one's
    const idle = !this.#emulator && !this.#sessionId;
    const wasOn = idle ? this.state === "booting" : this.running;
    try {
      if (!idle) await this.#teardown();
      await thenBefore?.();
    } finally {
      if (wasOn) {
        this.state = "stopped";
        this.reason = "";
        this.#mark({ kind: "stop", text: why });
      }
    }
  }

  /**
   * The running emulator's state, compressed: stopped, its requests to the host answered (their
   * replies land in guest memory), saved. It stays stopped; the caller runs it again or ends it.
   */
  async #capture(emulator: V86): Promise<{ bytes: Uint8Array; raw: Uint8Array }> {
    this.#pausing = true;
    try {
      await emulator.stop();
      await this.#drained();
      const raw = new Uint8Array(await emulator.save_state());
      return await compressOffThread(raw);
    } finally {
      this.#pausing = false;
    }
  }

  /** Resolves once no 9P or disk request of this guest is waiting on the host. */
  async #drained(): Promise<void> {
    await Promise.all(this.#drains.map((drain) => drain()));
  }

  /**
   * Stop: a library guest is suspended (its state saved with the host, to resume at its next
   * start); a dropped image, or a guest still booting, is powered off. Resolves to how long it took,
   * in ms. A state the host refuses leaves the guest running and throws why.
   */
  async suspend(): Promise<number> {
    const started = performance.now();
    const emulator = this.#emulator;
    const id = this.#sessionId;
    // A guest not at its prompt yet is not saved: restored, it would count as running at once.
    if (!this.guest || !emulator || !id || this.state !== "running" || !emulator.is_running()) {
      await this.stop();
      return performance.now() - started;
    }
    this.#generation++;
    try {
      const { bytes, raw } = await this.#capture(emulator);
      await this.#host.saveState(id, "", bytes);
      keepSaved(this.guest, bytes, raw);
    } catch (error) {
      if (this.#emulator === emulator) void emulator.run();
      throw new Error(`${this.title || this.guest}: its state could not be saved (${error instanceof Error ? error.message : String(error)}); it is still running`);
    }
    await this.#teardown();
    this.state = "stopped";
    this.reason = "";
    const ms = performance.now() - started;
    this.#mark({ kind: "stop", text: `suspended in ${(ms / 1000).toFixed(1)} s; Start resumes it` });
    return ms;
  }

  /** Power off: stops without saving, and a library guest's saved state is discarded (it boots next time). */
  async powerOff(): Promise<void> {
    const guest = this.guest;
    await this.stop(undefined, async () => {
      if (guest) await this.#host.invoke("guests:discardState", guest);
    });
  }

  /**
   * Saves the running guest as a named snapshot (memory and disk together), or with tag "" as
   * its suspend state while it runs on (a browser tab closing): stopped for the moment of the save.
   */
  async snapshot(tag: string): Promise<void> {
    const emulator = this.#emulator;
    const id = this.#sessionId;
    if (!this.guest || !emulator || !id || this.state !== "running") throw new Error("the guest is not running yet");
    try {
      const { bytes } = await this.#capture(emulator);
      await this.#host.saveState(id, tag, bytes);
    } finally {
      if (this.#emulator === emulator) await emulator.run();
    }
  }

  /** Restart can start the last guest again whether it runs, boots, stopped or failed. */
  get canRestart(): boolean {
    return this.started && this.#source !== undefined;
  }

  /** Puts an image in the floppy or CD drive of the running guest. */
  async insert(drive: SwapDrive, file: File): Promise<string> {
    const emulator = this.#emulator;
    if (!emulator) throw new Error("no guest is running");
    const detected = detectImage(new Uint8Array(await file.slice(0, HEADER_BYTES).arrayBuffer()), file.size, file.name);
    checkFitsDrive(detected, drive, file.name);
    const image = { buffer: await file.arrayBuffer() };
    if (drive === "fda") await emulator.set_fda(image);
    else await emulator.set_cdrom(image);
    return `${file.name} is in the ${DRIVE_NAMES[drive]}`;
  }

  /**
   * Gives the running guest `memory` MiB through its balloon, kept within what the balloon can
   * give (up to the boot RAM); returns what it has now. Throws a BalloonError saying why not.
   */
  setMemory(memory: number): number {
    const emulator = this.#emulator;
    if (!emulator || !this.running) throw new Error("no guest is running");
    const { min, max } = balloonRange(this.bootMemory);
    this.memory = setBalloon(emulator, this.bootMemory, Math.min(max, Math.max(min, memory)));
    return this.memory;
  }

  /** Caps the running guest's speed at `percent` of one host core (100: none). */
  setCpu(percent: number): void {
    this.#speed?.set(percent);
    this.cpuPercent = percent;
  }

  eject(drive: SwapDrive): void {
    if (drive === "fda") this.#emulator?.eject_fda();
    else this.#emulator?.eject_cdrom();
  }

  /** Starts the guest again with its saved state set aside by the host (kept as suspend.state.unusable), saying why. */
  async #startAfresh(reason: string): Promise<void> {
    if (!this.#source || !this.#screen) return;
    const guest = this.guest;
    await this.stop(undefined, async () => {
      if (guest) await this.#host.invoke("guests:setAsideState", guest, reason);
    });
    await this.start(this.#source, this.#screen);
  }

  /** Restart boots the guest again from cold: its saved state, if any, is discarded first. */
  async restart(): Promise<void> {
    if (!this.#source || !this.#screen) return;
    await this.powerOff();
    await this.start(this.#source, this.#screen);
  }
}
