// The host's RAM as every guest shares it: the one overcommit rule, used by the page's RAM bar
// and by `unmachine run`. Host figures are what the host reports (total, and free: what it
// can still hand out); a running guest's RAM is already out of the free figure. A guest costs
// its RAM plus the emulator's own memory; starting or growing one must leave the host a reserve.

export interface HostMemory {
  totalMiB: number;
  freeMiB: number;
}

/** A guest's RAM in MiB (running, or being set). */
export interface GuestShare {
  guest: string;
  memory: number;
}

/**
 * The emulator's own memory per running guest beside the guest's RAM (its code, JIT, screen
 * and buffers). The memory bench (test/bench/memory.js) measured 222 to 274 MiB resident per
 * tiny guest of 128 MiB, as much as bare v86 takes: about 96 to 146 MiB beside its RAM.
 */
export const EMULATOR_OVERHEAD_MiB = 96;

/** What the host keeps for itself and its other programs: a tenth of its RAM, 256 MiB to 1 GiB. */
export function hostReserve(totalMiB: number): number {
  return Math.round(Math.min(1024, Math.max(256, totalMiB / 10)));
}

export interface BudgetCheck {
  /** More RAM taken from the host's free memory by this change (negative: given back). */
  needMiB: number;
  /** The host's free memory after it. */
  leftMiB: number;
  reserveMiB: number;
  overcommit: boolean;
  /** One line for the user when it overcommits. */
  warning?: string;
}

/**
 * Whether giving `asked.guest` `asked.memory` MiB (starting it, or changing it while it runs:
 * then only the difference counts) leaves the host its reserve.
 */
export function checkBudget(host: HostMemory, running: readonly GuestShare[], asked: GuestShare): BudgetCheck {
  const current = running.find((share) => share.guest === asked.guest);
  const needMiB = current ? asked.memory - current.memory : asked.memory + EMULATOR_OVERHEAD_MiB;
  const leftMiB = Math.round(host.freeMiB - needMiB);
  const reserveMiB = hostReserve(host.totalMiB);
  const check: BudgetCheck = { needMiB, leftMiB, reserveMiB, overcommit: needMiB > 0 && leftMiB < reserveMiB };
  if (check.overcommit) {
    check.warning =
      `${asked.guest} with ${asked.memory} MiB would leave this computer ${Math.max(0, leftMiB)} MiB free of ${Math.round(host.totalMiB)} MiB ` +
      `(less than the ${reserveMiB} MiB it keeps for itself): it may slow down, or stop programs`;
  }
  return check;
}

export interface BarSegment {
  kind: "guest" | "asked" | "other" | "free";
  /** The guest's name, for a guest's segment. */
  guest?: string;
  mib: number;
}

/**
 * The host's RAM as one bar: each running guest's share (the one being set at its asked
 * size), a guest about to start, the rest of the host's programs, and what stays free. The
 * segments add up to the host's total, or more when the asked size overcommits it.
 */
export function memoryBar(host: HostMemory, running: readonly GuestShare[], asked?: GuestShare): BarSegment[] {
  const guestsMiB = running.reduce((sum, share) => sum + share.memory, 0);
  const other = Math.max(0, host.totalMiB - host.freeMiB - guestsMiB);
  const segments: BarSegment[] = running.map((share) =>
    share.guest === asked?.guest ? { kind: "asked", guest: share.guest, mib: asked.memory } : { kind: "guest", guest: share.guest, mib: share.memory },
  );
  const starting = asked !== undefined && !running.some((share) => share.guest === asked.guest);
  if (starting) segments.push({ kind: "asked", guest: asked.guest, mib: asked.memory });
  segments.push({ kind: "other", mib: other });
  const current = asked ? running.find((share) => share.guest === asked.guest) : undefined;
  const change = asked ? (current ? asked.memory - current.memory : asked.memory) : 0;
  segments.push({ kind: "free", mib: Math.max(0, host.freeMiB - change) });
  return segments;
}
