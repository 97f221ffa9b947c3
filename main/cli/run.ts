// `unmachine run`: boots a library guest or an image file in a headless worker, then either
// puts its serial console on this terminal, on a host PTY (--pty), or waits for text (--until)
// or runs one command (--exec). Every end is one line and an exit status, never a trace. A
// library guest resumes from its saved state (main/state/guest-states.ts) and every end of its
// run suspends it; a power-off (or a guest that stops by itself) leaves no state.

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
import { launchPlan, plannedServices, LaunchError, type LaunchOverrides, type LaunchPlan, type MediaSource } from "../../core/guest/launch-plan.js";
import { HeadlessGuest, GuestFaultError, GuestStoppedError, GuestTimeoutError } from "../headless/runner.js";
import { openConsolePty } from "./pty.js";
import { ControlError, serveControl, type ControlRun } from "./control.js";
import { checkShares } from "../host/share-policy.js";
import { hostServiceSet } from "../host/services.js";
import { overlayHolder } from "../disk/overlay.js";
import { checkBudget } from "../../core/guest/memory-budget.js";
import { MiB } from "../../core/v86/options.js";
import { freemem, totalmem } from "node:os";
import { compressSaved } from "../state/state-zstd.js";
import { builtStatePath, expectationFor, GuestStates, type LoadedState } from "../state/guest-states.js";
import { overlayLength, type NewState, type StateExpectation } from "../state/state-file.js";
import type { DiskRole } from "../../core/guest/launch-plan.js";
import type { ServiceSet, ServiceSetOptions } from "../host/services.js";

/** How long after the shell prompt the agent may take to say hello before --exec uses the shell. */
const AGENT_GRACE_MS = 10_000;
/** The same after a resume: the agent is already up, and its hello comes at once or not at all. */
const RESUMED_AGENT_GRACE_MS = 2_000;
/** How long a resumed guest may take to be running again before it starts cold instead. */
const RESUME_MS = 30_000;
/** How long a save may take before the run gives up on it (and the guest starts cold next time). */
const SUSPEND_MS = 60_000;

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
  /** Start cold: discard the guest's saved state. */
  cold?: boolean;
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

type End = "suspend" | "poweroff";

/**
 * Starts the plan's guest with its host services, from a saved state when `load` gives one. The
 * emulator is set up first, so it loads while the state is read and the services readied.
 */
async function startGuest(plan: LaunchPlan, mayResume: boolean, load: () => LoadedState | undefined): Promise<{ services: ServiceSet; guest: HeadlessGuest; resume: LoadedState | undefined }> {
  const planned = plannedServices(plan);
  let guest = new HeadlessGuest(plan, { startLater: { services: planned, resumes: mayResume } });
  let resume: LoadedState | undefined;
  try {
    resume = mayResume ? load() : undefined;
  } catch (error) {
    await guest.stop();
    guest.dispose();
    throw error;
  }
  if (mayResume && !resume) {
    // The state was not this machine's, or was set aside: a machine set up to boot instead.
    await guest.stop();
    guest.dispose();
    guest = new HeadlessGuest(plan, { startLater: { services: planned, resumes: false } });
  }
  const options: ServiceSetOptions = { onError: (message) => process.stderr.write(`unmachine: ${plan.guest}: ${message}\n`) };
  if (resume) options.resumed = resume.header.host ? { host: resume.header.host } : {};
  const services = hostServiceSet(plan, options);
  try {
    await services.ready;
  } catch (error) {
    services.dispose();
    await guest.stop();
    guest.dispose();
    throw new UsageError((error as Error).message);
  }
  guest.start(services.attach, resume?.payload);
  return { services, guest, resume };
}

function newState(expected: StateExpectation, overlays: Partial<Record<DiskRole, string>>, host: NewState["host"]): NewState {
  const disks: NewState["disks"] = {};
  for (const [role, overlay] of Object.entries(overlays) as [DiskRole, string][]) disks[role] = { overlayLength: overlayLength(overlay) };
  const state: NewState = { emulator: expected.emulator, machine: expected.machine, guest: "", disks };
  if (host !== undefined) state.host = host;
  return state;
}

/**
 * Suspends a running guest into its suspend.state: the emulator stopped and drained, its raw
 * state taken, the host services' state, the services closed (the overlays synced), then the
 * compressed state written with each overlay's length.
 */
async function suspendInto(states: GuestStates, expected: StateExpectation, guest: HeadlessGuest, services: ServiceSet, disks: Partial<Record<DiskRole, { overlay: string }>>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const raw = await Promise.race([
    guest.suspend(),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the emulator did not stop within ${SUSPEND_MS / 1000} s`)), SUSPEND_MS))),
  ]).finally(() => clearTimeout(timer));
  const host = services.saveState?.();
  services.dispose();
  const overlays: Partial<Record<DiskRole, string>> = {};
  for (const [role, disk] of Object.entries(disks) as [DiskRole, { overlay: string }][]) overlays[role] = disk.overlay;
  const state = newState(expected, overlays, host);
  state.guest = states.name;
  states.save(state, await compressSaved(raw));
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
  let interrupted = false;
  const tell = (line: string): void => void process.stderr.write(`unmachine: ${line}\n`);
  // A library guest's states; a one-off image run keeps none.
  const isLibrary = library.has(flags.target) && !existsSync(flags.target);
  const states = isLibrary ? GuestStates.of(plan.guest) : undefined;
  const disks = (plan.services.disks ?? {}) as Partial<Record<DiskRole, { overlay: string }>>;
  const expected: StateExpectation | undefined = states ? expectationFor(plan.machine, disks) : undefined;
  if (states && flags.cold) states.discard();
  const built = states && library.isBuiltIn(plan.guest) ? builtStatePath(library.resolve(plan.guest).media) : undefined;
  const loadState = states && expected && !flags.cold ? () => states.load(expected, tell, built) : undefined;
  let { services, guest, resume } = await startGuest(plan, loadState !== undefined && states?.hasState(built) === true, loadState ?? (() => undefined));
  if (resume) {
    // Restored: running at once. A state v86 cannot restore is set aside and the guest starts cold.
    const restored = await guest.waitForShell(RESUME_MS).then(
      () => undefined,
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    if (restored !== undefined) {
      services.dispose();
      await guest.stop();
      guest.dispose();
      if (resume.from === "suspend") states!.setAside(`the emulator could not restore it: ${restored}`, tell);
      ({ services, guest, resume } = await startGuest(plan, false, () => undefined));
    }
  }
  // Without a private control folder the guest still runs, only without media commands.
  let finish: (how: End) => Promise<number> = () => Promise.resolve(0);
  const run: ControlRun = {
    end: async (how) => {
      interrupted = true;
      const code = await finish(how);
      setTimeout(() => process.exit(code), 200); // after the answer has left
      return how === "suspend" ? (states ? "suspended" : "stopped (an image run keeps no state)") : "powered off";
    },
    snapshot: async (tag) => {
      if (!states || !expected) throw new UsageError(`${target.name}: an image run keeps no snapshots; add it to the library`);
      const saved = await guest.save();
      try {
        const overlays: Partial<Record<DiskRole, string>> = {};
        for (const [role, disk] of Object.entries(disks) as [DiskRole, { overlay: string }][]) overlays[role] = disk.overlay;
        const payload = await compressSaved(saved.state);
        states.saveSnapshot(tag, newState(expected, overlays, services.saveState?.()), payload, overlays);
      } finally {
        saved.resume();
      }
      return `snapshot "${tag}" saved`;
    },
    agent: () => services.agent(),
  };
  const control = await serveControl(target.name.replace(/[^A-Za-z0-9_.-]/g, "_"), guest, undefined, run).catch((error: unknown) => {
    if (!(error instanceof ControlError)) throw error;
    process.stderr.write(`unmachine: ${error.message}; media commands are off for this run\n`);
    return undefined;
  });
  const mediaHint = control ? `; swap media with: unmachine media ${control.name} --insert cdrom=FILE` : "";
  let ending: Promise<number> | undefined;
  /** Ends the run: a library guest is suspended (or powered off when asked), anything else stopped. */
  finish = (how: End): Promise<number> => {
    ending ??= (async () => {
      control?.dispose();
      // The guest's 9P session lives in the host's server: a guest it cannot be saved for is stopped as before.
      // A guest that has not reached its prompt is not saved: a restored guest counts as running at once.
      const savable = (plan.machine.p9 !== "host" || services.saveState !== undefined) && guest.phase === "running";
      if (how === "suspend" && states && expected && !guest.ended && savable) {
        try {
          await suspendInto(states, expected, guest, services, disks);
        } catch (error) {
          tell(`${target.name}: its state could not be saved (${error instanceof Error ? error.message : String(error)}); it starts cold next time`);
          states.discard();
        }
      } else if (states && (how === "poweroff" || guest.ended || !savable)) {
        // Powered off, or stopped by itself: nothing to resume.
        states.discard();
      }
      services.dispose();
      await guest.stop();
      guest.dispose();
      return 0;
    })();
    return ending;
  };
  const stopAndExit = async (code: number): Promise<number> => {
    await finish("suspend");
    return code;
  };
  // Interrupted by the user: stop quietly, with the shell's status for the signal. A second
  // Ctrl-C while the guest is being saved waits for the save (bounded by SUSPEND_MS), never cuts it short.
  let signalled = false;
  const onSignal = (code: number) => () => {
    if (signalled) return;
    signalled = true;
    interrupted = true;
    void stopAndExit(code).then((c) => process.exit(c));
  };
  process.on("SIGINT", onSignal(130));
  process.on("SIGTERM", onSignal(143));
  const report = (error: unknown): void => {
    if (interrupted) return;
    process.stderr.write(`unmachine: ${describeEnd(target.name, error)}\n`);
  };

  // A resumed shell printed its prompt before the save: Ctrl-L has it redraw its prompt and line
  // (on the console, the PTY, and for --until, which may wait for that prompt).
  const redraw = (): void => {
    if (resume && target.prompt) guest.console.send(new Uint8Array([0x0c]));
  };
  if (flags.until) {
    redraw();
    try {
      const match = await guest.waitForText(flags.until, flags.timeoutMs);
      process.stdout.write(`${match}\n`);
      return await stopAndExit(0);
    } catch (error) {
      if (interrupted) return await stopAndExit(130);
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
      const grace = resume ? RESUMED_AGENT_GRACE_MS : AGENT_GRACE_MS;
      const command = flags.exec;
      const execOn = (on: NonNullable<typeof agent>) => on.exec(command, { timeoutMs: left(), maxOutput: 1024 * 1024 });
      // A resumed guest's agent, known from its state, takes the command at once; its hello
      // confirms it within the same grace. The shell is then no fallback: the agent may be
      // running the command.
      const sent = agent?.early ? execOn(agent) : undefined;
      sent?.catch(() => {}); // awaited below, after the hello
      const ready = agent ? await agent.whenReady(Math.min(grace, left())).then(() => true, () => false) : false;
      if (sent && !ready) {
        throw new Error(
          `its agent did not answer within ${grace / 1000} s of the resume; the command was sent to it and may yet run, so it is not run again on the serial console`,
        );
      }
      if (agent && ready) {
        const outcome = await (sent ?? execOn(agent));
        process.stdout.write(outcome.outputBytes);
        if (outcome.timedOut) process.stderr.write(`unmachine: ${target.name}: the command was stopped after ${Math.round(flags.timeoutMs / 1000)} s\n`);
        if (outcome.truncated) process.stderr.write(`unmachine: ${target.name}: output cut at 1 MiB\n`);
        return await stopAndExit(outcome.status);
      }
      const result = await guest.exec(flags.exec, left());
      process.stdout.write(result.output);
      return await stopAndExit(result.status);
    } catch (error) {
      if (interrupted) return await stopAndExit(130);
      report(error);
      return await stopAndExit(1);
    }
  }

  if (flags.headless) {
    // Nothing to wait for: run until the guest ends or the user interrupts.
    const end = await guest.exited;
    await finish("suspend"); // ended by itself: its state is discarded
    if (end.kind === "fault") {
      process.stderr.write(`unmachine: ${target.name}: the emulator stopped on a fault: ${end.message}\n`);
      return 1;
    }
    return 0;
  }

  if (flags.pty) {
    const pty = openConsolePty(guest.console);
    redraw();
    process.stdout.write(`${pty.path}\n`);
    process.stderr.write(`${target.name}: serial console on ${pty.path} (attach with: screen ${pty.path}); Ctrl-C stops the guest\n`);
    if (control) process.stderr.write(`${target.name}: swap media with: unmachine media ${control.name} --insert cdrom=FILE\n`);
    const end = await guest.exited;
    pty.dispose();
    await finish("suspend");
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
  redraw();
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
