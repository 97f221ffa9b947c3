// v86's WebAssembly, compiled in the emulator's worker under V8's flags for the emulator
// (main/emulator-v8.ts).
//
// The flags are set here, once the worker has loaded its modules, and not before the worker
// starts: V8 checks a hash of its flags before it uses cached code, and Node loads its own
// modules from such a cache, so a flag changed before a thread has loaded them has it compile
// each one again. Set before the worker started, they cost it 30 to 50 ms to its first line
// (77-109 ms against 55-59 here) and the command line's own load 5-10 ms; set here, the
// compiler still keeps to them (a cold boot of tiny took 14.6-15.1 s of CPU either way, 24-32 s
// without them).

import { setFlagsFromString } from "node:v8";
import { EMULATOR_V8_FLAGS } from "../emulator-v8.js";

// lib.dom is not loaded for main/, so the WebAssembly calls used are typed here.
export interface WasmModule {
  readonly compiled: unique symbol;
}
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: object): Promise<{ exports: object }>;
};

let flagsSet = false;

/** Compiles `bytes` (v86.wasm) with the emulator's V8 flags, which are set first, once for the process. */
export function compileEmulator(bytes: Uint8Array): Promise<WasmModule> {
  if (!flagsSet) {
    setFlagsFromString(EMULATOR_V8_FLAGS);
    flagsSet = true;
  }
  return WebAssembly.compile(bytes);
}

/** An instance of a module compileEmulator gave, with v86's imports: its exports. */
export async function instantiateEmulator(module: Promise<WasmModule>, imports: object): Promise<object> {
  return (await WebAssembly.instantiate(await module, imports)).exports;
}
