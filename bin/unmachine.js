#!/usr/bin/env node
// The `unmachine` command: runs the compiled CLI (npm run build makes dist/).
import { existsSync } from "node:fs";

const entry = new URL("../dist/main/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("unmachine: not built yet; run: npm run build\n");
  process.exit(2);
}
const { cli } = await import(entry.href);
await cli(process.argv.slice(2));
