#!/usr/bin/env node
// The `unmachine` command: runs the bundled CLI (npm run build makes dist/cli, rolldown.config.mjs).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("unmachine: not built yet; run: npm run build\n");
  process.exit(2);
}
// A run's emulator worker starts first, so v86 loads on the other core while the CLI does.
if (process.argv[2] === "run") (await import(new URL("../dist/cli/worker-start.js", import.meta.url).href)).startWorkerEarly();
const { cli } = await import(entry.href);
await cli(process.argv.slice(2));
