// The CLI's commands on a running guest's windows and apps, through its run's control socket
// and the guest's agent: `unmachine windows NAME [--json]` (one line per top-level window, the
// topmost first), `unmachine apps NAME [--json]`, `unmachine launch NAME APP`. The answers are
// re-checked here: they come from another process, and their content from the guest.

import { parseArgs } from "node:util";
import type { GuestWindow } from "../../core/agent/messages.js";
import { runningNames, sendControl, type ControlApp, type ControlLaunched, type ControlRequest } from "./control.js";
import { UsageError } from "./errors.js";

async function runningGuest(name: string): Promise<void> {
  const running = await runningNames();
  if (!running.includes(name)) throw new UsageError(`${name} is not running (running: ${running.join(", ") || "none"})`);
}

async function ask(name: string, request: ControlRequest): Promise<unknown> {
  const reply = await sendControl(name, request);
  if (!reply.ok) throw new Error(`${name}: ${reply.error}`);
  return reply.data;
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

function isRect(v: unknown): boolean {
  const r = v as Record<string, unknown> | null;
  return typeof r === "object" && r !== null && isInt(r.x) && isInt(r.y) && isInt(r.width) && isInt(r.height);
}

function isWindow(v: unknown): v is GuestWindow {
  const w = v as Record<string, unknown> | null;
  return isRect(w) && isInt(w!.id) && typeof w!.title === "string" && typeof w!.minimized === "boolean" && typeof w!.focused === "boolean" && isRect(w!.frame);
}

function checked<T>(data: unknown, test: (v: unknown) => boolean, what: string): T[] {
  if (!Array.isArray(data) || !data.every(test)) throw new Error(`the run answered with no list of ${what}`);
  return data as T[];
}

/** A title as one line of a terminal: control characters shown as escapes. */
function printable(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/** `0x00800017  226x320+10-5  focused  Calculator`: X's geometry notation. */
export function windowLine(w: GuestWindow): string {
  const flags = [w.focused ? "focused" : "", w.minimized ? "minimized" : ""].filter(Boolean).join(",") || "-";
  const id = `0x${w.id.toString(16).padStart(8, "0")}`;
  const offset = (n: number): string => (n < 0 ? `${n}` : `+${n}`);
  return `${id}  ${`${w.width}x${w.height}${offset(w.x)}${offset(w.y)}`.padEnd(16)} ${flags.padEnd(17)} ${printable(w.title)}`;
}

function nameAndJson(args: string[], command: string): { name: string; json: boolean } {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: "boolean", default: false } } });
  if (positionals.length !== 1) throw new UsageError(`${command} takes the name of a running guest (see: unmachine list)`);
  return { name: positionals[0]!, json: values.json };
}

export async function windowsCommand(args: string[]): Promise<number> {
  const { name, json } = nameAndJson(args, "windows");
  await runningGuest(name);
  const windows = checked<GuestWindow>(await ask(name, { type: "windows" }), isWindow, "windows");
  if (json) process.stdout.write(`${JSON.stringify(windows, null, 2)}\n`);
  else for (const w of [...windows].reverse()) process.stdout.write(`${windowLine(w)}\n`);
  if (!json && windows.length === 0) process.stderr.write(`${name}: no windows (none shown yet, or the guest has no X display)\n`);
  return 0;
}

function isApp(v: unknown): boolean {
  const a = v as Record<string, unknown> | null;
  return typeof a === "object" && a !== null && typeof a.id === "string" && typeof a.name === "string" && typeof a.exec === "string" && (a.iconPng === undefined || typeof a.iconPng === "string");
}

export async function appsCommand(args: string[]): Promise<number> {
  const { name, json } = nameAndJson(args, "apps");
  await runningGuest(name);
  const apps = checked<ControlApp>(await ask(name, { type: "apps" }), isApp, "apps");
  if (json) process.stdout.write(`${JSON.stringify(apps, null, 2)}\n`);
  else {
    const width = Math.max(0, ...apps.map((a) => a.id.length));
    for (const a of apps) {
      const icon = a.iconPng === undefined ? "" : `  (icon, ${Buffer.from(a.iconPng, "base64").length} bytes PNG)`;
      process.stdout.write(`${a.id.padEnd(width)}  ${printable(a.name)}: ${printable(a.exec)}${icon}\n`);
    }
  }
  return 0;
}

export async function launchCommand(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 2) throw new UsageError("launch takes the name of a running guest and an app (see: unmachine apps NAME)");
  const [name, app] = positionals as [string, string];
  await runningGuest(name);
  const data = (await ask(name, { type: "launch", app })) as ControlLaunched | undefined;
  if (typeof data !== "object" || data === null || !isInt(data.window) || !isInt(data.pid)) throw new Error(`${name}: the run answered the launch with no window`);
  if (data.listed !== undefined && isWindow(data.listed)) process.stdout.write(`${windowLine(data.listed)}\n`);
  else process.stdout.write(`0x${data.window.toString(16).padStart(8, "0")}\n`);
  process.stderr.write(`${name}: launched ${app} (pid ${data.pid})\n`);
  return 0;
}
