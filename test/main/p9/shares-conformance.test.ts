// The host-folder backend served as the guest's shares are in production: each fresh temporary
// folder is a share of a SharesBackend, and the shared 9P conformance suite runs through it,
// read-only and quota sections included. Plus what the quota must count in a real folder:
// what the host already put there, hard links once.

import { linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OpenFlags } from "../../../core/p9/messages.js";
import { P9Server } from "../../../core/p9/server.js";
import { SharesBackend } from "../../../core/p9/shares-backend.js";
import { HostFolderBackend } from "../../../main/p9/host-folder-backend.js";
import { runConformance, TestClient } from "../../core/p9/conformance.js";

const base = mkdtempSync(join(tmpdir(), "unmachine-p9-shares-"));
let count = 0;
afterAll(() => rmSync(base, { recursive: true, force: true }));

function freshFolder(): string {
  const dir = join(base, `share-${++count}`);
  mkdirSync(dir);
  return dir;
}

runConformance("shares backend over host folders", () => new HostFolderBackend(freshFolder()), { throughShares: true });

describe("shares backend over a host folder: quota", () => {
  it("counts what is already in the folder toward the quota, hard links once", async () => {
    const share = freshFolder();
    writeFileSync(join(share, "a"), new Uint8Array(3000));
    mkdirSync(join(share, "sub"));
    writeFileSync(join(share, "sub", "b"), new Uint8Array(2000));
    linkSync(join(share, "a"), join(share, "sub", "a-again"));
    symlinkSync("a", join(share, "l"));
    const backend = new HostFolderBackend(share);
    expect(await backend.usedBytes()).toBe(5001);
    const c = new TestClient(new P9Server(new SharesBackend([{ tag: "s", backend, readOnly: false, quotaBytes: 6000 }])), "s");
    await c.mount();
    const dir = await c.walk("");
    await c.rpc({ type: "Tlcreate", fid: dir, name: "c", flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 });
    expect((await c.rpc({ type: "Twrite", fid: dir, offset: 0n, data: new Uint8Array(5000) })).count).toBe(999);
    expect(lstatSync(join(share, "c")).size).toBe(999);
    expect(await backend.usedBytes()).toBe(6000);
  });
});
