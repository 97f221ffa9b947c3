// A host folder's own identity for a guest's saved 9P session: a random id kept in a hidden file
// at the folder's root (.unmachine-attrs.id, never shown to the guest). It moves and is copied
// with the folder (mv, cp -a, a moved data or cache folder) and is new in a folder made again at
// the same path, so a suspended guest's files are found again in its folder wherever it now is.
// A writable share is given one when first served; a read-only one (a guest's built root) only
// by whoever owns it (giveFolderId, before its state is kept).

import { constants } from "node:fs";
import { randomUUID } from "node:crypto";
import * as fsp from "node:fs/promises";
import { ATTRS_FILE } from "./attr-store.js";
import { hostDescriptors, HeldDir } from "./host-dir.js";

/** The id's file in the folder's root (hidden from the guest with the attribute store's files). */
export const FOLDER_ID_FILE = `${ATTRS_FILE}.id`;

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function readId(root: HeldDir): Promise<string | undefined> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(root.at(FOLDER_ID_FILE), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > 64) return undefined;
    const id = (await handle.readFile("utf8")).trim();
    return ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * The folder's id, made (and synced) the first time if `create` and the folder is writable.
 * Undefined if it has none and cannot have one (read-only, or a damaged id file): the caller
 * then names the folder by its path and inode.
 */
export async function folderId(root: HeldDir, create: boolean): Promise<string | undefined> {
  const found = await readId(root);
  if (found !== undefined || !create) return found;
  const id = randomUUID();
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(root.at(FOLDER_ID_FILE), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o600);
  } catch {
    // Made by another server of the same folder meanwhile, or not writable.
    return readId(root);
  }
  try {
    await handle.writeFile(`${id}\n`);
    await handle.sync();
  } catch {
    await fsp.unlink(root.at(FOLDER_ID_FILE)).catch(() => undefined);
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
  return id;
}

/** Gives the folder at `path` an id if it has none (for a folder the app owns, such as a built
 * guest's root, shared read-only); resolves with it. */
export async function giveFolderId(path: string): Promise<string | undefined> {
  const root = await HeldDir.open(hostDescriptors, path);
  try {
    return await folderId(root, true);
  } finally {
    await root.close();
  }
}
