// What `npm start` does when Electron exits: an early death (the sandbox that cannot start on
// Ubuntu 24.04+, or anything else) falls back to the web shell with one line saying why and
// how to fix it; a normal quit exits 0; a crash or a kill later exits non-zero.
import { describe, expect, it } from "vitest";
import { decideAfterExit, START_GRACE_MS, type ElectronExit } from "../../main/electron-start.js";

const sandbox = "/app/node_modules/electron/dist/chrome-sandbox";
const exit = (over: Partial<ElectronExit>): ElectronExit => ({ code: null, signal: null, stderr: "", livedMs: 500, chromeSandbox: sandbox, ...over });
const UBUNTU_SANDBOX =
  "[12:12:0101/000000.000:FATAL:setuid_sandbox_host.cc(158)] The SUID sandbox helper binary was found, but is not configured correctly. " +
  "Rather than run without sandboxing I'm aborting now. You need to make sure that /app/node_modules/electron/dist/chrome-sandbox is owned by root and has mode 4755.\n";

describe("decideAfterExit", () => {
  it("falls back when the sandbox cannot start, naming the cause and the fix in one line", () => {
    const decision = decideAfterExit(exit({ signal: "SIGTRAP", stderr: UBUNTU_SANDBOX }));
    expect(decision.fallback).toBe(true);
    expect(decision.message).not.toContain("\n");
    expect(decision.message).toMatch(/sandbox/);
    expect(decision.message).toMatch(/Ubuntu 24\.04/);
    expect(decision.message).toContain(`sudo chown root:root ${sandbox} && sudo chmod 4755 ${sandbox}`);
  });

  it("falls back on any other death at start, quoting what Electron said", () => {
    const decision = decideAfterExit(exit({ code: 1, stderr: "Gtk-WARNING: cannot open display\n[1:1:ERROR:ozone_platform_x11.cc] Missing X server\n" }));
    expect(decision.fallback).toBe(true);
    expect(decision.message).toMatch(/exited with code 1 at start \(.*Missing X server\)/);
    expect(decideAfterExit(exit({ signal: "SIGSEGV" })).fallback).toBe(true);
  });

  it("exits 0 after a normal quit, or when a second instance hands over to the first", () => {
    expect(decideAfterExit(exit({ code: 0, livedMs: 200 }))).toEqual({ fallback: false, exitCode: 0 });
    expect(decideAfterExit(exit({ code: 0, livedMs: 3_600_000 }))).toEqual({ fallback: false, exitCode: 0 });
  });

  it("reports a death by signal as a failure, never as success", () => {
    const crash = decideAfterExit(exit({ signal: "SIGSEGV", livedMs: START_GRACE_MS + 60_000 }));
    expect(crash).toMatchObject({ fallback: false, exitCode: 139 });
    expect(crash.message).toMatch(/killed by SIGSEGV/);
    expect(decideAfterExit(exit({ signal: "SIGKILL", livedMs: 60_000 })).exitCode).toBe(137);
    expect(decideAfterExit(exit({ code: 3, livedMs: 60_000 }))).toMatchObject({ fallback: false, exitCode: 3 });
  });

  it("does not open the web shell when the user stopped the app, even early", () => {
    expect(decideAfterExit(exit({ signal: "SIGINT", livedMs: 100 }))).toEqual({ fallback: false, exitCode: 130 });
    expect(decideAfterExit(exit({ signal: "SIGTERM", livedMs: 100 }))).toEqual({ fallback: false, exitCode: 143 });
  });
});
