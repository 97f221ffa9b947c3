// The headless guest: v86 running in a Node worker thread, wired to the main thread by a
// GuestSession. Console bytes go through the console pipe's port; phase, screen text and
// faults through the worker's own port (protocol.ts). An exception inside v86 ends up here
// as a "fault" message, never as a stack trace on the user's terminal.

import { parentPort } from "node:worker_threads";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bootMemory, buildV86Options } from "../../core/v86/options.js";
import { setBalloon } from "../../core/v86/balloon.js";
import { SpeedControl } from "../../core/v86/speed-cap.js";
import { interpretFirst, restoreFresh, resumeOptions } from "../../core/v86/restore.js";
import { GuestSession } from "../../core/guest/session.js";
import { p9Relay } from "../../core/guest/relays.js";
import { DiskClient, withServedDisks } from "../../core/disk/served-disk.js";
import type { Disposable } from "../../core/disposable.js";
import { loadMachine } from "./machine-files.js";
import { adviseHugePages } from "../native/huge-pages.js";
import { compileEmulator, instantiateEmulator } from "./emulator-wasm.js";
import { nodePortPipe } from "./node-port-pipe.js";
import { cacheDir, v86Dir } from "../paths.js";
import { loadV86 } from "./v86-code.js";
import type { FromWorker, ToWorker, WorkerStart } from "./protocol.js";

const parent = parentPort!;
const post = (message: FromWorker): void => parent.postMessage(message);

function fault(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  post({ type: "fault", message });
}

process.on("uncaughtException", (error) => {
  fault(error);
  process.exit(1);
});
process.on("unhandledRejection", (error) => {
  fault(error);
  process.exit(1);
});

// Compiled while the host still reads the guest's plan and state (a worker may start early:
// worker-start.ts); the machine comes with the first message.
const compiled = compileEmulator(readFileSync(join(v86Dir, "v86.wasm")));
// v86's code loads (from its code cache) while the WebAssembly compiles on V8's own threads.
const v86 = loadV86(v86Dir, join(cacheDir(), "code"));
const { V86 } = v86;
const init = await new Promise<WorkerStart>((resolveInit) => {
  parent.once("message", (message: ToWorker) => {
    if (message.type === "init") resolveInit(message.init);
    else process.exit(0); // told to stop before it was given a machine
  });
});
const spec = loadMachine(init.machine, init.resumes);
const pipes = Object.fromEntries(Object.entries(init.ports).map(([service, port]) => [service, nodePortPipe(port)]));
const owns: Disposable[] = [];
const relay = pipes.p9 ? p9Relay(pipes.p9) : undefined;
if (relay && pipes.p9) {
  spec.handle9p = relay.handle9p;
  owns.push(relay, pipes.p9);
}
const disks = pipes.disk ? new DiskClient(pipes.disk, (message) => fault(new Error(message))) : undefined;
if (disks && pipes.disk) owns.push(pipes.disk, disks); // disposed in reverse: the client lets go before its pipe closes
// Set up now, run on "start": a saved state, if any, arrives with it.
const built = buildV86Options(spec);
const options = { ...withServedDisks(init.resumes ? resumeOptions(built) : built, init.machine, disks), autostart: false };
const emulator = new V86({
  ...options,
  wasm_fn: (imports: object) => instantiateEmulator(compiled, imports),
} as ConstructorParameters<typeof V86>[0]);
const loaded = new Promise<void>((resolveLoaded) => emulator.add_listener("emulator-loaded", () => resolveLoaded()));

/** The JIT held off for a resumed guest's first instructions (core/v86/restore.ts). */
let warming: Disposable | undefined;

/** Restores the saved state if one came, then runs; a state v86 refuses is a fault (the host boots cold). */
async function start(state: Uint8Array | undefined): Promise<void> {
  await loaded;
  if (ending) return;
  if (state) {
    // The host hands over a buffer of the state's own, or the state decoded in shared memory (runner.ts start).
    try {
      await restoreFresh(emulator, state, adviseHugePages);
    } catch (error) {
      fault(error); // the host sets the state aside, saying why, and boots cold
      end();
      return;
    }
    warming = interpretFirst(emulator);
  }
  await emulator.run();
  v86.keepCache();
}

const bootMiB = bootMemory(spec);
const now = (): number => performance.now();
const speed = new SpeedControl(emulator, now, spec.cpuPercent);

/** A change the user asked for while the guest runs: answered with what it is now, or why not. */
function resources(message: Extract<ToWorker, { type: "balloon" | "cpu" }>): void {
  const why = (error: unknown): string => (error instanceof Error ? error.message : String(error));
  if (message.type === "balloon") {
    try {
      post({ type: "resource", resource: "balloon", value: setBalloon(emulator, bootMiB, message.memory) });
    } catch (error) {
      post({ type: "resource", resource: "balloon", error: why(error) });
    }
    return;
  }
  try {
    speed.set(message.percent);
    post({ type: "resource", resource: "cpu", value: message.percent });
  } catch (error) {
    post({ type: "resource", resource: "cpu", error: why(error) });
  }
}

const sessionOptions: ConstructorParameters<typeof GuestSession>[1] = { console: nodePortPipe(init.consolePort), owns };
if (pipes.net) sessionOptions.net = pipes.net;
if (pipes.agent) sessionOptions.agent = pipes.agent;
if (pipes.agent && init.machine.agentPort) sessionOptions.agentPort = init.machine.agentPort;
// A restored machine printed its prompt before it was saved: it runs as soon as it is restored.
if (init.prompt !== undefined && !init.resumes) sessionOptions.prompt = init.prompt;
const session = new GuestSession(emulator, sessionOptions);
session.onPhase((phase) => post({ type: "phase", phase }));

let shownVersion = -1;
const screenTimer = setInterval(() => {
  if (session.screen.version === shownVersion) return;
  shownVersion = session.screen.version;
  post({ type: "screen", text: session.screen.text() });
}, init.screenInterval);

async function swap(message: Extract<ToWorker, { type: "insert" | "eject" }>): Promise<void> {
  const { drive } = message;
  try {
    if (message.type === "eject") {
      if (drive === "fda") emulator.eject_fda();
      else emulator.eject_cdrom();
    } else if (drive === "fda") await emulator.set_fda({ buffer: message.image });
    else await emulator.set_cdrom({ buffer: message.image });
    post({ type: "media", drive, inserted: message.type === "insert" });
  } catch (error) {
    post({ type: "media", drive, inserted: false, error: error instanceof Error ? error.message : String(error) });
  }
}

parent.on("message", (message: ToWorker) => {
  if (message.type === "start") {
    void start(message.state);
    return;
  }
  if (message.type === "insert" || message.type === "eject") {
    void swap(message);
    return;
  }
  if (message.type === "balloon" || message.type === "cpu") {
    resources(message);
    return;
  }
  if (message.type === "suspend") {
    void suspend();
    return;
  }
  if (message.type === "save") {
    void save();
    return;
  }
  if (message.type === "continue") {
    if (!ending) void emulator.run();
    return;
  }
  if (message.type === "stop") end();
});

/** Stops the emulator, then lets every host answer in flight land (in guest memory) before the save. */
async function drained(): Promise<void> {
  await emulator.stop();
  for (;;) {
    await Promise.all([relay?.idle(), disks?.idle()]);
    // v86's callbacks for those answers run after them and may ask for more.
    await new Promise<void>((resolveTurn) => setTimeout(resolveTurn, 0));
    if ((relay?.inFlight ?? 0) === 0 && (disks?.inFlight ?? 0) === 0) return;
  }
}

async function suspend(): Promise<void> {
  speed.dispose();
  try {
    await drained();
    const state = await emulator.save_state();
    parent.postMessage({ type: "state", state } satisfies FromWorker, [state]);
  } catch (error) {
    post({ type: "state", error: error instanceof Error ? error.message : String(error) });
  }
  end();
}

/** A snapshot of the running guest: stopped, drained, its disks synced, saved; it runs again on "continue". */
async function save(): Promise<void> {
  try {
    await drained();
    for (const role of ["hda", "hdb"] as const) if (disks && init.machine.media[role]?.kind === "served") await disks.request({ op: "flush", disk: role });
    const state = await emulator.save_state();
    parent.postMessage({ type: "state", state } satisfies FromWorker, [state]);
  } catch (error) {
    post({ type: "state", error: error instanceof Error ? error.message : String(error) });
    void emulator.run();
  }
}

let ending = false;
function end(): void {
  if (ending) return;
  ending = true;
  clearInterval(screenTimer);
  warming?.dispose();
  speed.dispose();
  post({ type: "screen", text: session.screen.text() });
  session.dispose();
  void emulator.destroy().finally(() => {
    post({ type: "stopped" });
    process.exit(0);
  });
}
