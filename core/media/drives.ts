// Removable drives whose media a user swaps while the guest runs: the floppy drive (A:) and
// the CD drive. Which detected images fit which drive, with a message that says what fits.

import { ImageError, type DetectedImage } from "./detect.js";

export const SWAP_DRIVES = ["fda", "cdrom"] as const;
export type SwapDrive = (typeof SWAP_DRIVES)[number];

export const DRIVE_NAMES: Record<SwapDrive, string> = { fda: "floppy drive", cdrom: "CD drive" };

export function isSwapDrive(value: unknown): value is SwapDrive {
  return typeof value === "string" && (SWAP_DRIVES as readonly string[]).includes(value);
}

/** Checks that an image fits the drive: a floppy image for the floppy drive, an ISO for the CD drive. */
export function checkFitsDrive(detected: DetectedImage, drive: SwapDrive, name: string): void {
  const fits = drive === "fda" ? detected.kind === "floppy" : detected.kind === "cdrom";
  if (!fits) {
    const expected = drive === "fda" ? "a floppy disk image" : "a CD/ISO image";
    throw new ImageError(`${name}: a ${detected.description} does not go in the ${DRIVE_NAMES[drive]}; expected ${expected}`);
  }
}
