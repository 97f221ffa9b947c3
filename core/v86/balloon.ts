// The virtio-balloon: how much of a running guest's RAM it is lent back, live. v86's device
// (libv86's "virtio-balloon") holds a target in 4 KiB pages (num_pages) that the guest's driver
// inflates to, and counts what it holds (actual); Linux takes inflated pages out of MemTotal.
// One rule for every runtime: the guest keeps at least BALLOON_FLOOR_MiB and at most its boot RAM.

export const BALLOON_PAGE_BYTES = 4096;
const PAGES_PER_MiB = (1024 * 1024) / BALLOON_PAGE_BYTES;
/**
 * The least RAM a ballooned guest keeps, counted like its boot RAM. Measured with the tiny guest
 * (a Debian 686 kernel and a busybox initramfs held in RAM): its MemTotal is about 31 MiB below
 * its boot RAM; at 64 MiB it has about 31 MiB and answers as usual; at 48 (15 MiB) it stalls.
 */
export const BALLOON_FLOOR_MiB = 64;

/** The virtio status bit a guest's driver sets once it runs the device (virtio 1.x §2.1). */
const DRIVER_OK = 4;

export class BalloonError extends Error {
  override name = "BalloonError";
}

/** What the balloon can give a guest booted with `bootMiB`: from the floor (or all of it, if less) to all of it. */
export function balloonRange(bootMiB: number): { min: number; max: number } {
  return { min: Math.min(BALLOON_FLOOR_MiB, bootMiB), max: bootMiB };
}

/** The pages the balloon must hold so the guest has `wantedMiB`, kept within balloonRange. */
export function balloonTarget(bootMiB: number, wantedMiB: number): { pages: number; memory: number } {
  const { min, max } = balloonRange(bootMiB);
  const memory = Math.min(max, Math.max(min, Math.round(wantedMiB)));
  return { pages: (bootMiB - memory) * PAGES_PER_MiB, memory };
}

/** The part of v86's balloon device this uses (its typings do not list the device). */
interface V86BalloonDevice {
  num_pages: number;
  actual: number;
  Inflate(pages: number): void;
  Deflate(pages: number): void;
  virtio: { device_status: number };
}

interface V86Internals {
  v86?: { cpu?: { devices?: { virtio_balloon?: V86BalloonDevice } } };
}

function device(emulator: object): V86BalloonDevice | undefined {
  return (emulator as V86Internals).v86?.cpu?.devices?.virtio_balloon;
}

/** What the guest has now: its boot RAM less what the balloon holds, in MiB. */
export function balloonMemory(emulator: object, bootMiB: number): number | undefined {
  const balloon = device(emulator);
  return balloon ? bootMiB - Math.round(balloon.actual / PAGES_PER_MiB) : undefined;
}

/**
 * Asks the guest to keep `wantedMiB` of its `bootMiB`: the balloon inflates (takes RAM back) or
 * deflates (gives it back). Throws a BalloonError, saying why, when the machine has no balloon,
 * the guest has no driver running it, or the size is out of range. Returns the MiB asked for.
 */
export function setBalloon(emulator: object, bootMiB: number, wantedMiB: number): number {
  const balloon = device(emulator);
  if (!balloon) throw new BalloonError("this guest has no balloon device (its profile does not say its kernel has the driver)");
  if ((balloon.virtio.device_status & DRIVER_OK) === 0) throw new BalloonError("the guest's balloon driver is not running (not loaded yet, or the guest has none)");
  const { min, max } = balloonRange(bootMiB);
  if (!Number.isInteger(wantedMiB) || wantedMiB < min || wantedMiB > max) {
    throw new BalloonError(`memory must be a whole number of MiB from ${min} to ${max} (its boot RAM), got ${String(wantedMiB)}`);
  }
  const { pages } = balloonTarget(bootMiB, wantedMiB);
  const change = pages - balloon.num_pages;
  if (change > 0) balloon.Inflate(change);
  else if (change < 0) balloon.Deflate(-change);
  return wantedMiB;
}
