// The host's half of a plan's FAT drives (core/guest/launch-plan.ts FatDrive): a host folder
// the guest reads as a read-only FAT hard disk. buildFatDrives sizes each drive when the plan is
// made (the runtime, page or worker, then sees a served disk of that size); the disk service
// opens it again with openFatDrive when the guest starts and serves it block by block.
// The folder is never written: what the guest writes is kept in memory for the run, then dropped.

import { existsSync, statSync } from "node:fs";
import type { DiskRole, FatDrive, LaunchPlan } from "../../core/guest/launch-plan.js";
import { openHostFolderImage, type HostFolderImage } from "./host-folder-image.js";
import { checkShares } from "../host/share-policy.js";

export class FatDriveError extends Error {
  override name = "FatDriveError";
}

const SECTOR = 512;
/** The most a guest may write to a read-only drive in one run, kept in the host's memory. */
export const FAT_DRIVE_WRITES_MAX = 64 * 1024 * 1024;

function scan(drive: FatDrive): HostFolderImage {
  // A sensitive folder (/, home, hidden, system) is offered only as the user confirmed, as over 9P.
  if (drive.share) {
    try {
      checkShares([drive.share], () => drive.from, "It was not confirmed in the app, so the guest does not get it.");
    } catch (error) {
      throw new FatDriveError((error as Error).message);
    }
  }
  if (!existsSync(drive.folder) || !statSync(drive.folder).isDirectory()) throw new FatDriveError(`${drive.from}: ${drive.folder} is not a folder`);
  try {
    return openHostFolderImage(drive.folder);
  } catch (error) {
    throw new FatDriveError(`${drive.from}: ${(error as Error).message}`);
  }
}

/**
 * The plan with each FAT drive built once to learn its size: its medium becomes a served disk
 * of that size, read through the "disk" service. Throws FatDriveError naming the share or flag
 * when a folder is missing or too large.
 */
export function buildFatDrives(plan: LaunchPlan): LaunchPlan {
  const drives = plan.services.fatDrives;
  if (!drives) return plan;
  const media = { ...plan.machine.media };
  const built: Partial<Record<DiskRole, FatDrive>> = {};
  for (const [role, drive] of Object.entries(drives) as [DiskRole, FatDrive][]) {
    const image = scan(drive);
    image.dispose();
    built[role] = { ...drive, size: image.size };
    media[role] = { kind: "served", size: image.size };
  }
  return { ...plan, machine: { ...plan.machine, media }, services: { ...plan.services, fatDrives: built } };
}

/** A built drive as the disk service serves it: the folder's FAT image, the guest's writes in memory. */
export class ServedFatDrive {
  readonly #image: HostFolderImage;
  readonly #written = new Map<number, Uint8Array>();
  readonly #drive: FatDrive;

  constructor(drive: FatDrive) {
    this.#drive = drive;
    const image = scan(drive);
    if (drive.size !== undefined && image.size !== drive.size) {
      image.dispose();
      throw new FatDriveError(`${drive.from}: ${drive.folder} changed while the guest was being started; start it again`);
    }
    this.#image = image;
  }

  /** Fills `out` from `offset`: the guest's own writes where it made them, the folder elsewhere. */
  read(offset: number, out: Uint8Array): void {
    if (offset + out.length > this.#image.size) throw new FatDriveError(`${this.#drive.from}: a read past the end of the drive`);
    out.set(this.#image.read(offset, out.length));
    for (let sector = Math.floor(offset / SECTOR); sector * SECTOR < offset + out.length; sector++) {
      const data = this.#written.get(sector);
      if (!data) continue;
      const from = Math.max(offset, sector * SECTOR);
      const to = Math.min(offset + out.length, (sector + 1) * SECTOR);
      out.set(data.subarray(from - sector * SECTOR, to - sector * SECTOR), from - offset);
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (offset + data.length > this.#image.size) throw new FatDriveError(`${this.#drive.from}: a write past the end of the drive`);
    for (let sector = Math.floor(offset / SECTOR); sector * SECTOR < offset + data.length; sector++) {
      let block = this.#written.get(sector);
      if (!block) {
        if ((this.#written.size + 1) * SECTOR > FAT_DRIVE_WRITES_MAX) {
          throw new FatDriveError(`${this.#drive.from}: the guest wrote more than ${FAT_DRIVE_WRITES_MAX / 2 ** 20} MiB to its read-only drive`);
        }
        block = new Uint8Array(SECTOR);
        this.read(sector * SECTOR, block);
        this.#written.set(sector, block);
      }
      const from = Math.max(offset, sector * SECTOR);
      const to = Math.min(offset + data.length, (sector + 1) * SECTOR);
      block.set(data.subarray(from - offset, to - offset), from - sector * SECTOR);
    }
  }

  flush(): void {}

  close(): void {
    this.#written.clear();
    this.#image.dispose();
  }
}
