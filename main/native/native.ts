// Native calls for the command line's host, through koffi (an FFI whose npm packages carry
// prebuilt binaries): what Node has no call for, such as madvise (huge-pages.ts) or libzstd's
// decoder (main/state/state-zstd.ts). Each is a speed-up only: where koffi, the library or the
// function is missing, the call is null and its caller does without.

import { createRequire } from "node:module";

interface Koffi {
  load(path: string): { func(signature: string): unknown };
}

let koffi: Koffi | null | undefined;
const libraries = new Map<string, { func(signature: string): unknown } | null>();
const calls = new Map<string, unknown>();

function loadKoffi(): Koffi | null {
  if (koffi !== undefined) return koffi;
  koffi = null;
  try {
    koffi = createRequire(import.meta.url)("koffi") as Koffi;
  } catch {
    // No koffi build for this platform.
  }
  return koffi;
}

function library(names: readonly string[]): { func(signature: string): unknown } | null {
  const key = names.join("|");
  if (libraries.has(key)) return libraries.get(key)!;
  let found: { func(signature: string): unknown } | null = null;
  const ffi = loadKoffi();
  for (const name of ffi ? names : []) {
    try {
      found = ffi!.load(name);
      break;
    } catch {
      // not this name here: the next
    }
  }
  libraries.set(key, found);
  return found;
}

/**
 * The native function `signature` (C, as koffi reads it) of the first of `names` that loads,
 * looked up once; null where there is none.
 */
export function nativeFunction<F>(names: readonly string[], signature: string): F | null {
  const key = `${names.join("|")}:${signature}`;
  if (calls.has(key)) return calls.get(key) as F | null;
  let call: F | null = null;
  try {
    call = (library(names)?.func(signature) as F | undefined) ?? null;
  } catch {
    // the library lacks it
  }
  calls.set(key, call);
  return call;
}
