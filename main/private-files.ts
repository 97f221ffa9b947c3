// The host's own files in the user's folders (settings, console logs, control sockets, 9P
// attribute stores): folders are made 0700 and files 0600 whatever the umask, and a whole-file
// write is atomic: a temporary file beside it (O_EXCL, 0600), fsync, rename, fsync the folder.
// Temporary files a killed writer left behind are swept on the next write or read.

import { closeSync, constants, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync, chmodSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Flags for a new private file: never through a symlink, never an existing file. */
export const CREATE_PRIVATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

/** A temporary file older than this belongs to no running write, whoever made it. */
const TEMP_STALE_MS = 10 * 60 * 1000;

export class PrivateFolderError extends Error {
  override name = "PrivateFolderError";
}

/** Makes a folder and any missing parents, each made 0700 (parents that exist are left as they are). */
export function makePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Makes `path` (its parent must exist) as a folder only this user can enter, or checks that
 * the one already there is one (see checkPrivateDir). The last step is never recursive, so a
 * folder someone else made first is found and refused, never used.
 */
export function ensurePrivateDir(path: string, what = "folder"): void {
  let made = false;
  try {
    mkdirSync(path, { mode: PRIVATE_DIR_MODE });
    made = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  // A umask such as 0o100 could have taken bits from the mode asked for.
  if (made) chmodSync(path, PRIVATE_DIR_MODE);
  checkPrivateDir(path, what);
}

/** Throws unless `path` is a real folder (not a symlink) owned by this user with mode 0700. */
export function checkPrivateDir(path: string, what = "folder"): void {
  const st = lstatSync(path);
  const refuse = (why: string): never => {
    throw new PrivateFolderError(`the ${what} ${path} is not a private folder of this user (${why}); remove it and try again`);
  };
  if (st.isSymbolicLink()) refuse("it is a symlink");
  if (!st.isDirectory()) refuse("it is not a folder");
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) refuse(`it belongs to uid ${st.uid}`);
  const mode = st.mode & 0o777;
  if (mode !== PRIVATE_DIR_MODE) refuse(`mode ${mode.toString(8).padStart(4, "0")}`);
}

function tempName(path: string): string {
  return join(dirname(path), `${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temporary files of `path` (`<name>.<pid>[.<8 hex>].tmp` beside it) whose writer
 * is gone or which are too old to belong to a write under way. Nothing else is touched.
 */
export function sweepTemps(path: string): void {
  // Exactly the names tempName() makes, and the older writers' <name>.<pid>.tmp.
  const pattern = new RegExp(`^${escapeRegExp(basename(path))}\\.(\\d+)(?:\\.[0-9a-f]{8})?\\.tmp$`);
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return; // no folder yet: nothing left behind
  }
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match) continue;
    const temp = join(dirname(path), name);
    try {
      const st = lstatSync(temp);
      const stale = !processAlive(Number(match[1])) || Date.now() - st.mtimeMs > TEMP_STALE_MS;
      if (stale && !st.isDirectory()) unlinkSync(temp);
    } catch {
      // gone already, or not ours to remove
    }
  }
}

function syncFolder(path: string): void {
  if (process.platform === "win32") return;
  const fd = openSync(dirname(path), constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `path` with `data` as a whole, 0600; a crash leaves the old file or the new one. */
export function writePrivateFileAtomic(path: string, data: string | Uint8Array): void {
  sweepTemps(path);
  const temp = tempName(path);
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const fd = openSync(temp, CREATE_PRIVATE, PRIVATE_FILE_MODE);
  try {
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // never made, or already renamed
    }
    throw error;
  }
  syncFolder(path);
}

/** The same for callers that must not block: `path`'s temporary files are not swept here. */
export async function writePrivateFileAtomicAsync(path: string, data: string | Uint8Array): Promise<void> {
  const temp = tempName(path);
  const handle = await fsp.open(temp, CREATE_PRIVATE, PRIVATE_FILE_MODE);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temp, path);
  } catch (error) {
    await fsp.unlink(temp).catch(() => undefined);
    throw error;
  }
  if (process.platform === "win32") return;
  const folder = await fsp.open(dirname(path), constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
