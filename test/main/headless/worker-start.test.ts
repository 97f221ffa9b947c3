// The emulator's worker gets V8's flags for it (main/emulator-v8.ts) before it starts, once for
// the process (V8's flags are a process's, and a worker compiles with them).

import { afterEach, describe, expect, it, vi } from "vitest";

const calls = vi.hoisted(() => ({ flags: [] as string[], workers: 0 }));

vi.mock("node:v8", async (original) => ({ ...(await original<typeof import("node:v8")>()), setFlagsFromString: (flags: string) => void calls.flags.push(`${flags} before worker ${calls.workers}`) }));
vi.mock("node:worker_threads", async (original) => {
  const { EventEmitter } = await import("node:events");
  class FakeWorker extends EventEmitter {
    readonly stdout = { resume: () => {} };
    readonly stderr = { resume: () => {} };
    constructor() {
      super();
      calls.workers++;
    }
    ref(): void {}
    unref(): void {}
  }
  return { ...(await original<typeof import("node:worker_threads")>()), Worker: FakeWorker };
});

describe("the emulator's worker", () => {
  afterEach(() => vi.resetModules());

  it("starts after V8 is given the emulator's flags, which are set once", async () => {
    const { claimWorker, startWorkerEarly } = await import("../../../main/headless/worker-start.js");
    startWorkerEarly();
    claimWorker();
    claimWorker();
    expect(calls.workers).toBe(2); // the early one, claimed; then a new one
    expect(calls.flags).toEqual(["--liftoff-only before worker 0"]);
  });
});
