// Each vm test file runs its guests with a data folder of its own (saved states, settings,
// logs), so a guest one file suspends is never what another file resumes, and nothing a test
// does reaches the user's own data folder. A test that sets UNMACHINE_DATA itself keeps its own.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

process.env.UNMACHINE_DATA = mkdtempSync(join(tmpdir(), "unmachine-vm-data-"));
