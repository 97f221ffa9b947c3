// A built-in guest whose root file system is a built folder (the desktop guest): the library
// finds the folder or says to build it, and the CLI's plan and the page's plan both serve it
// read-only over 9P as the share "root", beside the user's own shares.
import { describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, realpathSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GuestLibrary } from "../../../main/guests/library.js";
import { libraryPlan } from "../../../main/guests/launch.js";
import { createHostApi } from "../../../main/host/host-api.js";
import { HostSessions } from "../../../main/host/sessions.js";
import { registerHostServices } from "../../../main/host/services.js";
import { pageStates } from "../../../main/host/page-states.js";
import { sharesBackend } from "../../../main/host/p9-service.js";

function fixture(built: boolean): { library: GuestLibrary; root: string } {
  const top = mkdtempSync(join(tmpdir(), "unmachine-root-"));
  const guests = join(top, "guests");
  const cache = join(top, "cache");
  mkdirSync(join(guests, "desk"), { recursive: true });
  writeFileSync(join(guests, "desk", "guest.json"), JSON.stringify({ name: "desk", media: { bzimage: "kernel" }, root: "root", shares: true, prompt: "# " }));
  writeFileSync(join(guests, "desk", "build.sh"), "exit 0\n");
  mkdirSync(join(cache, "firmware"), { recursive: true });
  mkdirSync(join(cache, "guests", "desk"), { recursive: true });
  writeFileSync(join(cache, "firmware", "bios.bin"), "bios");
  writeFileSync(join(cache, "firmware", "vgabios-stdvga.bin"), "vga");
  writeFileSync(join(cache, "guests", "desk", "kernel"), "kernel");
  const root = join(cache, "guests", "desk", "root");
  if (built) {
    mkdirSync(root);
    writeFileSync(join(root, "init"), "#!/bin/sh\n");
  }
  return { library: new GuestLibrary(guests, [cache], join(top, "data")), root };
}

const rootShare = (hostPath: string) => ({ tag: "root", hostPath, readOnly: true, confirmedSensitive: true });

describe("a guest with a built root folder", () => {
  it("is not ready until its root folder is built, and says how to build it", () => {
    const { library } = fixture(false);
    expect(library.problem("desk")).toBe('guest "desk": its root folder root is not built yet (run: unmachine build desk)');
  });

  it("is planned with its root folder served read-only, for the CLI and for the page alike", async () => {
    const { library, root } = fixture(true);
    expect(library.problem("desk")).toBeUndefined();
    const share = { hostPath: "/srv/work", tag: "work", readOnly: false };
    expect(libraryPlan(library, "desk", undefined, { shares: [share] }).services.p9).toEqual({ kind: "shares", shares: [rootShare(root), share] });

    const sessions = new HostSessions(mkdtempSync(join(tmpdir(), "unmachine-logs-")));
    const handlers = createHostApi({
      library,
      sessions,
      settings: library.settings,
      services: registerHostServices(sessions),
      states: pageStates(library.dataDir, library),
      shell: "web",
      urls: { media: (guest, role) => `/media/${guest}/${role}`, firmware: (which) => `/firmware/${which}`, state: (guest) => `/state/${guest}` },
    });
    const plan = await handlers["guests:plan"]("desk", 0);
    expect(plan.services.p9).toEqual({ kind: "shares", shares: [rootShare(root)] });
    expect(plan.machine.p9).toBe("host");
  });

  it("is served from a cache reached through a symbolic link (a cache moved and linked from its old place)", async () => {
    const { library, root } = fixture(true);
    const cache = join(root, "..", "..", "..");
    const moved = join(cache, "..", "moved-cache");
    renameSync(cache, moved);
    symlinkSync(moved, cache);
    const p9 = libraryPlan(library, "desk").services.p9;
    if (p9?.kind !== "shares") throw new Error("no shares planned");
    expect(p9.shares[0]!.hostPath).toBe(realpathSync(join(moved, "guests", "desk", "root")));
    const backend = sharesBackend(p9.shares);
    const init = await (await (await backend.root()).walk("root")).walk("init");
    expect(init).toBeDefined();
    await backend.close();
  });
});
