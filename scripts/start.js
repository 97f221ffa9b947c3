#!/usr/bin/env node
// `npm start`: installs missing Debian packages (as root), builds, then runs the Electron app
// when its binary works; otherwise the web shell, which opens Chromium in app mode when a
// display exists and otherwise prints the page's address. The first run builds `tiny`.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: "inherit", ...opts }).status ?? 1;

if (run("bash", ["scripts/system-deps.sh", "start"]) !== 0) process.exit(1);
if (run("npm", ["run", "build", "--silent"]) !== 0) process.exit(1);

const { installedElectron } = await import("../dist/main/electron-binary.js");
let electron = installedElectron();
if (!electron && existsSync("node_modules/electron/install.js")) {
  // npm does not run Electron's download script by itself; try it once, quietly.
  const fetched = spawnSync(process.execPath, ["node_modules/electron/install.js"], { stdio: "ignore", timeout: 180_000 });
  if (fetched.status === 0) electron = installedElectron();
}
const display = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);

if (electron && display) {
  const args = ["."];
  if (process.getuid?.() === 0) args.unshift("--no-sandbox"); // Chromium refuses root otherwise
  const child = spawn(electron, args, { stdio: "inherit" });
  child.on("exit", (code) => process.exit(code ?? 0));
} else {
  const why = !electron
    ? "the Electron binary is not installed (it is downloaded from outside the npm registry)"
    : "there is no display";
  console.error(`Starting the web shell: ${why}.`);
  const child = spawn(process.execPath, ["bin/unmachine.js", "serve"], { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code) => process.exit(code ?? 0));
}
