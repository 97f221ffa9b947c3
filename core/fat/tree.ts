// What a FAT image is built from: a tree of directories and files, each with a host name, a
// size, an mtime and (for files) a read callback. Counterpart: main/fat/host-folder-image.ts
// builds one from a host folder; tests build them in memory. Invariants: a file's size is fixed
// when the tree is built, and `read` may return fewer bytes (the image pads with zeros).

/** A file: `read(offset, length)` returns up to `length` bytes starting at `offset`. */
export interface FatFile {
  readonly kind: "file";
  readonly name: string;
  readonly size: number;
  /** Milliseconds since the Unix epoch. */
  readonly mtime: number;
  readonly read: (offset: number, length: number) => Uint8Array;
}

export interface FatDirectory {
  readonly kind: "directory";
  readonly name: string;
  /** Milliseconds since the Unix epoch. */
  readonly mtime: number;
  readonly children: readonly FatNode[];
}

export type FatNode = FatFile | FatDirectory;

/** A tree, an option or a name that cannot become a FAT volume; the message names which. */
export class FatError extends Error {
  override name = "FatError";
}

/** The largest file FAT can describe: the size field is 32 bits. */
export const MAX_FAT_FILE = 0xffff_ffff;

/** A file whose bytes are already in memory (small trees, floppies, tests). */
export function fileFromBytes(name: string, bytes: Uint8Array, mtime: number): FatFile {
  return {
    kind: "file",
    name,
    size: bytes.length,
    mtime,
    read: (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)),
  };
}

export function directory(name: string, children: readonly FatNode[], mtime: number): FatDirectory {
  return { kind: "directory", name, mtime, children };
}
