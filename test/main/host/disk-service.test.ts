// The "disk" pipe end to end in memory: v86's loadable (core/disk/served-disk.ts) reading and
// writing through a session's host services (main/host/disk-service.ts) to an overlay, the
// base untouched; what a page sends that is out of bounds or not a request never crashes the host.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { HostSessions } from "../../../main/host/sessions.js";
import { registerHostServices } from "../../../main/host/services.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import { DiskClient, withServedDisks } from "../../../core/disk/served-disk.js";
import { decodeReply, encodeRequest } from "../../../core/disk/protocol.js";
import { overlayStats } from "../../../main/disk/overlay.js";
import type { LaunchServices } from "../../../core/guest/launch-plan.js";

interface Loadable {
  byteLength: number;
  onload?: (event: object) => void;
  load(): void;
  get(start: number, length: number, callback: (bytes: Uint8Array) => void): void;
  set(start: number, data: Uint8Array, callback: () => void): void;
  get_from_cache(start: number, length: number): Uint8Array | undefined;
  get_and_cache(start: number, length: number, callback: (bytes: Uint8Array) => void): void;
}

let dir: string;
let base: string;
let overlay: string;
const SIZE = 2 * 1024 * 1024;
const sha = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "disk-service-"));
  base = join(dir, "base.img");
  overlay = join(dir, "disk.overlay");
  const bytes = new Uint8Array(SIZE);
  bytes[510] = 0x55;
  bytes[511] = 0xaa;
  bytes.fill(7, 4096, 8192);
  writeFileSync(base, bytes);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function openSession(planned: LaunchServices): { sessions: HostSessions; page: ReturnType<typeof createPipePair>[0]; errors: string[] } {
  const sessions = new HostSessions();
  registerHostServices(sessions);
  const { id } = sessions.open("tiny", planned);
  const [page, host] = createPipePair();
  sessions.attachPipe(id, "disk", host);
  return { sessions, page, errors: [] };
}

describe("the disk service", () => {
  it("gives v86 a disk that reads the image and keeps its writes in the overlay", async () => {
    const before = sha(base);
    const { sessions, page } = openSession({ disks: { hda: { base, overlay, size: SIZE * 2 } } });
    const errors: string[] = [];
    const client = new DiskClient(page, (message) => errors.push(message));
    const options = withServedDisks({}, { media: { hda: { kind: "served", size: SIZE * 2 } } }, client);
    const hda = options.hda as unknown as Loadable;
    expect(hda.byteLength).toBe(SIZE * 2);
    await new Promise<void>((resolve) => {
      hda.onload = () => resolve();
      hda.load();
    });
    await new Promise((resolve) => hda.get_and_cache(0, 512, resolve));
    expect(hda.get_from_cache(0, 512)?.[511]).toBe(0xaa);
    const read = (start: number, length: number): Promise<Uint8Array> => new Promise((resolve) => hda.get(start, length, resolve));
    expect((await read(4096, 4096)).every((b) => b === 7)).toBe(true);
    // A large write, through v86's reused buffer, and a read of it at once.
    const data = new Uint8Array(3 * 1024 * 1024).fill(0x3c);
    const written = new Promise<void>((resolve) => hda.set(SIZE - 1024 * 1024, data, resolve));
    data.fill(0); // v86 reuses its buffer: what was handed over is what is written
    const back = await read(SIZE - 1024 * 1024, 3 * 1024 * 1024);
    await written;
    expect(back.every((b) => b === 0x3c)).toBe(true);
    expect(errors).toEqual([]);
    expect(overlayStats(overlay).changedBytes).toBe(3 * 1024 * 1024);
    sessions.dispose();
    expect(sha(base)).toBe(before);
  });

  it("answers out-of-bounds requests with an error and closes the pipe on garbage", async () => {
    const { sessions, page } = openSession({ disks: { hda: { base, overlay, size: SIZE } } });
    const replies: ReturnType<typeof decodeReply>[] = [];
    page.onFrame((frame) => replies.push(decodeReply(frame)));
    page.send(encodeRequest({ op: "read", id: 1, disk: "hda", offset: SIZE - 512, length: 1024 }));
    page.send(encodeRequest({ op: "write", id: 2, disk: "hda", offset: 2 ** 40, data: new Uint8Array(512) }));
    page.send(encodeRequest({ op: "read", id: 3, disk: "hdb", offset: 0, length: 512 }));
    page.send(encodeRequest({ op: "read", id: 4, disk: "hda", offset: 0, length: 512 }));
    await new Promise((r) => setTimeout(r, 20));
    expect(replies.map((r) => [r.id, r.ok])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
    expect(replies[0]!.ok === false && replies[0]!.message).toMatch(/outside the \d+-byte disk/);
    page.send(Uint8Array.of(9, 9, 9));
    await new Promise((r) => setTimeout(r, 20));
    expect(page.closed).toBe(true);
    sessions.dispose();
  });

  it("removes a one-off run's overlay when its pipe closes", async () => {
    const { sessions, page } = openSession({ disks: { hda: { base, overlay, size: SIZE, temporary: true } } });
    page.send(encodeRequest({ op: "write", id: 1, disk: "hda", offset: 0, data: new Uint8Array(512).fill(1) }));
    await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(overlay)).toBe(true);
    page.dispose();
    await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(overlay)).toBe(false);
    sessions.dispose();
  });
});
