// The `unmachine` command line: run a guest or an image (console on the terminal, headless
// with --until/--exec, or on a host PTY), serve the web shell, build guests, and keep the
// library: add, set, list, rm, reset (main/cli/library.ts); suspend, power off and snapshot
// guests (main/cli/states.ts); a running guest's windows and apps (main/cli/windows.ts).
// Exit status: 0 ok, 1 the guest failed or timed out, 2 bad input (usage, image, guest name).

import { realPath } from "../host/share-policy.js";
import { parseArgs } from "node:util";
import { GuestLibrary, GuestNotFoundError } from "../guests/library.js";
import { buildGuest } from "../guests/builder.js";
import { ImageError } from "../../core/media/detect.js";
import { ProfileError, checkMemory } from "../../core/guest/profile.js";
import { parseShareSpec, SettingsError } from "../../core/guest/settings.js";
import { runCommand, type RunFlags } from "./run.js";
import { appVersion } from "../version.js";
import { UsageError } from "./errors.js";
import { resolve } from "node:path";
import { sendControl, ControlError, type ControlRequest } from "./control.js";
import { checkFitsDrive, isSwapDrive } from "../../core/media/drives.js";
import { openImage } from "../media/image-file.js";
import { poweroffCommand, snapshotCommand, suspendCommand } from "./states.js";
import { appsCommand, launchCommand, windowsCommand } from "./windows.js";
import { addCommand, listCommand, exportCommand, resetCommand, rmCommand, setCommand } from "./library.js";
import { LibraryError } from "../guests/user-guests.js";
import { FAMILY_LIST } from "../../core/guest/families.js";
import { checkCpuPercent, SpeedCapError } from "../../core/v86/speed-cap.js";

export const EXIT = { ok: 0, guest: 1, usage: 2 } as const;

export { UsageError };

export const HELP = `unmachine ${appVersion}: old and foreign operating systems, served by the host

Usage:
  unmachine run <guest|image> [options]   boot a guest from the library, or any image file
  unmachine serve [--port N] [--no-open]  the app in a browser tab (prints its address)
  unmachine add IMAGE [--name NAME] [--memory MiB] [--prompt REGEX] [--initrd FILE]
                    [--family F] [--title TEXT]
                                          add an image to the library as a guest that keeps
                                          its changes (prints the guest's name); the image
                                          itself is never changed
  unmachine set NAME key=value...         memory=MiB cpu=PERCENT disk=MiB (grow only)
                                          family=F title=TEXT prompt=REGEX net=none|ne2k|virtio
                                          acpi=on|off (built-in guests: memory and cpu only)
  unmachine list                          each guest's family, RAM, changes, disk size, state
  unmachine rm NAME [--yes]               remove a guest (--yes: even with changes)
  unmachine reset NAME                    discard a guest's changes to its disk
  unmachine export NAME FILE [--force]    write a guest's disk with its changes as a new flat image
  unmachine media NAME --insert fda=FILE | --insert cdrom=FILE | --eject fda|cdrom
                                          swap a running guest's floppy or CD
  unmachine suspend NAME                  save a running guest's state and stop it (its next
                                          start resumes it; every end of a run does this)
  unmachine poweroff NAME                 stop a running guest without saving it, or discard
                                          a stopped guest's saved state (it starts cold)
  unmachine snapshot NAME [save|restore|rm TAG]
                                          list a guest's snapshots, or save (running or
                                          suspended), restore (stopped) or remove one
  unmachine balloon NAME MiB              give a running guest this much RAM, live (guests
                                          with a balloon driver, such as tiny)
  unmachine windows NAME [--json]         a running guest's top-level windows (the desktop
                                          guest's agent): id, WxH+X+Y, flags, title; topmost first
  unmachine apps NAME [--json]            the apps a running guest can launch
  unmachine launch NAME APP               start an app (id, name or command) in a running
                                          guest; prints its window once it shows
  unmachine build [guest] [--force]       build a guest's files from Debian packages (default: tiny),
                                          then boot it once and keep its started state
  unmachine --help | --version

Run options:
  --memory MiB        guest RAM (default: the guest's profile, 128 for images)
  --cpu PERCENT       cap the guest's speed at PERCENT of one host core (1 to 100)
  --headless          no console on the terminal
  --until REGEX       with --headless: exit 0 once the screen or serial output matches
  --exec 'CMD'        with --headless: run CMD in the guest's shell, print its output,
                      exit with its exit status
  --timeout SECONDS   for --until and --exec (default 120)
  --pty               expose the guest's serial console as a host PTY and print its path
  --cold              boot cold: discard the guest's saved state (by default a guest
                      resumes where it was suspended)
  --share HOSTDIR[:TAG][:ro]
                      share a host folder (repeatable); the tiny guest sees it at /mnt/TAG;
                      a guest without 9P (DOS, Windows) gets the first as a read-only FAT drive
  --share-quota MiB   the most the guest may store in each --share folder
  --share-sensitive   allow --share of /, the home folder, a hidden or a system folder
  --root-folder DIR   boot with the root file system on a host folder (filled on first use)
  --allow-host        let the guest reach this computer (at its gateway, 10.0.2.2) and local
                      networks; by default it reaches only the internet
  --forward HOSTPORT:GUESTPORT
                      connections to 127.0.0.1:HOSTPORT go to the guest's GUESTPORT (repeatable)
  --fat-drive DIR     attach a host folder as a read-only FAT hard disk (long names), for
                      guests without 9P such as DOS and Windows 9x; it takes the place of
                      such a guest's shared-folder drive for this run

An image is a floppy, hard disk or CD/ISO image, or a Linux or multiboot kernel; its kind is
read from its content. On the console, press Ctrl-] to quit.
Families (F): ${FAMILY_LIST}.
Exit status: 0 ok, 1 the guest failed or timed out, 2 bad input.`;

function fail(message: string): never {
  throw new UsageError(message);
}

function number(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || value.trim() === "") fail(`${what} must be a number, got "${value}"`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${HELP}\n`);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === "--version") {
    process.stdout.write(`${appVersion}\n`);
    return EXIT.ok;
  }
  const library = new GuestLibrary();
  switch (command) {
    case "run": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          memory: { type: "string" },
          cpu: { type: "string" },
          headless: { type: "boolean", default: false },
          until: { type: "string" },
          exec: { type: "string" },
          timeout: { type: "string" },
          pty: { type: "boolean", default: false },
          cold: { type: "boolean", default: false },
          share: { type: "string", multiple: true },
          "share-quota": { type: "string" },
          "share-sensitive": { type: "boolean", default: false },
          "root-folder": { type: "string" },
          "fat-drive": { type: "string" },
          "allow-host": { type: "boolean", default: false },
          forward: { type: "string", multiple: true },
        },
      });
      if (positionals.length !== 1) fail("run takes one guest name or image path");
      const memory = number(values.memory, "--memory");
      const timeout = number(values.timeout, "--timeout") ?? 120;
      if (timeout <= 0) fail("--timeout must be more than 0 seconds");
      if ((values.until !== undefined || values.exec !== undefined) && !values.headless) fail("--until and --exec go with --headless");
      if (values.until !== undefined && values.exec !== undefined) fail("choose one of --until and --exec");
      if (values.pty && values.headless) fail("--pty and --headless do not go together");
      let until: RegExp | undefined;
      if (values.until !== undefined) {
        try {
          until = new RegExp(values.until, "m");
        } catch {
          fail(`--until: "${values.until}" is not a valid regular expression`);
        }
      }
      const flags: RunFlags = { target: positionals[0]!, headless: values.headless, pty: values.pty, timeoutMs: timeout * 1000 };
      if (memory !== undefined) flags.memory = checkMemory(memory, "--memory");
      if (values.cold) flags.cold = true;
      const cpu = number(values.cpu, "--cpu");
      if (cpu !== undefined) flags.cpuPercent = checkCpuPercent(cpu, "--cpu");
      if (until) flags.until = until;
      if (values.exec !== undefined) flags.exec = values.exec;
      const quota = number(values["share-quota"], "--share-quota");
      if (quota !== undefined && !values.share) fail("--share-quota goes with --share");
      flags.shares = (values.share ?? []).map((spec) => parseShareSpec(spec, quota)).map((s) => ({ ...s, hostPath: realPath(s.hostPath) }));
      flags.shareSensitive = values["share-sensitive"];
      if (values["root-folder"] !== undefined) {
        if (flags.shares.length > 0) fail("--root-folder and --share cannot be combined: the root folder is the guest's only 9P device");
        flags.rootFolder = resolve(values["root-folder"]);
      }
      if (values["fat-drive"] !== undefined) flags.fatDrive = resolve(values["fat-drive"]);
      flags.allowHost = values["allow-host"];
      flags.forwards = (values.forward ?? []).map((spec) => {
        const m = /^(\d{1,5}):(\d{1,5})$/.exec(spec);
        const [hostPort, guestPort] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
        if (!m || hostPort < 1 || hostPort > 65535 || guestPort < 1 || guestPort > 65535) fail(`--forward "${spec}": expected HOSTPORT:GUESTPORT, ports 1 to 65535`);
        return { hostPort, guestPort };
      });
      return await runCommand(library, flags);
    }
    case "serve": {
      const { values } = parseArgs({
        args: rest,
        options: { port: { type: "string" }, "no-open": { type: "boolean", default: false } },
      });
      const port = number(values.port, "--port") ?? 0;
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail("--port must be 0 to 65535");
      // Loaded only for `serve`: the web shell's modules take longer to load than a resumed guest takes to answer.
      const { serveCommand } = await import("./serve.js");
      return await serveCommand(library, { port, open: !values["no-open"] });
    }
    case "list":
      return await listCommand(library, rest);
    case "add":
      return addCommand(library, rest);
    case "set":
      return setCommand(library, rest);
    case "rm":
      return await rmCommand(library, rest);
    case "reset":
      return await resetCommand(library, rest);
    case "export":
      return await exportCommand(library, rest);
    case "suspend":
      return await suspendCommand(library, rest);
    case "poweroff":
      return await poweroffCommand(library, rest);
    case "snapshot":
      return await snapshotCommand(library, rest);
    case "media": {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { insert: { type: "string" }, eject: { type: "string" } } });
      if (positionals.length !== 1) fail("media takes the name of a running guest (see: unmachine list)");
      if ((values.insert === undefined) === (values.eject === undefined)) fail("media needs one of --insert DRIVE=FILE and --eject DRIVE");
      let request: ControlRequest;
      if (values.eject !== undefined) {
        if (!isSwapDrive(values.eject)) fail(`--eject: drive must be fda or cdrom, got "${values.eject}"`);
        request = { type: "eject", drive: values.eject };
      } else {
        const [drive, ...file] = values.insert!.split("=");
        if (!isSwapDrive(drive) || file.length === 0) fail(`--insert: expected fda=FILE or cdrom=FILE, got "${values.insert}"`);
        const path = resolve(file.join("="));
        checkFitsDrive(openImage(path).detected, drive, path);
        request = { type: "insert", drive, path };
      }
      const reply = await sendControl(positionals[0]!, request);
      if (!reply.ok) {
        if (reply.usage) throw new UsageError(reply.error);
        throw new Error(reply.error);
      }
      process.stderr.write(`${positionals[0]}: ${reply.message}\n`);
      return EXIT.ok;
    }
    case "balloon": {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      if (positionals.length !== 2) fail("balloon takes the name of a running guest and its RAM in MiB (see: unmachine list)");
      const [name, size] = positionals as [string, string];
      const memory = number(size, "the RAM");
      if (memory === undefined || !Number.isInteger(memory) || memory < 1) fail(`the RAM must be a whole number of MiB, got "${size}"`);
      const reply = await sendControl(name, { type: "balloon", memory });
      if (!reply.ok) throw new UsageError(`${name}: ${reply.error}`);
      process.stderr.write(`${name}: ${reply.message}\n`);
      return EXIT.ok;
    }
    case "windows":
      return await windowsCommand(rest);
    case "apps":
      return await appsCommand(rest);
    case "launch":
      return await launchCommand(rest);
    case "build": {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { force: { type: "boolean", default: false } } });
      const name = positionals[0] ?? "tiny";
      library.profile(name);
      await buildGuest(library, name, { force: values.force, summary: true, keepState: true });
      return EXIT.ok;
    }
    default:
      fail(`unknown command "${command}" (try: unmachine --help)`);
  }
}

/** Runs the CLI and turns every error into one line and an exit status. */
export async function cli(argv: string[]): Promise<never> {
  let code: number;
  try {
    code = await main(argv);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`unmachine: ${message}\n`);
    const usage =
      error instanceof UsageError ||
      error instanceof ImageError ||
      error instanceof GuestNotFoundError ||
      error instanceof ProfileError ||
      error instanceof ControlError ||
      error instanceof SettingsError ||
      error instanceof LibraryError ||
      error instanceof SpeedCapError ||
      (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    code = usage ? EXIT.usage : EXIT.guest;
  }
  // Let stdout drain before leaving.
  await new Promise<void>((r) => (process.stdout.write("", () => r())));
  process.exit(code);
}
