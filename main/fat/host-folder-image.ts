// A host folder as a read-only FAT drive for guests without 9P (DOS, Windows 9x): scans the
// folder once and hands the tree to core/fat/image.ts, which computes sectors on the fly.
// Snapshot semantics: names, sizes and the layout are fixed at attach; a file changed later reads
// as it is now, cut or zero-padded to its attach-time size; a file removed or replaced reads as
// zeros. Symlinks are skipped (none is followed), as are devices, FIFOs and sockets.

import { accessSync, closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, statSync, type Stats } from "node:fs";
import { basename, join } from "node:path";
import type { Disposable } from "../../core/disposable.js";
import { buildFatImage, type FatImage, type FatImageOptions } from "../../core/fat/image.js";
import { FatError, MAX_FAT_FILE, type FatDirectory, type FatFile, type FatNode } from "../../core/fat/tree.js";

export interface HostFolderImageOptions extends FatImageOptions {
  /** Most files and directories the folder may hold; 65536 unless given. */
  readonly maxEntries?: number;
  /** Deepest nesting below the folder; 32 unless given. */
  readonly maxDepth?: number;
  /** Most bytes the files may hold together; 2 GiB unless given. */
  readonly maxBytes?: number;
  /** Files kept open between reads; 16 unless given. */
  readonly openFiles?: number;
  /** Told, once per file, when a file cannot be read after attach (the guest then reads zeros). */
  readonly onReadError?: (path: string, error: Error) => void;
}

/** Something in the folder the guest will not see, and why. */
export interface SkippedEntry {
  /** Relative to the folder, with "/" separators. */
  readonly path: string;
  readonly reason: string;
}

export interface HostFolderImage extends FatImage, Disposable {
  readonly folder: string;
  readonly skipped: readonly SkippedEntry[];
}

const DEFAULTS = { maxEntries: 65536, maxDepth: 32, maxBytes: 2 * 1024 ** 3, openFiles: 16 } as const;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = constants.O_NONBLOCK ?? 0;

function sizeText(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/** Open file descriptors by path, least recently used closed first; each checked to be the scanned file. */
class FdCache implements Disposable {
  readonly #fds = new Map<string, number>();
  readonly #capacity: number;
  #disposed = false;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  /** The fd for `path` if it is still the regular file (same device and inode) seen at attach. */
  get(path: string, scanned: Stats): number {
    if (this.#disposed) throw new Error(`the FAT image of ${path} was closed`);
    const cached = this.#fds.get(path);
    if (cached !== undefined) {
      this.#fds.delete(path);
      this.#fds.set(path, cached);
      return cached;
    }
    const fd = openSync(path, constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    try {
      const now = fstatSync(fd);
      if (!now.isFile() || now.ino !== scanned.ino || now.dev !== scanned.dev) {
        throw new Error(`${path} was replaced after the folder was attached`);
      }
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    if (this.#fds.size >= this.#capacity) {
      const [oldest, oldFd] = this.#fds.entries().next().value!;
      this.#fds.delete(oldest);
      closeSync(oldFd);
    }
    this.#fds.set(path, fd);
    return fd;
  }

  /** Forgets (and closes) the fd of a file that failed, so the next read opens it afresh. */
  drop(path: string): void {
    const fd = this.#fds.get(path);
    if (fd === undefined) return;
    this.#fds.delete(path);
    closeSync(fd);
  }

  dispose(): void {
    this.#disposed = true;
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}

/**
 * Scans `folder` and builds its FAT image. Throws FatError naming the folder when it is missing,
 * not a folder, or over a limit; entries the guest cannot be given are listed in `skipped`.
 */
export function openHostFolderImage(folder: string, options: HostFolderImageOptions = {}): HostFolderImage {
  const limits = {
    maxEntries: options.maxEntries ?? DEFAULTS.maxEntries,
    maxDepth: options.maxDepth ?? DEFAULTS.maxDepth,
    maxBytes: options.maxBytes ?? DEFAULTS.maxBytes,
  };
  let rootStat: Stats;
  try {
    rootStat = statSync(folder);
  } catch (error) {
    const code = errorCode(error);
    throw new FatError(code === "ENOENT" ? `${folder}: no such folder to attach as a FAT drive` : `${folder}: cannot be read (${code})`);
  }
  if (!rootStat.isDirectory()) throw new FatError(`${folder}: is not a folder; a FAT drive is made from a folder`);

  const fds = new FdCache(options.openFiles ?? DEFAULTS.openFiles);
  const skipped: SkippedEntry[] = [];
  /** Files whose read failed, so a guest reading one sector by sector is reported once. */
  const reported = new Set<string>();
  let entries = 0;
  let bytes = 0;

  const hostFile = (path: string, name: string, st: Stats): FatFile => ({
    kind: "file",
    name,
    size: st.size,
    mtime: st.mtimeMs,
    read: (offset, length) => {
      const out = new Uint8Array(length);
      let done = 0;
      try {
        const fd = fds.get(path, st);
        while (done < length) {
          const n = readSync(fd, out, done, length - done, offset + done);
          if (n === 0) break;
          done += n;
        }
      } catch (error) {
        fds.drop(path);
        if (!reported.has(path)) {
          reported.add(path);
          options.onReadError?.(path, error as Error);
        }
      }
      return out;
    },
  });

  const scan = (dir: string, relative: string, depth: number, mtime: number): FatDirectory => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (error) {
      if (relative === "") throw new FatError(`${folder}: cannot be listed (${errorCode(error)})`);
      skipped.push({ path: relative, reason: `cannot be listed (${errorCode(error)})` });
      return { kind: "directory", name: basename(dir), mtime, children: [] };
    }
    const children: FatNode[] = [];
    for (const name of names) {
      const path = join(dir, name);
      const rel = relative === "" ? name : `${relative}/${name}`;
      let st: Stats;
      try {
        st = lstatSync(path);
      } catch (error) {
        skipped.push({ path: rel, reason: `cannot be examined (${errorCode(error)})` });
        continue;
      }
      if (st.isSymbolicLink()) {
        skipped.push({ path: rel, reason: "symbolic link (links are not followed)" });
        continue;
      }
      if (!st.isFile() && !st.isDirectory()) {
        skipped.push({ path: rel, reason: "not a regular file or folder (device, FIFO or socket)" });
        continue;
      }
      if (++entries > limits.maxEntries) {
        throw new FatError(`${folder}: holds more than ${limits.maxEntries} files and folders, the most a FAT drive is made of here; attach a smaller folder`);
      }
      if (st.isDirectory()) {
        if (depth + 1 > limits.maxDepth) {
          throw new FatError(`${folder}: "${rel}" is nested more than ${limits.maxDepth} folders deep; attach a folder with a shallower tree`);
        }
        children.push(scan(path, rel, depth + 1, st.mtimeMs));
        continue;
      }
      if (st.size > MAX_FAT_FILE) {
        skipped.push({ path: rel, reason: `${sizeText(st.size)} is more than a FAT file can hold (4 GiB - 1 byte)` });
        continue;
      }
      try {
        accessSync(path, constants.R_OK);
      } catch (error) {
        skipped.push({ path: rel, reason: `not readable (${errorCode(error)})` });
        continue;
      }
      bytes += st.size;
      if (bytes > limits.maxBytes) {
        throw new FatError(
          `${folder}: its files hold more than ${sizeText(limits.maxBytes)}, the most a FAT drive is made of here; attach a smaller folder`,
        );
      }
      children.push(hostFile(path, name, st));
    }
    return { kind: "directory", name: basename(dir), mtime, children };
  };

  const tree = scan(folder, "", 0, rootStat.mtimeMs);
  let image: FatImage;
  try {
    image = buildFatImage(tree, { label: basename(folder), ...options });
  } catch (error) {
    if (error instanceof FatError) throw new FatError(`${folder}: ${error.message}`);
    throw error;
  }
  return {
    size: image.size,
    geometry: image.geometry,
    volumeOffset: image.volumeOffset,
    fileBytes: image.fileBytes,
    freeClusters: image.freeClusters,
    read: (offset, length) => image.read(offset, length),
    folder,
    skipped,
    dispose: () => fds.dispose(),
  };
}
