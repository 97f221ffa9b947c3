// The page's saved states as the host keeps them: a snapshot is not restored over the disk of a
// guest another process (a CLI run, another shell) is running, since its run would later save a
// state that does not match the disk it left behind.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildFatImage, materialize } from "../../../core/fat/image.js";
import { fileFromBytes } from "../../../core/fat/tree.js";
import { GuestLibrary } from "../../../main/guests/library.js";
import { addGuest } from "../../../main/guests/library-edit.js";
import { pageStates } from "../../../main/host/page-states.js";
import { GuestStates } from "../../../main/state/guest-states.js";
import { emulatorBuild } from "../../../main/state/state-file.js";
import { compressState } from "../../../core/v86/state-codec.js";

let root: string;
let holder: ChildProcess;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "unm-page-states-"));
  holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
});
afterEach(async () => {
  const gone = new Promise((done) => holder.once("exit", done));
  holder.kill("SIGKILL");
  await gone;
  rmSync(root, { recursive: true, force: true });
});

describe("a page's snapshot restore", () => {
  it("is refused while another process runs the guest, its disk's changes left as they were", async () => {
    const image = join(root, "held.img");
    writeFileSync(image, materialize(buildFatImage([fileFromBytes("COMMAND.COM", new TextEncoder().encode("cmd"), Date.UTC(1994, 0, 1))])));
    const data = join(root, "data");
    const library = new GuestLibrary(undefined, undefined, data);
    addGuest(library, image, { name: "held" });
    const overlay = library.user.overlay("held", "hda");
    const states = GuestStates.of("held", data);
    states.save({ emulator: emulatorBuild(), machine: "m", guest: "held", disks: {} }, await compressState(new Uint8Array(4096)));
    const older = join(root, "older.overlay");
    writeFileSync(older, "older changes");
    states.snapshotSuspended("older", { hda: older });

    writeFileSync(overlay, "the changes of the run under way");
    writeFileSync(`${overlay}.lock`, `${holder.pid}\n`);
    const page = pageStates(data, library, () => undefined);
    expect(() => page.restore("held", "older")).toThrow(`held is running in another Unmachine (process ${holder.pid}); stop it there first`);
    expect(readFileSync(overlay, "utf8")).toBe("the changes of the run under way");
  });
});
