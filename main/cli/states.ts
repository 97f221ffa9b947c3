// The CLI's commands on a guest's saved states: `unmachine suspend NAME` and `poweroff NAME`
// (a running guest through its run's control socket), and `unmachine snapshot NAME [save|
// restore|rm TAG]`. A stopped guest's states are changed here directly (main/state/guest-states.ts).

import { parseArgs } from "node:util";
import type { GuestLibrary } from "../guests/library.js";
import type { DiskRole } from "../../core/guest/launch-plan.js";
import { GuestStates, SnapshotError } from "../state/guest-states.js";
import { overlayHolder } from "../disk/overlay.js";
import { runningNames, sendControl, type ControlRequest } from "./control.js";
import { UsageError } from "./errors.js";

async function running(name: string): Promise<boolean> {
  return (await runningNames()).includes(name);
}

async function ask(name: string, request: ControlRequest): Promise<string> {
  const reply = await sendControl(name, request);
  if (!reply.ok) throw new UsageError(`${name}: ${reply.error}`);
  return reply.message;
}

/** Each served disk's overlay of a library guest (a built-in guest has none). */
function overlays(library: GuestLibrary, name: string): Partial<Record<DiskRole, string>> {
  if (library.isBuiltIn(name)) return {};
  const out: Partial<Record<DiskRole, string>> = {};
  for (const [role, disk] of Object.entries(library.resolve(name).disks) as [DiskRole, { overlay: string }][]) out[role] = disk.overlay;
  return out;
}

/**
 * Refuses while another process (a shell's tab, a run without its control socket) has one of
 * the guest's disks open: its overlay would change under it, or be kept ahead of its state.
 */
function notHeld(name: string, disks: Partial<Record<DiskRole, string>>): void {
  for (const overlay of Object.values(disks)) {
    const pid = overlay === undefined ? undefined : overlayHolder(overlay);
    if (pid !== undefined) throw new UsageError(`${name} is running (process ${pid}); stop it first`);
  }
}

function oneName(args: string[], command: string): string {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError(`${command} takes one guest name`);
  return positionals[0]!;
}

export async function suspendCommand(library: GuestLibrary, args: string[]): Promise<number> {
  const name = oneName(args, "suspend");
  library.profile(name);
  if (!(await running(name))) throw new UsageError(`${name} is not running${GuestStates.of(name).suspended ? " (it is suspended already)" : ""}`);
  process.stderr.write(`${name}: ${await ask(name, { type: "suspend" })}\n`);
  return 0;
}

export async function poweroffCommand(library: GuestLibrary, args: string[]): Promise<number> {
  const name = oneName(args, "poweroff");
  library.profile(name);
  if (await running(name)) {
    process.stderr.write(`${name}: ${await ask(name, { type: "poweroff" })}\n`);
    return 0;
  }
  const had = GuestStates.of(name).discard();
  process.stderr.write(had ? `${name}: powered off (its saved state was discarded)\n` : `${name} is off already (it has no saved state)\n`);
  return 0;
}

function when(ms: number): string {
  return ms > 0 ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "unreadable";
}

export async function snapshotCommand(library: GuestLibrary, args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const [name, action, tag, ...extra] = positionals;
  if (name === undefined || extra.length > 0 || (action !== undefined && tag === undefined)) {
    throw new UsageError("snapshot takes a guest name, then nothing (list), or save|restore|rm and a snapshot name");
  }
  library.profile(name);
  const states = GuestStates.of(name);
  try {
    if (action === undefined) {
      for (const s of states.snapshots()) process.stdout.write(`${s.tag}  ${when(s.savedAt)}  ${(s.bytes / 1024 / 1024).toFixed(1)} MiB\n`);
      return 0;
    }
    if (action === "save") {
      if (await running(name)) process.stderr.write(`${name}: ${await ask(name, { type: "snapshot", tag: tag! })}\n`);
      else {
        const disks = overlays(library, name);
        notHeld(name, disks);
        states.snapshotSuspended(tag!, disks);
        process.stderr.write(`${name}: snapshot "${tag}" saved\n`);
      }
      return 0;
    }
    if (action === "restore") {
      if (await running(name)) throw new UsageError(`${name} is running; suspend or power it off before you restore a snapshot`);
      const disks = overlays(library, name);
      notHeld(name, disks);
      states.restoreSnapshot(tag!, disks);
      process.stderr.write(`${name}: snapshot "${tag}" restored; the next start resumes it\n`);
      return 0;
    }
    if (action === "rm") {
      states.removeSnapshot(tag!);
      process.stderr.write(`${name}: snapshot "${tag}" removed\n`);
      return 0;
    }
  } catch (error) {
    if (error instanceof SnapshotError) throw new UsageError(error.message);
    throw error;
  }
  throw new UsageError(`snapshot: expected save, restore or rm, got "${action}"`);
}
