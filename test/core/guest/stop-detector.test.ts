// StopDetector: a guest that panics, halts or shuts down is told apart from one that only
// prints about panics, whichever way its text arrives (split serial chunks, escapes, the screen).

import { describe, expect, it } from "vitest";
import { StopDetector } from "../../../core/guest/stop-detector.js";

const PANIC_LOG = [
  "[    2.512000] VFS: Cannot open root device \"(null)\" or unknown-block(0,0): error -6",
  "[    2.513000] Please append a correct \"root=\" boot option; here are the available partitions:",
  "[    2.514000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
  "[    2.515000] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-28-686 #1  Debian 6.1.119-1",
  "[    2.530000] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---",
].join("\r\n");

describe("StopDetector", () => {
  it("reads a kernel panic and its reason from serial text split anywhere", () => {
    for (const size of [1, 7, 64, PANIC_LOG.length]) {
      const detector = new StopDetector();
      let verdict;
      for (let at = 0; at < PANIC_LOG.length; at += size) verdict = detector.feedSerial(PANIC_LOG.slice(at, at + size));
      detector.feedSerial("\r\n");
      expect(detector.stop).toEqual({ state: "failed", reason: "the guest's kernel panicked: VFS: Unable to mount root fs on unknown-block(0,0)" });
      expect(verdict ?? detector.stop).toEqual(detector.stop);
    }
  });

  it("waits for the end of the panic line, so the reason is whole", () => {
    const detector = new StopDetector();
    expect(detector.feedSerial("Kernel panic - not syncing: No working init")).toBeUndefined();
    expect(detector.feedSerial(" found.  Try passing init= option to kernel.\n")).toEqual({
      state: "failed",
      reason: "the guest's kernel panicked: No working init found.  Try passing init= option to kernel.",
    });
  });

  it("ignores colour escapes around the panic line", () => {
    const detector = new StopDetector();
    detector.feedSerial("\x1b[1;31mKernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\x1b[0m\r\n");
    expect(detector.stop?.reason).toBe("the guest's kernel panicked: Attempted to kill init! exitcode=0x00000100");
  });

  it("finds a panic on the text screen", () => {
    const detector = new StopDetector();
    expect(detector.feedScreen("Loading Linux...\n[    1.2] Freeing unused kernel memory")).toBeUndefined();
    expect(detector.feedScreen("Loading Linux...\n[    2.5] Kernel panic - not syncing: No working init found.\n")?.state).toBe("failed");
  });

  it("keeps running for text that only mentions a panic, or a line that is not one", () => {
    const detector = new StopDetector();
    detector.feedSerial("tiny:/# grep 'panic' /proc/cmdline\r\n");
    detector.feedSerial("panic=0 console=ttyS0\r\n");
    detector.feedScreen("echo Kernel panic\nKernel panic\n");
    expect(detector.stop).toBeUndefined();
  });

  it("calls a halt after a shutdown message a clean stop, and any other halt a failure", () => {
    const shutdown = new StopDetector();
    shutdown.feedSerial("[   30.1] reboot: Power down\r\n");
    expect(shutdown.halted()).toEqual({ state: "stopped", reason: "the guest shut down" });

    const dead = new StopDetector();
    dead.feedSerial("Booting from Hard Disk...\r\n");
    expect(dead.halted()).toMatchObject({ state: "failed", reason: expect.stringContaining("halted with interrupts off") as string });
  });

  it("keeps its first verdict", () => {
    const detector = new StopDetector();
    detector.feedSerial("Kernel panic - not syncing: Fatal exception\n");
    expect(detector.halted().reason).toBe("the guest's kernel panicked: Fatal exception");
    detector.feedSerial("reboot: System halted\n");
    expect(detector.stop?.state).toBe("failed");
  });

  it("looks at a very long line that never ends", () => {
    const detector = new StopDetector();
    detector.feedSerial(`Kernel panic - not syncing: ${"x".repeat(600)}`);
    expect(detector.stop?.state).toBe("failed");
  });
});
