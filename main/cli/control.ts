// A running `unmachine run` takes commands from other terminals (`unmachine media NAME ...`,
// `unmachine balloon NAME MiB`, `unmachine suspend|poweroff NAME`, `unmachine snapshot NAME save TAG`,
// `unmachine windows|apps|launch NAME` through the guest's agent)
// on a Unix socket in a folder only this user can enter, one per library (data folder):
// <runtime dir>/unmachine-<uid>-<hash of the data folder>/NAME.sock, so a "tiny" run of one library
// is never taken for the "tiny" of another (a name too long for a socket path is cut and given a
// hash). One JSON line in, one JSON line out, one request per connection. The running side
// re-checks everything it is sent.

import { createServer, connect, type Server, type Socket } from "node:net";
import { readdirSync, readFileSync, realpathSync, unlinkSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join } from "node:path";
import type { Disposable } from "../../core/disposable.js";
import { isSwapDrive, checkFitsDrive, type SwapDrive } from "../../core/media/drives.js";
import { openImage } from "../media/image-file.js";
import type { HeadlessGuest } from "../headless/runner.js";
import type { AgentSession } from "../../core/agent/session.js";
import type { GuestWindow } from "../../core/agent/messages.js";
import { checkPrivateDir, ensurePrivateDir, PrivateFolderError } from "../private-files.js";
import { dataDir } from "../paths.js";

export type ControlRequest =
  | { type: "insert"; drive: SwapDrive; path: string }
  | { type: "eject"; drive: SwapDrive }
  | { type: "balloon"; memory: number }
  | { type: "suspend" }
  | { type: "poweroff" }
  | { type: "snapshot"; tag: string }
  | { type: "windows" }
  | { type: "apps" }
  | { type: "launch"; app: string };
/** `data`: the guest's windows (GuestWindow[]), apps (ControlApp[]) or launched window (ControlLaunched). */
export type ControlReply = { ok: true; message: string; data?: unknown } | { ok: false; error: string; usage?: boolean };
/** An app as the control socket carries it: the icon's PNG bytes in base64. */
export interface ControlApp {
  id: string;
  name: string;
  exec: string;
  iconPng?: string;
}
export interface ControlLaunched {
  window: number;
  pid: number;
  /** The window as the guest listed it, when the list has it. */
  listed?: GuestWindow;
}
/** What the window commands use of the guest's agent session. */
export type ControlAgent = Pick<AgentSession, "state" | "whenReady" | "windows" | "apps" | "launch">;
/** What a command acts on: the running guest's drives and its balloon. */
export type ControlGuest = Pick<HeadlessGuest, "eject" | "insert" | "balloon">;
/** What a command asks of the run itself: end it (suspended or powered off), or keep a snapshot. */
export interface ControlRun {
  end(how: "suspend" | "poweroff"): Promise<string>;
  snapshot(tag: string): Promise<string>;
  /** The guest's agent session, once its agent has a port (windows, apps, launch). */
  agent?(): ControlAgent | undefined;
}

/** How long a window command waits for an agent that has not said hello yet. */
const AGENT_WAIT_MS = 10_000;
const APP_NAME_LIMIT = 256;

/** The longest socket path every Unix takes: sun_path is 104 bytes on macOS, 108 on Linux, with its NUL. */
const SOCKET_PATH_MAX = 103;
const REQUEST_LIMIT = 64 * 1024;
/** A connection that sends no whole request in this time is closed. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Runs of one guest that can take commands at once (tiny, tiny-2, ...). */
const MAX_RUNS = 100;
const NAME = /^[A-Za-z0-9_.~-]+$/;

export class ControlError extends Error {
  override name = "ControlError";
}

/** `path` with its symlinks resolved, as far as it exists: one folder however it is reached. */
function realFolder(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realFolder(parent), basename(path));
  }
}

/**
 * The control folder of the library (data folder) `env` names: in the user's runtime folder, or
 * in the temporary folder without one.
 */
export function controlDir(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? 0;
  const library = createHash("sha256").update(realFolder(dataDir(env))).digest("hex").slice(0, 12);
  return join(env.XDG_RUNTIME_DIR || tmpdir(), `unmachine-${uid}-${library}`);
}

function controlFolderError(dir: string, error: unknown): ControlError {
  const message = (error as Error).message;
  if (error instanceof PrivateFolderError) return new ControlError(`${message} (or set XDG_RUNTIME_DIR to a private folder)`);
  return new ControlError(`cannot make the control folder ${dir}: ${message}`);
}

/** Makes the control folder, or checks the one there is private to this user; throws a ControlError if not. */
export function ensureControlDir(dir: string): void {
  try {
    ensurePrivateDir(dir, "control folder");
  } catch (error) {
    throw controlFolderError(dir, error);
  }
}

/**
 * The socket of the run named `name`: NAME.sock, or when that path is too long for a socket,
 * the name cut short with a hash of the whole name, so every name gets a distinct socket and
 * both the whole name and the short one reach it.
 */
export function socketPath(dir: string, name: string): string {
  if (!NAME.test(name)) throw new ControlError(`"${name.slice(0, 64)}" is not a name of a running guest (see: unmachine list)`);
  const plain = join(dir, `${name}.sock`);
  if (Buffer.byteLength(plain) <= SOCKET_PATH_MAX) return plain;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 12);
  const room = SOCKET_PATH_MAX - Buffer.byteLength(join(dir, `~${hash}.sock`));
  if (room < 1) throw new ControlError(`the control folder ${dir} is too long a path for a socket; set XDG_RUNTIME_DIR to a shorter one`);
  return join(dir, `${name.slice(0, room)}~${hash}.sock`);
}

function nameOf(path: string): string {
  return basename(path, ".sock");
}

function parseRequest(line: string): ControlRequest {
  const r = JSON.parse(line) as Record<string, unknown>;
  if (typeof r !== "object" || r === null) throw new Error("unknown request");
  if (r.type === "suspend" || r.type === "poweroff" || r.type === "windows" || r.type === "apps") return { type: r.type };
  if (r.type === "launch") {
    if (typeof r.app !== "string" || r.app === "" || Buffer.byteLength(r.app) > APP_NAME_LIMIT || r.app.includes("\0")) {
      throw new Error(`app must be a name of 1..${APP_NAME_LIMIT} bytes`);
    }
    return { type: "launch", app: r.app };
  }
  if (r.type === "snapshot") {
    if (typeof r.tag !== "string") throw new Error("tag must be a string");
    return { type: "snapshot", tag: r.tag };
  }
  if (r.type === "balloon") {
    if (typeof r.memory !== "number" || !Number.isInteger(r.memory)) throw new Error("memory must be a whole number of MiB");
    return { type: "balloon", memory: r.memory };
  }
  if (!isSwapDrive(r.drive)) throw new Error("drive must be fda or cdrom");
  if (r.type === "eject") return { type: "eject", drive: r.drive };
  if (r.type === "insert" && typeof r.path === "string" && isAbsolute(r.path)) return { type: "insert", drive: r.drive, path: r.path };
  throw new Error("unknown request");
}

async function handleAgent(request: { type: "windows" } | { type: "apps" } | { type: "launch"; app: string }, run: ControlRun | undefined): Promise<ControlReply> {
  const agent = run?.agent?.();
  if (!agent || agent.state === "disconnected") return { ok: false, error: "the guest has no agent to ask (its profile has none, or it went away)" };
  try {
    if (agent.state !== "ready") await agent.whenReady(AGENT_WAIT_MS);
    if (request.type === "windows") {
      const windows = agent.windows ?? [];
      return { ok: true, message: `${windows.length} window${windows.length === 1 ? "" : "s"}`, data: windows };
    }
    if (request.type === "apps") {
      const apps = await agent.apps();
      const data: ControlApp[] = apps.map((app) => ({ id: app.id, name: app.name, exec: app.exec, ...(app.icon ? { iconPng: Buffer.from(app.icon).toString("base64") } : {}) }));
      return { ok: true, message: `${apps.length} app${apps.length === 1 ? "" : "s"}`, data };
    }
    const launched = await agent.launch(request.app);
    const listed = agent.windows?.find((w) => w.id === launched.window);
    const data: ControlLaunched = { ...launched, ...(listed ? { listed } : {}) };
    return { ok: true, message: `launched ${request.app}: window 0x${launched.window.toString(16)} (pid ${launched.pid})`, data };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

async function handle(guest: ControlGuest, request: ControlRequest, run: ControlRun | undefined): Promise<ControlReply> {
  if (request.type === "windows" || request.type === "apps" || request.type === "launch") return handleAgent(request, run);
  if (request.type === "suspend" || request.type === "poweroff" || request.type === "snapshot") {
    if (!run) return { ok: false, error: "this run cannot be suspended or snapshotted" };
    try {
      return { ok: true, message: request.type === "snapshot" ? await run.snapshot(request.tag) : await run.end(request.type) };
    } catch (error) {
      return { ok: false, error: (error as Error).message, usage: true };
    }
  }
  if (request.type === "balloon") {
    try {
      return { ok: true, message: `the guest now has ${await guest.balloon(request.memory)} MiB of RAM` };
    } catch (error) {
      return { ok: false, error: (error as Error).message, usage: true };
    }
  }
  if (request.type === "eject") {
    await guest.eject(request.drive);
    return { ok: true, message: `ejected the ${request.drive === "fda" ? "floppy" : "CD"}` };
  }
  let image;
  try {
    image = openImage(request.path);
    checkFitsDrive(image.detected, request.drive, request.path);
  } catch (error) {
    return { ok: false, error: (error as Error).message, usage: true };
  }
  await guest.insert(request.drive, image.contents ?? readFileSync(request.path));
  return { ok: true, message: `inserted ${request.path}: ${image.detected.description}` };
}

/** Answers one connection: its first line is the request; whatever follows is read and dropped. */
function answerConnection(guest: ControlGuest, run: ControlRun | undefined, socket: Socket): void {
  let buffer = "";
  let answered = false;
  const answer = (reply: ControlReply): void => {
    if (answered) return;
    answered = true;
    socket.end(`${JSON.stringify(reply)}\n`);
  };
  socket.setEncoding("utf8");
  socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
  socket.on("error", () => socket.destroy());
  const onData = (chunk: string): void => {
    buffer += chunk;
    const end = buffer.indexOf("\n");
    if (end < 0) {
      if (buffer.length > REQUEST_LIMIT) socket.destroy();
      return;
    }
    // One request per connection: nothing after its line is ever run. The rest is still read
    // (and dropped), since closing with unread bytes would reset the connection and lose the answer.
    socket.off("data", onData);
    socket.on("data", () => {});
    socket.setTimeout(0); // a suspend or a snapshot takes seconds: the request is in, wait for its answer
    const line = buffer.slice(0, end);
    buffer = "";
    let request: ControlRequest;
    try {
      if (line.length > REQUEST_LIMIT) throw new Error("request too long");
      request = parseRequest(line);
    } catch (error) {
      answer({ ok: false, error: (error as Error).message });
      return;
    }
    handle(guest, request, run).then(answer, (error: unknown) => answer({ ok: false, error: (error as Error).message }));
  };
  socket.on("data", onData);
}

/**
 * Listens for commands for this guest; returns the name it is reachable by. A socket left by
 * a run that died is replaced; one a live run answers on makes this run take the next name.
 */
export async function serveControl(name: string, guest: ControlGuest, dir: string = controlDir(), run?: ControlRun): Promise<{ name: string } & Disposable> {
  ensureControlDir(dir);
  for (let n = 1; n <= MAX_RUNS; n++) {
    const path = socketPath(dir, n === 1 ? name : `${name}-${n}`);
    if (await reachable(path)) continue;
    removeSocket(path);
    const server = createServer((socket) => answerConnection(guest, run, socket));
    try {
      await new Promise<void>((resolveListen, reject) => {
        server.once("error", reject);
        server.listen(path, () => resolveListen());
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") continue; // another run took it just now
      throw new ControlError(`cannot listen for commands on ${path}: ${(error as Error).message}`);
    }
    return { name: nameOf(path), dispose: () => closeServer(server, path) };
  }
  throw new ControlError(`${MAX_RUNS} runs of "${name}" already take commands`);
}

function closeServer(server: Server, path: string): void {
  server.close();
  removeSocket(path);
}

function removeSocket(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Whether a live process answers on `path`; one that does not answer soon counts as live. */
function reachable(path: string): Promise<boolean> {
  return new Promise((resolveReach) => {
    const socket = connect(path, () => {
      socket.destroy();
      resolveReach(true);
    });
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolveReach(true);
    });
    socket.on("error", () => resolveReach(false));
  });
}

/**
 * The names of running guests that take commands: a socket a run that died left behind is not
 * one (none when the control folder is not private).
 */
export async function runningNames(dir: string = controlDir()): Promise<string[]> {
  let sockets: string[];
  try {
    checkPrivateDir(dir);
    sockets = readdirSync(dir).filter((f) => f.endsWith(".sock"));
  } catch {
    return [];
  }
  const live = await Promise.all(sockets.map((f) => reachable(join(dir, f))));
  return sockets.filter((_, i) => live[i]).map((f) => nameOf(f)).sort();
}

/** Sends one command to a running guest. */
export async function sendControl(name: string, request: ControlRequest, dir: string = controlDir()): Promise<ControlReply> {
  const noSuchGuest = async (): Promise<ControlError> => {
    const running = await runningNames(dir);
    return new ControlError(`no running guest named "${name.slice(0, 64)}" (running: ${running.join(", ") || "none"})`);
  };
  try {
    checkPrivateDir(dir, "control folder");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw await noSuchGuest();
    throw controlFolderError(dir, error);
  }
  let path: string;
  try {
    path = socketPath(dir, name);
  } catch {
    throw await noSuchGuest();
  }
  const reply = await new Promise<string | undefined>((resolveReply) => {
    const socket = connect(path, () => socket.write(`${JSON.stringify(request)}\n`));
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => resolveReply(text));
    socket.on("error", () => resolveReply(undefined));
  });
  if (reply === undefined) throw await noSuchGuest();
  try {
    return JSON.parse(reply.split("\n")[0]!) as ControlReply;
  } catch {
    throw new ControlError(`guest "${name}" gave no answer`);
  }
}
