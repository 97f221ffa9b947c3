// What `npm start` (scripts/start.js) does when the Electron app it started exits: fall back to
// the web shell when Electron died at start (its sandbox cannot start where unprivileged user
// namespaces are restricted, as on Ubuntu 24.04 and later, and node_modules' chrome-sandbox is
// not set-uid), say why in one line with the fix, and exit non-zero when the app really failed.

import { constants } from "node:os";

/** Electron that dies sooner than this after its start never ran for the user. */
export const START_GRACE_MS = 10_000;

export interface ElectronExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What Electron printed on stderr (its tail is enough). */
  stderr: string;
  /** How long it lived, in milliseconds. */
  livedMs: number;
  /** Where the sandbox helper is (node_modules/electron/dist/chrome-sandbox). */
  chromeSandbox: string;
}

export interface ExitDecision {
  /** Start the web shell instead. */
  fallback: boolean;
  /** One line for the user, when there is something to say. */
  message?: string;
  /** What `npm start` exits with when it does not fall back. */
  exitCode: number;
}

/** Signals a user sends to stop the app (Ctrl-C, kill, closing the terminal). */
const USER_SIGNALS: readonly string[] = ["SIGINT", "SIGTERM", "SIGHUP"];

const SANDBOX_FAILURE = /setuid_sandbox|SUID sandbox|No usable sandbox|zygote_host|credentials\.cc|Failed to move to new namespace/i;

/** The shell's convention for a death by signal: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** The first line of stderr that says what went wrong, shortened. */
function firstProblem(stderr: string): string | undefined {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => /FATAL|ERROR|error/.test(l)) ?? lines[0];
  return line && line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

export function decideAfterExit(exit: ElectronExit): ExitDecision {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
  if (exit.signal === null && exit.code === 0) return { fallback: false, exitCode: 0 };
  if (exit.signal && USER_SIGNALS.includes(exit.signal)) return { fallback: false, exitCode: signalExitCode(exit.signal) };
  if (exit.livedMs < START_GRACE_MS) {
    if (SANDBOX_FAILURE.test(exit.stderr)) {
      const fix = `sudo chown root:root ${exit.chromeSandbox} && sudo chmod 4755 ${exit.chromeSandbox}`;
      return {
        fallback: true,
        exitCode: 0,
        message: `Starting the web shell: Electron's sandbox cannot start here (unprivileged user namespaces are restricted, as on Ubuntu 24.04+, and chrome-sandbox is not set-uid); to use the app, run: ${fix}`,
      };
    }
    const problem = firstProblem(exit.stderr);
    return {
      fallback: true,
      exitCode: 0,
      message: `Starting the web shell: Electron ${how} at start${problem ? ` (${problem})` : ""}; run \`npx electron .\` to see its full output.`,
    };
  }
  return {
    fallback: false,
    exitCode: exit.signal ? signalExitCode(exit.signal) : (exit.code ?? 1),
    message: `Unmachine's Electron app ${how}.`,
  };
}
