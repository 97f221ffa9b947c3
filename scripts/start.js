#!/usr/bin/env node
// `npm start`: installs missing Debian packages (as root), builds, then runs the Electron app
// when its binary works; otherwise, or when Electron dies at start (main/electron-start.ts
// decides and says why), the web shell, which opens Chromium in app mode when a display exists
// and otherwise prints the page's address. Exits non-zero when the app failed or was killed.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: "inherit", ...opts }).status ?? 1;

if (run("bash", ["scripts/system-deps.sh", "start"]) !== 0) process.exit(1);
if (run("npm", ["run", "build", "--silent"]) !== 0) process.exit(1);

const { installedElectron } = await import("../dist/main/electron-binary.js");
const { decideAfterExit, signalExitCode } = await import("../dist/main/electron-start.js");
let electron = installedElectron();
if (!electron && existsSync("node_modules/electron/install.js")) {
  // npm does not run Electron's download script by itself; try it once, quietly.
  const fetched = spawnSync(process.execPath, ["node_modules/electron/install.js"], { stdio: "ignore", timeout: 180_000 });
  if (fetched.status === 0) electron = installedElectron();
}
const display = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);

/** Runs a child until it exits, passing Ctrl-C and kill on to it. */
function supervise(child, onExit) {
  const forward = (signal) => child.kill(signal);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, forward);
  child.on("exit", (code, signal) => {
    for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) process.off(s, forward);
    onExit(code, signal);
  });
}

function webShell(why) {
  if (why) console.error(why);
  const child = spawn(process.execPath, ["bin/unmachine.js", "serve"], { stdio: "inherit" });
  supervise(child, (code, signal) => process.exit(signal ? signalExitCode(signal) : (code ?? 1)));
}

if (electron && display) {
  const args = ["."];
  if (process.getuid?.() === 0) args.unshift("--no-sandbox"); // Chromium refuses root otherwise
  const started = Date.now();
  const child = spawn(electron, args, { stdio: ["inherit", "inherit", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    process.stderr.write(chunk);
    stderr = (stderr + chunk.toString()).slice(-16_384);
  });
  supervise(child, (code, signal) => {
    const decision = decideAfterExit({ code, signal, stderr, livedMs: Date.now() - started, chromeSandbox: join(dirname(electron), "chrome-sandbox") });
    if (decision.fallback) webShell(decision.message);
    else {
      if (decision.message) console.error(decision.message);
      process.exit(decision.exitCode);
    }
  });
} else {
  webShell(`Starting the web shell: ${!electron ? "the Electron binary is not installed (it is downloaded from outside the npm registry)" : "there is no display"}.`);
}
