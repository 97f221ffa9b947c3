// A running `unmachine run` takes commands from other terminals (`unmachine media NAME ...`)
// on a Unix socket in a folder only this user can enter: <runtime dir>/unmachine-<uid>/NAME.sock.
// One JSON line in, one JSON line out. The running side re-checks everything it is sent.

import { createServer, connect, type Server } from "node:net";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import type { Disposable } from "../../core/disposable.js";
import { isSwapDrive, checkFitsDrive, type SwapDrive } from "../../core/media/drives.js";
import { openImage } from "../media/image-file.js";
import type { HeadlessGuest } from "../headless/runner.js";

export type ControlRequest = { type: "insert"; drive: SwapDrive; path: string } | { type: "eject"; drive: SwapDrive };
export type ControlReply = { ok: true; message: string } | { ok: false; error: string; usage?: boolean };

export function controlDir(): string {
  const uid = process.getuid?.() ?? 0;
  return join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), `unmachine-${uid}`);
}

function parseRequest(line: string): ControlRequest {
  const r = JSON.parse(line) as Record<string, unknown>;
  if (!isSwapDrive(r.drive)) throw new Error("drive must be fda or cdrom");
  if (r.type === "eject") return { type: "eject", drive: r.drive };
  if (r.type === "insert" && typeof r.path === "string" && isAbsolute(r.path)) return { type: "insert", drive: r.drive, path: r.path };
  throw new Error("unknown request");
}

async function handle(guest: HeadlessGuest, request: ControlRequest): Promise<ControlReply> {
  if (request.type === "eject") {
    await guest.eject(request.drive);
    return { ok: true, message: `ejected the ${request.drive === "fda" ? "floppy" : "CD"}` };
  }
  let image;
  try {
    image = openImage(request.path);
    checkFitsDrive(image.detected, request.drive, request.path);
  } catch (error) {
    return { ok: false, error: (error as Error).message, usage: true };
  }
  await guest.insert(request.drive, image.contents ?? readFileSync(request.path));
  return { ok: true, message: `inserted ${request.path}: ${image.detected.description}` };
}

/** Listens for commands for this guest; returns the name it is reachable by. */
export async function serveControl(name: string, guest: HeadlessGuest): Promise<{ name: string } & Disposable> {
  const dir = controlDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  let server: Server | undefined;
  let chosen = name;
  for (let n = 1; !server; n++) {
    chosen = n === 1 ? name : `${name}-${n}`;
    const path = join(dir, `${chosen}.sock`);
    if (existsSync(path)) {
      if (await reachable(path)) continue;
      unlinkSync(path); // left by a run that ended without cleaning up
    }
    server = createServer((socket) => {
      socket.setEncoding("utf8");
      let buffer = "";
      socket.on("error", () => socket.destroy());
      socket.on("data", (chunk: string) => {
        buffer += chunk;
        if (buffer.length > 64 * 1024) return socket.destroy();
        const end = buffer.indexOf("\n");
        if (end < 0) return;
        let request: ControlRequest;
        try {
          request = parseRequest(buffer.slice(0, end));
        } catch (error) {
          socket.end(`${JSON.stringify({ ok: false, error: (error as Error).message } satisfies ControlReply)}\n`);
          return;
        }
        handle(guest, request).then(
          (reply) => socket.end(`${JSON.stringify(reply)}\n`),
          (error: unknown) => socket.end(`${JSON.stringify({ ok: false, error: (error as Error).message } satisfies ControlReply)}\n`),
        );
      });
    });
    await new Promise<void>((resolveListen, reject) => {
      server!.once("error", reject);
      server!.listen(path, () => resolveListen());
    });
  }
  const path = join(dir, `${chosen}.sock`);
  return {
    name: chosen,
    dispose() {
      server?.close();
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}

function reachable(path: string): Promise<boolean> {
  return new Promise((resolveReach) => {
    const socket = connect(path, () => {
      socket.destroy();
      resolveReach(true);
    });
    socket.on("error", () => resolveReach(false));
  });
}

/** The names of running guests that take commands. */
export function runningNames(): string[] {
  const dir = controlDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith(".sock")).map((f) => f.slice(0, -5)).sort();
}

export class ControlError extends Error {
  override name = "ControlError";
}

/** Sends one command to a running guest. */
export function sendControl(name: string, request: ControlRequest): Promise<ControlReply> {
  const path = join(controlDir(), `${name}.sock`);
  return new Promise((resolveReply, reject) => {
    const socket = connect(path, () => socket.write(`${JSON.stringify(request)}\n`));
    let reply = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (reply += chunk));
    socket.on("end", () => {
      try {
        resolveReply(JSON.parse(reply) as ControlReply);
      } catch {
        reject(new ControlError(`guest "${name}" gave no answer`));
      }
    });
    socket.on("error", () => {
      const running = runningNames();
      reject(new ControlError(`no running guest named "${name}" (running: ${running.join(", ") || "none"})`));
    });
  });
}
