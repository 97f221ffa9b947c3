// The guests the vm tests boot, planned as the CLI plans them (core/guest/launch-plan.ts via
// main/guests/launch.ts): no test builds a machine by hand. Fails with what to do when the
// tiny guest is not built.

import { GuestLibrary } from "../../main/guests/library.js";
import { libraryPlan } from "../../main/guests/launch.js";
import type { LaunchOverrides, LaunchPlan } from "../../core/guest/launch-plan.js";
import type { GuestSettings } from "../../core/guest/settings.js";

const library = new GuestLibrary();

/** The tiny guest's plan with its default settings, or the given ones, and this test's overrides. */
export function tinyPlan(overrides: LaunchOverrides = {}, settings?: GuestSettings): LaunchPlan {
  const problem = library.problem("tiny");
  if (problem) throw new Error(`${problem} — the test command builds it (npm test)`);
  return libraryPlan(library, "tiny", settings, overrides);
}

/** The tiny guest's shell prompt, as its profile gives it. */
export function tinyPrompt(): string {
  const ready = tinyPlan().ready;
  if (ready.kind !== "prompt") throw new Error("the tiny guest's profile has no prompt");
  return ready.prompt;
}
