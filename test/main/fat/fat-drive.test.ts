// A shared folder offered to a DOS-family guest as a read-only FAT drive: the host sizes it when
// the plan is made (main/fat/fat-drive.ts) and serves it through a session's "disk" pipe; what the
// guest writes it reads back during the run, the host folder is never written; a sensitive folder
// is offered only as the user confirmed it.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchPlan, type LaunchPlan, type MediaSource } from "../../../core/guest/launch-plan.js";
import { parseProfile } from "../../../core/guest/profile.js";
import { DEFAULT_SETTINGS } from "../../../core/guest/settings.js";
import { buildFatDrives, FatDriveError } from "../../../main/fat/fat-drive.js";
import { HostSessions } from "../../../main/host/sessions.js";
import { registerHostServices } from "../../../main/host/services.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import { decodeReply, encodeRequest, type DiskReply } from "../../../core/disk/protocol.js";

const file = (path: string): MediaSource => ({ kind: "file", path });
const firmware = { bios: file("/fw/bios.bin"), vgaBios: file("/fw/vgabios.bin") };
const dos = parseProfile({ name: "dos", memory: 32, media: { hda: "c.img" }, family: "dos" }, "dos");
const TEXT = "C:\\> a file from the host, read from drive D:\r\n";

let folder: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), "fat-drive-"));
  writeFileSync(join(folder, "README.TXT"), TEXT);
});
afterEach(() => rmSync(folder, { recursive: true, force: true }));

function planWith(hostPath: string): LaunchPlan {
  const settings = { ...DEFAULT_SETTINGS, shares: [{ hostPath, tag: "files", readOnly: false }] };
  return launchPlan({ kind: "guest", profile: dos, settings, media: { hda: file("/g/c.img") } }, firmware);
}

/** A session of the plan's services with its disk pipe open: requests in, replies out. */
function serve(plan: LaunchPlan): { ask: (request: Parameters<typeof encodeRequest>[0]) => Promise<DiskReply>; dispose: () => void } {
  const sessions = new HostSessions();
  registerHostServices(sessions);
  const { id } = sessions.open(plan.guest, plan.services);
  const [page, host] = createPipePair();
  sessions.attachPipe(id, "disk", host);
  const waiting = new Map<number, (reply: DiskReply) => void>();
  page.onFrame((frame) => {
    const reply = decodeReply(frame);
    waiting.get(reply.id)?.(reply);
  });
  return {
    ask: (request) => new Promise((resolve) => {
      waiting.set(request.id, resolve);
      page.send(encodeRequest(request));
    }),
    dispose: () => sessions.dispose(),
  };
}

/** Runs `body` with HOME set to `home` (the share policy reads the home folder from it). */
function withHome(home: string, body: () => void): void {
  const saved = process.env.HOME;
  process.env.HOME = home;
  try {
    body();
  } finally {
    process.env.HOME = saved;
  }
}

const bytesOf = (reply: DiskReply): Uint8Array => {
  if (!reply.ok) throw new Error(reply.message);
  return reply.data;
};

describe("a FAT drive from a saved share", () => {
  it("is sized by the host: the runtime sees a served disk on hdb, no folder to build", () => {
    const plan = buildFatDrives(planWith(folder));
    const size = plan.services.fatDrives?.hdb?.size ?? 0;
    expect(size).toBeGreaterThan(1024 * 1024);
    expect(plan.machine.media.hdb).toEqual({ kind: "served", size });
    expect(plan.machine.media.hda).toEqual(file("/g/c.img"));
  });

  it("names the share when its folder is gone", () => {
    expect(() => buildFatDrives(planWith(join(folder, "gone")))).toThrow(FatDriveError);
    expect(() => buildFatDrives(planWith(join(folder, "gone")))).toThrow(`share "files": ${join(folder, "gone")} is not a folder`);
  });

  it("offers a sensitive folder (the home folder) only as the user confirmed it", () => {
    const home = join(folder, "home");
    mkdirSync(home);
    const settings = { ...DEFAULT_SETTINGS, shares: [{ hostPath: home, tag: "home", readOnly: false }] };
    const plan = launchPlan({ kind: "guest", profile: dos, settings, media: { hda: file("/g/c.img") } }, firmware);
    withHome(home, () => expect(() => buildFatDrives(plan)).toThrow(/^share "home": .*home folder.*not confirmed in the app/));
    const confirmed = { ...settings, shares: [{ ...settings.shares[0]!, confirmedSensitive: true }] };
    const ok = launchPlan({ kind: "guest", profile: dos, settings: confirmed, media: { hda: file("/g/c.img") } }, firmware);
    withHome(home, () => expect(buildFatDrives(ok).machine.media.hdb?.kind).toBe("served"));
  });

  it("serves the folder's files; the guest's writes stay in the run, the folder is never written", async () => {
    const plan = buildFatDrives(planWith(folder));
    const size = plan.services.fatDrives!.hdb!.size!;
    const run = serve(plan);
    const mbr = bytesOf(await run.ask({ op: "read", id: 1, disk: "hdb", offset: 0, length: 512 }));
    expect([mbr[510], mbr[511]]).toEqual([0x55, 0xaa]);
    const whole = bytesOf(await run.ask({ op: "read", id: 2, disk: "hdb", offset: 0, length: Math.min(size, 1024 * 1024) }));
    const at = Buffer.from(whole).indexOf(TEXT);
    expect(at).toBeGreaterThan(0);
    const scribble = new Uint8Array(512).fill(0x5a);
    const sector = Math.floor(at / 512) * 512;
    expect((await run.ask({ op: "write", id: 3, disk: "hdb", offset: sector, data: scribble })).ok).toBe(true);
    expect(bytesOf(await run.ask({ op: "read", id: 4, disk: "hdb", offset: sector, length: 512 }))).toEqual(scribble);
    expect((await run.ask({ op: "read", id: 5, disk: "hdb", offset: size, length: 512 })).ok).toBe(false);
    run.dispose();
    expect(readdirSync(folder)).toEqual(["README.TXT"]);
    expect(readFileSync(join(folder, "README.TXT"), "utf8")).toBe(TEXT);
    // The next start sees the folder again, not what the last run wrote.
    const next = serve(plan);
    const again = bytesOf(await next.ask({ op: "read", id: 1, disk: "hdb", offset: sector, length: 512 }));
    expect(Buffer.from(again).includes(TEXT)).toBe(true);
    next.dispose();
  });
});
