#!/usr/bin/env node
// Copies the built firmware and default guest from the cache folder into
// build/resources/unmachine, for electron-builder's extraResources.
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const cache = process.env.UNMACHINE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "unmachine");
const target = join("build", "resources", "unmachine");
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
for (const part of ["firmware", join("guests", "tiny")]) {
  const from = join(cache, part);
  if (!existsSync(from)) {
    console.error(`stage-resources: ${from} is missing; run: npm run guest`);
    process.exit(1);
  }
  cpSync(from, join(target, part), { recursive: true });
}
console.error(`stage-resources: staged ${target}`);
