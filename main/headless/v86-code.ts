// v86's JavaScript (build/libv86.js), loaded in the emulator's worker with a V8 code cache kept
// in the user's cache folder: the second start of an emulator neither parses v86's 360 KB again
// nor compiles the functions that set a machine up and restore it, one by one, as they are
// first called. An ES module import (the package's libv86.mjs) has no such cache in Node 20.
//
// The cache file is named after a hash of v86's code, Node's version and the emulator's V8
// flags: V8 itself checks only its own version, its flags and the code's length before it
// uses a cache, and rejects one that fails those (cachedDataRejected), which is then written
// again. The file is the user's own (0600, in a folder only they can enter).

import { Script } from "node:vm";
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { V86 as V86Class } from "v86";
import { ensurePrivateDir, writePrivateFileAtomic } from "../private-files.js";
import { EMULATOR_V8_FLAGS } from "../emulator-v8.js";

export interface LoadedV86 {
  V86: typeof V86Class;
  /** Whether the code came from the cache (false on a first start, or after v86, Node or the flags changed). */
  readonly cached: boolean;
  /**
   * Writes the cache when none was used, with every function compiled so far: called once a
   * machine is set up and running. A cache that cannot be written is no error (the next start
   * compiles again).
   */
  keepCache(): void;
}

/** Loads v86 from `dir` (its build folder), with the code cache kept in `cacheFolder`. */
export function loadV86(dir: string, cacheFolder: string): LoadedV86 {
  const path = join(dir, "libv86.js");
  const source = readFileSync(path, "utf8");
  const key = createHash("sha256").update(source).update(`\0${process.version}\0${EMULATOR_V8_FLAGS}`).digest("hex").slice(0, 24);
  const cachePath = join(cacheFolder, `libv86-${key}.cache`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cachePath);
  } catch {
    // none yet
  }
  // The CommonJS wrapper v86's build expects: it exports through `module` and loads Node's
  // modules (fs, crypto, perf_hooks) with `require`.
  const script = new Script(`(function (module, exports, require) {${source}\n})`, { filename: path, ...(cachedData ? { cachedData } : {}) });
  const cached = cachedData !== undefined && !script.cachedDataRejected;
  const module = { exports: {} as { V86?: typeof V86Class } };
  (script.runInThisContext() as (module: object, exports: object, require: NodeJS.Require) => void).call(module.exports, module, module.exports, createRequire(path));
  if (typeof module.exports.V86 !== "function") throw new Error(`${path} did not define V86: is the v86 package whole?`);
  let kept = cached;
  return {
    V86: module.exports.V86,
    cached,
    keepCache: () => {
      if (kept) return;
      kept = true;
      try {
        ensurePrivateDir(cacheFolder, "code cache folder");
        writePrivateFileAtomic(cachePath, script.createCachedData());
        // The caches of other v86 builds, Node versions or flags are not used again.
        for (const name of readdirSync(cacheFolder)) {
          if (/^libv86-[0-9a-f]+\.cache$/.test(name) && join(cacheFolder, name) !== cachePath) rmSync(join(cacheFolder, name), { force: true });
        }
      } catch {
        // an unwritable cache folder: the next start compiles again
      }
    },
  };
}
