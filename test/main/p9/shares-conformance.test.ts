// The host-folder backend served as the guest's shares are in production: each fresh temporary
// folder is a share of a SharesBackend, and the shared 9P conformance suite runs through it,
// read-only and quota sections included (what only a real folder can get wrong about the quota
// is in host-folder-backend.test.ts).

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { HostFolderBackend } from "../../../main/p9/host-folder-backend.js";
import { runConformance } from "../../core/p9/conformance.js";

const base = mkdtempSync(join(tmpdir(), "unmachine-p9-shares-"));
let count = 0;
afterAll(() => rmSync(base, { recursive: true, force: true }));

function freshFolder(): string {
  const dir = join(base, `share-${++count}`);
  mkdirSync(dir);
  return dir;
}

runConformance("shares backend over host folders", () => new HostFolderBackend(freshFolder()), { throughShares: true });
