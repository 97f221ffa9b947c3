// The host's RAM shared by its guests: the overcommit rule the page's RAM bar and the CLI
// both apply, and the bar's segments.

import { describe, expect, it } from "vitest";
import { checkBudget, EMULATOR_OVERHEAD_MiB, hostReserve, memoryBar } from "../../../core/guest/memory-budget.js";

const host = { totalMiB: 8192, freeMiB: 2500 };

describe("checkBudget", () => {
  it("lets a guest start while the host keeps its reserve", () => {
    const check = checkBudget(host, [], { guest: "tiny", memory: 128 });
    expect(check).toEqual({ needMiB: 128 + EMULATOR_OVERHEAD_MiB, leftMiB: 2500 - 128 - EMULATOR_OVERHEAD_MiB, reserveMiB: 819, overcommit: false });
  });

  it("warns, in one line naming the guest and the figures, before the host is overcommitted", () => {
    const check = checkBudget(host, [], { guest: "win98", memory: 2048 });
    expect(check.overcommit).toBe(true);
    expect(check.warning).toBe(
      `win98 with 2048 MiB would leave this computer ${2500 - 2048 - EMULATOR_OVERHEAD_MiB} MiB free of 8192 MiB (less than the 819 MiB it keeps for itself): it may slow down, or stop programs`,
    );
    expect(check.warning).not.toContain("\n");
  });

  it("counts only the change for a running guest, and never warns when it shrinks", () => {
    const running = [{ guest: "tiny", memory: 1024 }];
    expect(checkBudget(host, running, { guest: "tiny", memory: 2048 }).needMiB).toBe(1024);
    expect(checkBudget(host, running, { guest: "tiny", memory: 2048 }).overcommit).toBe(false);
    expect(checkBudget(host, running, { guest: "tiny", memory: 3000 }).overcommit).toBe(true);
    expect(checkBudget({ totalMiB: 1024, freeMiB: 10 }, running, { guest: "tiny", memory: 512 }).overcommit).toBe(false);
  });

  it("keeps a tenth of the host, at least 256 MiB and at most 1 GiB", () => {
    expect(hostReserve(1024)).toBe(256);
    expect(hostReserve(8192)).toBe(819);
    expect(hostReserve(65536)).toBe(1024);
  });
});

describe("memoryBar", () => {
  it("shows each running guest, the one being set at its asked size, the host's other programs and what stays free", () => {
    const running = [
      { guest: "tiny", memory: 128 },
      { guest: "dos", memory: 32 },
    ];
    expect(memoryBar(host, running, { guest: "tiny", memory: 256 })).toEqual([
      { kind: "asked", guest: "tiny", mib: 256 },
      { kind: "guest", guest: "dos", mib: 32 },
      { kind: "other", mib: 8192 - 2500 - 160 },
      { kind: "free", mib: 2500 - 128 },
    ]);
  });

  it("adds a guest about to start, and shows no free memory past the end", () => {
    expect(memoryBar({ totalMiB: 1024, freeMiB: 100 }, [], { guest: "big", memory: 512 })).toEqual([
      { kind: "asked", guest: "big", mib: 512 },
      { kind: "other", mib: 924 },
      { kind: "free", mib: 0 },
    ]);
  });
});
