#!/usr/bin/env node
// The `unmachine` command: runs the compiled CLI (npm run build makes dist/).
import { existsSync } from "node:fs";

const entry = new URL("../dist/main/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("unmachine: not built yet; run: npm run build\n");
  process.exit(2);
}
// A run's emulator worker starts first, so v86 loads on the other core while the CLI does.
if (process.argv[2] === "run") (await import(new URL("../dist/main/headless/worker-start.js", import.meta.url).href)).startWorkerEarly();
const { cli } = await import(entry.href);
await cli(process.argv.slice(2));
