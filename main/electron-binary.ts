// Where Electron's binary is, if it is installed, found without loading the `electron`
// package (which would try to download the binary when it is missing). The binary comes from
// outside the npm registry, so on machines that reach only the registry it is absent.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { appRoot } from "./paths.js";

export const ELECTRON_ABSENT_REASON =
  "Electron's binary is not installed: it is downloaded from outside the npm registry, which this machine cannot reach";

export function installedElectron(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = join(appRoot, "node_modules", "electron");
  const pathFile = join(dir, "path.txt");
  const name = existsSync(pathFile) ? readFileSync(pathFile, "utf8").trim() : undefined;
  const binary = env.ELECTRON_OVERRIDE_DIST_PATH
    ? join(env.ELECTRON_OVERRIDE_DIST_PATH, name ?? "electron")
    : name
      ? join(dir, "dist", name)
      : undefined;
  return binary && existsSync(binary) ? binary : undefined;
}
