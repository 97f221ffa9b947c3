// The library commands of `unmachine`: add, set, list, rm, reset. Each checks its input first and
// changes the data folder only when everything is right (main/guests/library-edit.ts); a refusal
// is one line on stderr and exit status 2, with the library as it was.

import { parseArgs } from "node:util";
import { checkMemory } from "../../core/guest/profile.js";
import { FAMILY_LIST, isFamily } from "../../core/guest/families.js";
import type { GuestLibrary } from "../guests/library.js";
import { addGuest, editGuest, exportGuest, parsePairs, removableGuest, removeGuest, resetGuest, type AddOptions } from "../guests/library-edit.js";
import { resolve } from "node:path";
import { UsageError } from "./errors.js";
import { runningNames } from "./control.js";
import { GuestStates } from "../state/guest-states.js";

function size(bytes: number | undefined): string {
  if (bytes === undefined) return "-";
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

async function notRunning(name: string, verb: string): Promise<void> {
  if ((await runningNames()).includes(name)) throw new UsageError(`${name} is running; stop it before you ${verb} it`);
}

export function addCommand(library: GuestLibrary, args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      memory: { type: "string" },
      prompt: { type: "string" },
      initrd: { type: "string" },
      family: { type: "string" },
      title: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("add takes one image file (a disk, CD or floppy image, or a Linux kernel)");
  const options: AddOptions = {};
  if (values.name !== undefined) options.name = values.name;
  if (values.memory !== undefined) {
    const n = Number(values.memory);
    if (values.memory.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--memory must be a number, got "${values.memory}"`);
    options.memory = checkMemory(n, "--memory");
  }
  if (values.prompt !== undefined) options.prompt = values.prompt;
  if (values.initrd !== undefined) options.initrd = values.initrd;
  if (values.title !== undefined) options.title = values.title;
  if (values.family !== undefined) {
    if (!isFamily(values.family)) throw new UsageError(`--family: expected one of ${FAMILY_LIST}, got "${values.family}"`);
    options.family = values.family;
  }
  const added = addGuest(library, positionals[0]!, options);
  process.stderr.write(`${added.name}: ${added.description}, family ${added.family}\n`);
  process.stdout.write(`${added.name}\n`);
  return 0;
}

export function setCommand(library: GuestLibrary, args: string[]): number {
  const [name, ...pairs] = args;
  if (name === undefined || name.startsWith("-")) throw new UsageError("set takes a guest name and key=value pairs (see: unmachine --help)");
  library.profile(name);
  editGuest(library, name, parsePairs(pairs));
  return 0;
}

export async function listCommand(library: GuestLibrary, args: string[]): Promise<number> {
  parseArgs({ args, options: {} });
  const runs = await runningNames();
  // A run is named after its guest, or its guest's name and a number when it runs more than once.
  const running = new Set(runs.map((run) => run.replace(/-\d+$/, "")).concat(runs));
  const rows = library.summaries().map((g) => [
    g.name,
    g.family,
    `${g.memory} MiB`,
    size(g.diskUsed),
    size(g.diskSize),
    running.has(g.name) ? "running" : !g.ready ? (g.builtIn ? "not built" : "missing image") : GuestStates.of(g.name).suspended ? "suspended" : "ready",
    g.title,
  ]);
  const header = ["NAME", "FAMILY", "RAM", "CHANGES", "DISK", "STATE", "TITLE"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()}\n`);
  // Every run by the name `unmachine media` and `balloon` take, one-off images included.
  if (runs.length > 0) process.stdout.write(`running: ${runs.join(", ")}\n`);
  return 0;
}

export async function rmCommand(library: GuestLibrary, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { yes: { type: "boolean", default: false } } });
  if (positionals.length !== 1) throw new UsageError("rm takes one guest name");
  const name = positionals[0]!;
  // Not by its profile: a guest whose guest.json the user broke can still be removed.
  removableGuest(library, name);
  await notRunning(name, "remove");
  const kept = removeGuest(library, name, values.yes);
  process.stderr.write(`${name}: removed (its image was left as it is)\n`);
  if (kept.length > 0) process.stderr.write(`${name}: kept ${library.user.folder(name)}: it holds files that are not the guest's (${kept.join(", ")})\n`);
  return 0;
}

export async function exportCommand(library: GuestLibrary, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { force: { type: "boolean", default: false } } });
  if (positionals.length !== 2) throw new UsageError("export takes a guest name and the image file to write");
  const [name, file] = positionals as [string, string];
  library.profile(name);
  await notRunning(name, "export");
  const out = exportGuest(library, name, resolve(file), values.force);
  process.stderr.write(`${name}: its disk with its changes was written to ${out}\n`);
  return 0;
}

export async function resetCommand(library: GuestLibrary, args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError("reset takes one guest name");
  const name = positionals[0]!;
  library.profile(name);
  await notRunning(name, "reset");
  resetGuest(library, name);
  process.stderr.write(`${name}: its changes were discarded\n`);
  return 0;
}
