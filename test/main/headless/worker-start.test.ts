// V8's flags for the emulator (main/emulator-v8.ts) are set by the emulator's worker right
// before it compiles v86 (emulator-wasm.ts), once for the process; starting a worker sets none
// (a flag changed before a thread has loaded Node's modules costs it their cached code).

import { afterEach, describe, expect, it, vi } from "vitest";

const calls = vi.hoisted(() => ({ steps: [] as string[], workers: 0, options: [] as unknown[] }));

vi.mock("node:v8", async (original) => ({ ...(await original<typeof import("node:v8")>()), setFlagsFromString: (flags: string) => void calls.steps.push(`flags ${flags}`) }));
vi.mock("node:worker_threads", async (original) => {
  const { EventEmitter } = await import("node:events");
  class FakeWorker extends EventEmitter {
    readonly stdout = { resume: () => {} };
    readonly stderr = { resume: () => {} };
    constructor(_path: string, options: unknown) {
      super();
      calls.workers++;
      calls.options.push(options);
    }
    ref(): void {}
    unref(): void {}
  }
  return { ...(await original<typeof import("node:worker_threads")>()), Worker: FakeWorker };
});

describe("the emulator's worker", () => {
  afterEach(() => {
    vi.resetModules();
    vi.unstubAllGlobals();
    calls.steps.length = 0;
    calls.options.length = 0;
  });

  it("is started without touching V8's flags", async () => {
    const { claimWorker, startWorkerEarly } = await import("../../../main/headless/worker-start.js");
    startWorkerEarly();
    claimWorker();
    claimWorker();
    expect(calls.workers).toBe(2); // the early one, claimed; then a new one
    expect(calls.steps).toEqual([]);
  });

  it("keeps its young generation at V8's starting size, so set-up does not grow the heap", async () => {
    const { claimWorker } = await import("../../../main/headless/worker-start.js");
    claimWorker();
    expect(calls.options).toEqual([expect.objectContaining({ resourceLimits: { maxYoungGenerationSizeMb: 3 } })]);
  });

  it("compiles v86 after V8 is given the emulator's flags, which are set once", async () => {
    const compile = (bytes: Uint8Array): Promise<unknown> => {
      calls.steps.push(`compile ${bytes.length} bytes`);
      return Promise.resolve({});
    };
    vi.stubGlobal("WebAssembly", { ...WebAssembly, compile });
    const { compileEmulator } = await import("../../../main/headless/emulator-wasm.js");
    await compileEmulator(new Uint8Array(8));
    await compileEmulator(new Uint8Array(4));
    expect(calls.steps).toEqual(["flags --liftoff-only", "compile 8 bytes", "compile 4 bytes"]);
  });
});
