// Messages between the headless runner (main thread) and the worker that runs v86. Bulk
// console bytes do not travel here: they go through the console FramePipe's own port.

import type { MachineSpecFiles } from "./machine-files.js";

export interface WorkerInit {
  files: MachineSpecFiles;
  prompt?: string;
  /** How often the worker reports a changed text screen, in ms. */
  screenInterval: number;
}

export type ToWorker = { type: "stop" };

export type FromWorker =
  | { type: "phase"; phase: "booting" | "running" }
  | { type: "screen"; text: string }
  | { type: "fault"; message: string }
  | { type: "stopped" };
