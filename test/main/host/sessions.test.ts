// The console log a host session keeps on disk: capped at 4 MiB plus one previous file with the
// newest output last, private (0600 in a 0700 folder, whatever the umask), never held in memory
// when the disk falls behind the guest, and pruned to the last few sessions of a guest.

import { describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { HostSessions } from "../../../main/host/sessions.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";

const MiB = 1024 * 1024;
const FRAME = 64 * 1024;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function fresh(): { sessions: HostSessions; logs: string; page: ReturnType<typeof createPipePair>[1]; id: string } {
  const logs = join(mkdtempSync(join(tmpdir(), "unmachine-sessions-")), "logs");
  const sessions = new HostSessions(logs);
  const { id } = sessions.open("tiny");
  const [host, page] = createPipePair();
  sessions.attachPipe(id, "console", host);
  return { sessions, logs, page, id };
}

/** A frame of console text that ends saying which one it was. */
function frame(i: number): Uint8Array {
  const end = endOf(i);
  return Buffer.from(".".repeat(FRAME - end.length) + end);
}

function endOf(i: number): string {
  return `\r\nend of frame ${String(i).padStart(6, "0")}\r\n`;
}

function sizes(logs: string): Record<string, number> {
  return Object.fromEntries(readdirSync(logs).map((f) => [f, statSync(join(logs, f)).size]));
}

describe("console log", () => {
  it("keeps at most 4 MiB and one previous file of 20 MiB of output, the newest last", async () => {
    const { sessions, logs, page, id } = fresh();
    const count = (20 * MiB) / FRAME;
    for (let i = 0; i < count; i++) {
      page.send(frame(i));
      await new Promise((r) => setTimeout(r, 2)); // a guest printing fast, but not faster than a disk
    }
    const current = join(logs, readdirSync(logs).find((f) => f.endsWith(".log"))!);
    await expect.poll(() => readFileSync(current, "latin1").endsWith(endOf(count - 1)), { timeout: 10_000 }).toBe(true);
    sessions.close(id);
    const onDisk = sizes(logs);
    expect(Object.keys(onDisk).sort()).toEqual([`tiny-${id.slice(0, 8)}.log`, `tiny-${id.slice(0, 8)}.log.1`]);
    for (const size of Object.values(onDisk)) expect(size).toBeLessThanOrEqual(4 * MiB);
    expect(onDisk[`tiny-${id.slice(0, 8)}.log.1`]).toBe(4 * MiB);
  });

  it("does not hold the console in memory when the disk falls behind, and says what it dropped", async () => {
    const { sessions, logs, page, id } = fresh();
    gc();
    const before = process.memoryUsage().arrayBuffers;
    // 64 MiB at once: the pipe delivers it all before the disk can take any. Held, it would
    // grow memory by 64 MiB; bounded, by the queue and what the collector has not reached yet.
    for (let i = 0; i < (64 * MiB) / FRAME; i++) page.send(frame(i));
    await new Promise((r) => queueMicrotask(() => r(undefined)));
    await Promise.resolve();
    // V8 frees array buffers concurrently after a collection: collect, let it sweep, collect again.
    gc();
    await new Promise((r) => setTimeout(r, 100));
    gc();
    const growth = process.memoryUsage().arrayBuffers - before;
    expect(growth).toBeLessThan(16 * MiB);
    const current = join(logs, readdirSync(logs).find((f) => f.endsWith(".log"))!);
    await expect.poll(() => readFileSync(current, "latin1"), { timeout: 10_000 }).toMatch(/\[unmachine: \d+ bytes of console output were not logged: the disk fell behind\]\r\n$/);
    sessions.close(id);
  });

  it("makes its logs 0600 in a 0700 folder, even with umask 0", async () => {
    const old = process.umask(0);
    let made: ReturnType<typeof fresh>;
    try {
      made = fresh();
      made.page.send(Buffer.from("Linux version 6.1\r\n"));
      await expect.poll(() => readdirSync(made.logs).length).toBe(1);
    } finally {
      process.umask(old);
    }
    const [file] = readdirSync(made.logs);
    await expect.poll(() => readFileSync(join(made.logs, file!), "utf8")).toBe("Linux version 6.1\r\n");
    expect(statSync(join(made.logs, file!)).mode & 0o777).toBe(0o600);
    expect(statSync(made.logs).mode & 0o777).toBe(0o700);
    made.sessions.dispose();
  });

  it("keeps the logs of the last four ended sessions of a guest", () => {
    const logs = join(mkdtempSync(join(tmpdir(), "unmachine-sessions-")), "logs");
    mkdirSync(logs);
    const ids = ["00000001", "00000002", "00000003", "00000004", "00000005", "00000006"];
    ids.forEach((id, i) => {
      for (const name of [`tiny-${id}.log`, `tiny-${id}.log.1`]) {
        writeFileSync(join(logs, name), "x");
        utimesSync(join(logs, name), new Date(1e12 + i * 1000), new Date(1e12 + i * 1000));
      }
    });
    writeFileSync(join(logs, "dos-00000001.log"), "x");
    writeFileSync(join(logs, "notes.txt"), "x");
    const sessions = new HostSessions(logs);
    sessions.open("tiny");
    expect(readdirSync(logs).sort()).toEqual(["dos-00000001.log", "notes.txt", ...ids.slice(2).flatMap((id) => [`tiny-${id}.log`, `tiny-${id}.log.1`])].sort());
    sessions.dispose();
  });
});
