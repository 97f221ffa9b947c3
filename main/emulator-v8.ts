// V8's flags for the emulator's WebAssembly: Liftoff (V8's baseline compiler) only, no tier-up
// to TurboFan. v86 compiles the guest's code into thousands of small WebAssembly modules as it
// runs; with tier-up, V8 recompiles the hot ones with TurboFan on background threads, which on a
// 2-core host take the core the emulator's other thread needs, and the faster code did not make
// up for it in any run measured here (interleaved, same build): a headless resume answered in
// 636 against 708 ms (medians of 6), the page's in 0.80 against 0.93 s, tiny's cold boot took
// 11.5-11.9 against 14.2-14.7 s headless and 13-14 against 41-42 s in the page (Chromium), a
// 20 s shell loop in the guest ran 5 % faster, md5sum and gzip of 16 MiB 14 % faster.
//
// V8's flags are a process's: the command line's emulator worker sets them before it compiles
// v86 (headless/emulator-wasm.ts, which says why not before the worker starts), the desktop app
// on the command line of its pages (electron/main.ts, Chromium's --js-flags).

export const EMULATOR_V8_FLAGS = "--liftoff-only";
