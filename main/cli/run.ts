// `unmachine run`: boots a library guest or an image file in a headless worker, then either
// puts its serial console on this terminal, on a host PTY (--pty), or waits for text (--until)
// or runs one command (--exec). Every end is one line and an exit status, never a trace.

import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ForwardSetting, ShareSetting } from "../../core/guest/settings.js";
import { SettingsStore } from "../guests/settings-store.js";
import { dataDir } from "../paths.js";
import { UsageError } from "./errors.js";
import { buildFatDrives, FatDriveError } from "../fat/fat-drive.js";
import { basename } from "node:path";
import { GuestLibrary, GuestNotFoundError } from "../guests/library.js";
import { fileSource, firmwareSources, libraryPlan } from "../guests/launch.js";
import { ensureGuestBuilt } from "../guests/builder.js";
import { openImage } from "../media/image-file.js";
import { ImageError } from "../../core/media/detect.js";
import { launchPlan, LaunchError, type LaunchOverrides, type LaunchPlan, type MediaSource } from "../../core/guest/launch-plan.js";
import { HeadlessGuest, GuestFaultError, GuestStoppedError, GuestTimeoutError } from "../headless/runner.js";
import { openConsolePty } from "./pty.js";
import { ControlError, serveControl } from "./control.js";
import { checkShares } from "../host/share-policy.js";
import { hostServiceSet } from "../host/services.js";
import { overlayHolder } from "../disk/overlay.js";
import { checkBudget } from "../../core/guest/memory-budget.js";
import { MiB } from "../../core/v86/options.js";
import { freemem, totalmem } from "node:os";

/** How long after the shell prompt the agent may take to say hello before --exec uses the shell. */
const AGENT_GRACE_MS = 10_000;

export interface RunFlags {
  target: string;
  memory?: number;
  /** A speed cap for this run, in percent of one host core. */
  cpuPercent?: number;
  headless: boolean;
  pty: boolean;
  until?: RegExp;
  exec?: string;
  timeoutMs: number;
  /** Folders shared for this run, besides those saved in the guest's settings. */
  shares?: ShareSetting[];
  /** The user confirmed (--share-sensitive) that --share may give the guest a sensitive folder. */
  shareSensitive?: boolean;
  rootFolder?: string;
  /** A host folder attached as a second hard disk, FAT with long names. */
  fatDrive?: string;
  allowHost?: boolean;
  forwards?: ForwardSetting[];
}

const QUIT_KEY = 0x1d; // Ctrl-]

/** This run's flags as launch-plan overrides. */
function overridesOf(flags: RunFlags): LaunchOverrides {
  const overrides: LaunchOverrides = {};
  if (flags.memory !== undefined) overrides.memory = flags.memory;
  if (flags.cpuPercent !== undefined) overrides.cpuPercent = flags.cpuPercent;
  // --share-sensitive is the user's confirmation for each folder given with --share.
  if (flags.shares) overrides.shares = flags.shareSensitive ? flags.shares.map((share) => ({ ...share, confirmedSensitive: true })) : flags.shares;
  if (flags.rootFolder !== undefined) overrides.rootFolder = flags.rootFolder;
  if (flags.allowHost) overrides.allowHost = true;
  if (flags.forwards) overrides.forwards = flags.forwards;
  if (flags.fatDrive !== undefined) overrides.fatDrive = flags.fatDrive;
  return overrides;
}

/** The plan of a library guest or an image file, with the guest's saved settings read once. */
async function planFor(library: GuestLibrary, flags: RunFlags): Promise<LaunchPlan> {
  const { target } = flags;
  if (library.has(target) && !existsSync(target)) {
    await ensureGuestBuilt(library, target);
    const profile = library.profile(target);
    const settings = new SettingsStore(dataDir()).load(profile.name);
    // Served over 9P or offered as a FAT drive, a saved sensitive folder needs its confirmation.
    checkShares(settings.shares, (s) => `${profile.name}: saved share "${s.tag}"`, "Confirm it in the app, or remove it.");
    return libraryPlan(library, target, settings, overridesOf(flags));
  }
  if (!existsSync(target) && /^[a-z0-9-]+$/.test(target)) {
    const known = library.profiles().map((p) => p.name).join(", ");
    throw new GuestNotFoundError(`no guest named "${target}" and no such file (known guests: ${known || "none"})`);
  }
  const image = openImage(target);
  const role = image.detected.role;
  if (role === undefined || role === "initial_state") {
    throw new ImageError(`${target}: ${image.detected.description} cannot be booted on its own yet`);
  }
  // Firmware comes with the default guest's build.
  if (!library.firmware()) await ensureGuestBuilt(library, "tiny");
  let source: MediaSource = image.contents ? { kind: "bytes", bytes: image.contents } : fileSource(image.path);
  let oneOff: string | undefined;
  if (role === "hda" && !image.contents) {
    // Served by the host like a library guest's disk, its writes kept aside and dropped at the end.
    oneOff = mkdtempSync(join(tmpdir(), "unmachine-run-"));
    const size = Math.ceil(image.size / SECTOR) * SECTOR;
    source = { kind: "disk", disk: { base: image.path, overlay: join(oneOff, "disk.overlay"), size, temporary: true } };
  }
  const plan = buildFatDrives(launchPlan({ kind: "image", name: basename(target), role, image: source }, firmwareSources(library.firmware()!), overridesOf(flags)));
  process.stderr.write(`${basename(target)}: ${image.detected.description}\n`);
  if (oneOff) {
    const folder = oneOff;
    process.once("exit", () => rmSync(folder, { recursive: true, force: true }));
    process.stderr.write(`${basename(target)}: a one-off run: the guest's changes to this disk go to a temporary overlay and are dropped when it ends (add it to the library to keep them)\n`);
  }
  return plan;
}

const SECTOR = 512;

/** Each shared folder must be there and be a folder before the guest is started. */
function checkShareFolders(plan: LaunchPlan): void {
  const files = plan.services.p9;
  if (files?.kind !== "shares") return;
  for (const share of files.shares) {
    if (!existsSync(share.hostPath)) throw new UsageError(`share "${share.tag}": ${share.hostPath} does not exist`);
    if (!statSync(share.hostPath).isDirectory()) throw new UsageError(`share "${share.tag}": ${share.hostPath} is not a folder`);
  }
}

/** A hard disk has one writer: a guest another process runs (a CLI run, a shell's tab) is refused up front. */
function checkDisksFree(plan: LaunchPlan): void {
  for (const disk of Object.values(plan.services.disks ?? {})) {
    const pid = overlayHolder(disk.overlay);
    if (pid !== undefined) throw new UsageError(`${plan.guest}: its disk is in use by another running guest (process ${pid}); stop that one first`);
  }
}

function describeEnd(name: string, error: unknown): string {
  if (error instanceof GuestFaultError) return `${name}: the emulator stopped on a fault: ${error.message}`;
  if (error instanceof GuestTimeoutError || error instanceof GuestStoppedError) return `${name}: ${error.message}`;
  return `${name}: ${error instanceof Error ? error.message : String(error)}`;
}

export async function runCommand(library: GuestLibrary, flags: RunFlags): Promise<number> {
  if (!flags.shareSensitive) checkShares(flags.shares ?? [], () => "--share", "Add --share-sensitive to share it anyway.");
  let plan: LaunchPlan;
  try {
    plan = await planFor(library, flags);
  } catch (error) {
    if (error instanceof LaunchError || error instanceof FatDriveError) throw new UsageError(error.message);
    throw error;
  }
  checkShareFolders(plan);
  checkDisksFree(plan);
  const budget = checkBudget({ totalMiB: totalmem() / MiB, freeMiB: freemem() / MiB }, [], { guest: plan.guest, memory: plan.machine.memory });
  if (budget.warning) process.stderr.write(`unmachine: warning: ${budget.warning}\n`);
  const target = { name: plan.guest, prompt: plan.ready.kind === "prompt" ? plan.ready.prompt : undefined };
  const services = hostServiceSet(plan, { onError: (message) => process.stderr.write(`unmachine: ${plan.guest}: ${message}\n`) });
  try {
    await services.ready;
  } catch (error) {
    services.dispose();
    throw new UsageError((error as Error).message);
  }
  const guest = new HeadlessGuest(plan, { services: services.attach });
  // Without a private control folder the guest still runs, only without media commands.
  const control = await serveControl(target.name.replace(/[^A-Za-z0-9_.-]/g, "_"), guest).catch((error: unknown) => {
    if (!(error instanceof ControlError)) throw error;
    process.stderr.write(`unmachine: ${error.message}; media commands are off for this run\n`);
    return undefined;
  });
  const mediaHint = control ? `; swap media with: unmachine media ${control.name} --insert cdrom=FILE` : "";
  const stopAndExit = async (code: number): Promise<number> => {
    control?.dispose();
    services.dispose();
    await guest.stop();
    guest.dispose();
    return code;
  };
  // Interrupted by the user: stop quietly, with the shell's status for the signal.
  let interrupted = false;
  const onSignal = (code: number) => () => {
    interrupted = true;
    void stopAndExit(code).then((c) => process.exit(c));
  };
  process.once("SIGINT", onSignal(130));
  process.once("SIGTERM", onSignal(143));
  const report = (error: unknown): void => {
    if (interrupted) return;
    process.stderr.write(`unmachine: ${describeEnd(target.name, error)}\n`);
  };

  if (flags.until) {
    try {
      const match = await guest.waitForText(flags.until, flags.timeoutMs);
      process.stdout.write(`${match}\n`);
      return await stopAndExit(0);
    } catch (error) {
      if (interrupted) return 130;
      report(error);
      const screen = guest.screen.trim() || guest.transcript.split("\n").slice(-25).join("\n");
      process.stderr.write(`--- last screen ---\n${screen}\n---\n`);
      return await stopAndExit(1);
    }
  }

  if (flags.exec !== undefined) {
    if (!target.prompt) {
      process.stderr.write(`unmachine: ${target.name}: --exec needs a guest with a known shell prompt (such as tiny)\n`);
      return await stopAndExit(2);
    }
    const deadline = Date.now() + flags.timeoutMs;
    const left = (): number => Math.max(1000, deadline - Date.now());
    try {
      // The agent runs the command when the guest has one (exact bytes, no tty in between);
      // the serial shell otherwise, or when the agent has not said hello soon after the prompt.
      await guest.waitForShell(flags.timeoutMs);
      const agent = services.agent();
      const ready = agent ? await agent.whenReady(Math.min(AGENT_GRACE_MS, left())).then(() => true, () => false) : false;
      if (agent && ready) {
        const outcome = await agent.exec(flags.exec, { timeoutMs: left(), maxOutput: 1024 * 1024 });
        process.stdout.write(outcome.outputBytes);
        if (outcome.timedOut) process.stderr.write(`unmachine: ${target.name}: the command was stopped after ${Math.round(flags.timeoutMs / 1000)} s\n`);
        if (outcome.truncated) process.stderr.write(`unmachine: ${target.name}: output cut at 1 MiB\n`);
        return await stopAndExit(outcome.status);
      }
      const result = await guest.exec(flags.exec, left());
      process.stdout.write(result.output);
      return await stopAndExit(result.status);
    } catch (error) {
      if (interrupted) return 130;
      report(error);
      return await stopAndExit(1);
    }
  }

  if (flags.headless) {
    // Nothing to wait for: run until the guest ends or the user interrupts.
    const end = await guest.exited;
    if (end.kind === "fault") {
      process.stderr.write(`unmachine: ${target.name}: the emulator stopped on a fault: ${end.message}\n`);
      return 1;
    }
    return 0;
  }

  if (flags.pty) {
    const pty = openConsolePty(guest.console);
    process.stdout.write(`${pty.path}\n`);
    process.stderr.write(`${target.name}: serial console on ${pty.path} (attach with: screen ${pty.path}); Ctrl-C stops the guest\n`);
    if (control) process.stderr.write(`${target.name}: swap media with: unmachine media ${control.name} --insert cdrom=FILE\n`);
    const end = await guest.exited;
    pty.dispose();
    if (end.kind === "fault") {
      process.stderr.write(`unmachine: ${target.name}: the emulator stopped on a fault: ${end.message}\n`);
      return 1;
    }
    return 0;
  }

  // The console on this terminal.
  const stdin = process.stdin;
  process.stderr.write(`${target.name}: booting; press Ctrl-] to quit${mediaHint}\r\n`);
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  guest.console.onFrame((frame) => process.stdout.write(frame));
  const quit = new Promise<number>((resolveQuit) => {
    stdin.on("data", (chunk: Buffer) => {
      const at = chunk.indexOf(QUIT_KEY);
      if (at >= 0) {
        if (at > 0) guest.console.send(new Uint8Array(chunk.subarray(0, at)));
        resolveQuit(0);
        return;
      }
      guest.console.send(new Uint8Array(chunk));
    });
    stdin.on("end", () => resolveQuit(0));
  });
  const code = await Promise.race([
    quit,
    guest.exited.then((end) => {
      if (end.kind === "fault") process.stderr.write(`\r\nunmachine: ${target.name}: the emulator stopped on a fault: ${end.message}\r\n`);
      return end.kind === "fault" ? 1 : 0;
    }),
  ]);
  if (raw) stdin.setRawMode(false);
  stdin.pause();
  process.stderr.write(`\r\n${target.name}: stopped\n`);
  return await stopAndExit(code);
}
