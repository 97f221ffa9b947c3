// The benchmarks' web shell: `unmachine serve --no-open` as a child process with its own data
// folder, resolved once it prints its tokened address. One start for every benchmark that drives
// the page, so they measure the same shell the same way.
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");

/** Starts the web shell; resolves with its process and its address (with the token). */
export async function startWebShell(env = {}) {
  const server = spawn(process.execPath, [join(root, "bin/unmachine.js"), "serve", "--no-open"], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolveUrl, reject) => {
    let out = "";
    server.on("exit", (code) => reject(new Error(`the web shell ended (${code})`)));
    server.stdout.on("data", (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+\/\?token=\w+/.exec(out);
      if (m) resolveUrl(m[0]);
    });
  });
  return { server, url };
}

/**
 * Ends the web shell and resolves once its process has exited: a shell that ends saves its
 * guests' states, and the next contender's timing must not share the host with that.
 */
export function stopWebShell(server, graceMs = 60_000) {
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => server.kill("SIGKILL"), graceMs);
    server.once("exit", () => {
      clearTimeout(timer);
      resolveExit();
    });
    server.kill("SIGTERM");
  });
}
