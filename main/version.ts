// The app's version, read once from package.json.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { appRoot } from "./paths.js";

export const appVersion: string = (JSON.parse(readFileSync(join(appRoot, "package.json"), "utf8")) as { version: string }).version;
