// The real guest agent (guests/agent/umagent.c) compiled for this host with plain cc and run on
// a pseudo-terminal as its port, the way it runs on /dev/hvc0, with an AgentSession on the
// other side. For the host-side agent tests.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ReadStream } from "node:tty";
import type { Socket } from "node:net";
import { toDisposable } from "../../core/disposable.js";
import { AgentSession, type AgentSessionOptions, type AgentTransport } from "../../core/agent/session.js";

const source = resolve(import.meta.dirname, "../../guests/agent/umagent.c");

/** Why the agent cannot be built here, or undefined. */
export function compilerProblem(): string | undefined {
  const probe = spawnSync("cc", ["--version"], { encoding: "utf8" });
  if (probe.error) return `no C compiler: running "cc" failed (${probe.error.message}); install gcc to run this test`;
  return undefined;
}

interface OpenedPty {
  readonly ptsName: string;
  readonly master: Socket;
  readonly slave: Socket;
}

export interface HostAgent {
  readonly dir: string;
  readonly agent: ChildProcess;
  readonly transport: AgentTransport;
  readonly session: AgentSession;
  /** What the agent wrote to stderr so far. */
  log(): string;
  dispose(): void;
}

/**
 * Compiles the agent (with `defines`, e.g. X_SOCKET), runs it with `args` before its port, and
 * waits for its hello; `listen` gets the session before the agent starts.
 */
export async function startHostAgent(
  options: { defines?: string[]; args?: (dir: string) => string[]; session?: AgentSessionOptions; listen?: (session: AgentSession) => void } = {},
): Promise<HostAgent> {
  const dir = mkdtempSync(join(tmpdir(), "unmachine-umagent-"));
  const binary = join(dir, "umagent");
  const defines = (options.defines ?? []).map((d) => `-D${d}`);
  const cc = spawnSync("cc", ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", ...defines, "-o", binary, source], { encoding: "utf8" });
  if (cc.status !== 0) throw new Error(`cc failed to compile ${source}:\n${cc.stderr}`);

  const require = createRequire(import.meta.url);
  const nodePty = require("node-pty") as { open(options: { cols: number; rows: number; encoding: null }): OpenedPty };
  const pty = nodePty.open({ cols: 80, rows: 25, encoding: null });
  // Our own unread slave descriptor, raw from the start; node-pty's reader would steal bytes.
  const held = new ReadStream(openSync(pty.ptsName, constants.O_RDWR | constants.O_NOCTTY));
  held.setRawMode(true);
  pty.slave.destroy();
  pty.master.on("error", () => {});
  const transport: AgentTransport = {
    send: (bytes) => pty.master.write(bytes),
    onData: (listener) => {
      const onData = (data: Buffer): void => listener(new Uint8Array(data.buffer, data.byteOffset, data.length));
      pty.master.on("data", onData);
      return toDisposable(() => pty.master.off("data", onData));
    },
  };
  const session = new AgentSession(transport, { software: "unmachine test", ...options.session });
  options.listen?.(session);

  let log = "";
  const agent = spawn(binary, [...(options.args?.(dir) ?? []), pty.ptsName], { stdio: ["ignore", "ignore", "pipe"] });
  agent.stderr!.on("data", (data: Buffer) => (log += data.toString()));
  const dispose = (): void => {
    session.dispose();
    if (agent.pid !== undefined && agent.exitCode === null) agent.kill("SIGTERM");
    held.destroy();
    pty.master.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await session.whenReady(10_000);
  } catch (error) {
    dispose();
    throw new Error(`${(error as Error).message}\nagent log:\n${log}`);
  }
  return { dir, agent, transport, session, log: () => log, dispose };
}
