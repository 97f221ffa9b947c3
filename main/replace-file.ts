// Putting a file in place whole: written aside, synced, renamed over the old one, the folder
// synced. A crash or a kill at any point leaves the old file or the new one, never a mix. The
// one helper for every such write (overlay compaction, disk export, saved states).

import { closeSync, constants, fdatasyncSync, openSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";

/** Syncs a folder, so a rename in it survives a crash. */
export function syncFolder(folder: string): void {
  if (process.platform === "win32") return;
  const fd = openSync(folder, constants.O_RDONLY);
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Fills a file written aside (`fd`, open on `aside`) with `write`, then puts it in `target`'s
 * place whole: synced, renamed, the folder synced. A failure removes the file aside and leaves
 * `target` as it was.
 */
export function replaceWith(fd: number, aside: string, target: string, write: () => void): void {
  try {
    write();
    fdatasyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(aside, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(aside, target);
  syncFolder(dirname(target));
}
