// Messages between the headless runner (main thread) and the worker that runs v86. Bulk
// console bytes do not travel here: they go through the console FramePipe's own port.

import type { MessagePort } from "node:worker_threads";
import type { LaunchMachine } from "../../core/guest/launch-plan.js";
import type { SwapDrive } from "../../core/media/drives.js";

/** Host services a headless guest can be given, each over a pipe of its own. */
export const HEADLESS_SERVICES = ["p9", "net", "agent", "disk"] as const;
export type HeadlessService = (typeof HEADLESS_SERVICES)[number];

export interface WorkerInit {
  /** The machine, without its initial state: a saved state comes with "start". */
  machine: Omit<LaunchMachine, "initialState">;
  /** Whether "start" brings a saved state (the guest printed its prompt before it was saved). */
  resumes: boolean;
  prompt?: string;
  /** How often the worker reports a changed text screen, in ms. */
  screenInterval: number;
  /** The services the host serves; their ports travel beside the console's (see worker.ts). */
  services: HeadlessService[];
}

/** WorkerInit with the ports it travels with: the console's and each service's (transferred). */
export interface WorkerStart extends WorkerInit {
  consolePort: MessagePort;
  ports: Partial<Record<HeadlessService, MessagePort>>;
}

export type ToWorker =
  /** The first message: the machine to run, with the console's and each service's port (transferred). */
  | { type: "init"; init: WorkerStart }
  /** Run the machine: restored from `state` (a saved state's payload, or that payload decoded, in shared memory) if it was set up to resume. */
  | { type: "start"; state?: Uint8Array | undefined }
  | { type: "stop" }
  /** Stop the emulator, let the host's answers in flight land, save the state, then end as on stop. */
  | { type: "suspend" }
  /** The same without ending: the emulator stays stopped (its disks synced) until "continue". */
  | { type: "save" }
  | { type: "continue" }
  | { type: "insert"; drive: SwapDrive; image: ArrayBuffer }
  | { type: "eject"; drive: SwapDrive }
  /** Lends the guest back RAM or takes it: what it should have, in MiB (core/v86/balloon.ts). */
  | { type: "balloon"; memory: number }
  /** A new speed cap in percent of one host core (100: none). */
  | { type: "cpu"; percent: number };

export type FromWorker =
  | { type: "phase"; phase: "booting" | "running" }
  | { type: "screen"; text: string }
  | { type: "fault"; message: string }
  | { type: "media"; drive: SwapDrive; inserted: boolean; error?: string }
  /** The answer to "balloon" or "cpu": the MiB or percent the guest has now, or why not. */
  | { type: "resource"; resource: "balloon" | "cpu"; value?: number; error?: string }
  /** The answer to "suspend": v86's raw state (transferred), or why it could not be saved. */
  | { type: "state"; state?: ArrayBuffer; error?: string }
  | { type: "stopped" };
