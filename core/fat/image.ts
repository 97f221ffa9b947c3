// A FAT disk image computed on the fly, like QEMU's vvfat: building it names every entry, assigns
// each directory and file one contiguous cluster run and keeps only small tables (directories'
// entries, the run list); `read(offset, length)` then derives any sector from them, reading file
// bytes through the tree's callbacks. Counterpart: main/fat/host-folder-image.ts feeds it a host
// folder. Invariants: read-only; sizes fixed at build; a short file read is padded with zeros.

import { bootSector, fsInfoSector, mbrSector, BACKUP_BOOT_SECTOR } from "./boot.js";
import { Attr, ENTRY_SIZE, dosTime, entryCount, nameEntries, shortEntry, type DosTime } from "./entries.js";
import { FatOffsets, SECTOR, floppyGeometry, hardDiskGeometry, type FatBits, type FatGeometry, type VolumeNeeds } from "./geometry.js";
import { directoryNames, type DirectoryName } from "./names.js";
import { FatError, MAX_FAT_FILE, type FatDirectory, type FatFile, type FatNode } from "./tree.js";

/** A disk as a block device sees it: a fixed size and random reads. */
export interface DiskImage {
  readonly size: number;
  /** `length` bytes from `offset`; the range must lie inside the image. */
  read(offset: number, length: number): Uint8Array;
}

export interface FatImage extends DiskImage {
  readonly geometry: FatGeometry;
  /** Byte offset of the FAT volume on the disk: 63 * 512 on a hard disk, 0 on a floppy. */
  readonly volumeOffset: number;
  /** Bytes the tree's files hold. */
  readonly fileBytes: number;
  /** Clusters left free for the guest. */
  readonly freeClusters: number;
}

export interface FatImageOptions {
  /** A partitioned hard disk (the default) or a bare FAT12 floppy (1.44 MB, else 2.88 MB). */
  readonly layout?: "harddisk" | "floppy";
  /** Forces FAT16 or FAT32 on a hard disk; by default FAT16 while the disk stays under 504 MiB. */
  readonly fatBits?: 16 | 32;
  /** Free space left on a hard disk; by default 10% of the tree, at least 16 MiB. */
  readonly freeBytes?: number;
  /** Volume label, up to 11 characters (upper-cased, invalid characters become "_"). */
  readonly label?: string;
  /** Volume serial number; by default a hash of the tree's names, sizes and times. */
  readonly volumeId?: number;
  /** DOS times in UTC instead of local time (DOS and Windows keep local time). */
  readonly utc?: boolean;
}

/** A directory holds at most 65536 entries (fatgen103, "FAT Directory Structure"). */
export const MAX_DIRECTORY_ENTRIES = 65536;
const MiB = 1024 * 1024;
const DEFAULT_MIN_FREE = 16 * MiB;
const DEFAULT_MAX_MATERIALIZE = 256 * MiB;

interface PlannedFile {
  readonly kind: "file";
  readonly node: FatFile;
  readonly name: DirectoryName;
  firstCluster: number;
}

interface PlannedDirectory {
  readonly kind: "directory";
  readonly node: FatDirectory;
  /** Undefined for the root. */
  readonly name: DirectoryName | undefined;
  readonly path: string;
  readonly children: (PlannedFile | PlannedDirectory)[];
  /** 32-byte entries, "." and ".." (and the root's label) included. */
  readonly entries: number;
  firstCluster: number;
  bytes: Uint8Array;
}

/** One contiguous cluster run: a directory's entries or a file's bytes. */
interface Run {
  readonly first: number;
  readonly count: number;
  readonly directory?: PlannedDirectory;
  readonly file?: FatFile;
}

function childPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

function planDirectory(node: FatDirectory, name: DirectoryName | undefined, path: string, hasLabel: boolean): PlannedDirectory {
  const names = directoryNames(node.children.map((c) => c.name), path);
  const children = node.children.map((child, i): PlannedFile | PlannedDirectory => {
    const n = names[i]!;
    const where = childPath(path, child.name);
    if (child.kind === "directory") return planDirectory(child, n, where, false);
    if (!Number.isSafeInteger(child.size) || child.size < 0 || child.size > MAX_FAT_FILE) {
      throw new FatError(`${where}: size ${child.size} is not a FAT file size (0 to ${MAX_FAT_FILE} bytes)`);
    }
    return { kind: "file", node: child, name: n, firstCluster: 0 };
  });
  const own = name === undefined ? (hasLabel ? 1 : 0) : 2;
  const entries = own + names.reduce((sum, n) => sum + entryCount(n), 0);
  if (entries > MAX_DIRECTORY_ENTRIES) {
    throw new FatError(
      `${path}: ${node.children.length} names take ${entries} directory entries; a FAT directory holds at most ${MAX_DIRECTORY_ENTRIES} (a long name takes one more per 13 characters)`,
    );
  }
  return { kind: "directory", node, name, path, children, entries, firstCluster: 0, bytes: new Uint8Array(0) };
}

function* walk(dir: PlannedDirectory): Generator<PlannedFile | PlannedDirectory> {
  for (const child of dir.children) {
    yield child;
    if (child.kind === "directory") yield* walk(child);
  }
}

/** The label as the BPB and the label entry hold it: 11 upper-case characters, space padded. */
function labelField(label: string | undefined): string | undefined {
  if (label === undefined || label.trim() === "") return undefined;
  let out = "";
  for (const ch of label.trim().toUpperCase()) {
    if (out.length === 11) break;
    out += /^[A-Z0-9 $%'\-_@~`!(){}^#&]$/.test(ch) ? ch : "_";
  }
  return out.padEnd(11, " ");
}

/** FNV-1a over the tree's names, sizes and times: the same tree gets the same serial number. */
function treeHash(dir: FatDirectory): number {
  let h = 0x811c9dc5;
  const mix = (text: string): void => {
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  };
  const visit = (d: FatDirectory): void => {
    for (const c of d.children) {
      mix(`${c.name}\0${c.kind === "file" ? c.size : "/"}\0${c.mtime}\0`);
      if (c.kind === "directory") visit(c);
    }
  };
  visit(dir);
  return h >>> 0;
}

/** Builds the image for a tree; throws FatError naming the path or limit when it cannot. */
export function buildFatImage(tree: FatDirectory | readonly FatNode[], options: FatImageOptions = {}): FatImage {
  const rootNode: FatDirectory = Array.isArray(tree)
    ? { kind: "directory", name: "", mtime: Date.now(), children: tree as readonly FatNode[] }
    : (tree as FatDirectory);
  const label = labelField(options.label);
  const root = planDirectory(rootNode, undefined, "/", label !== undefined);
  const planned = [...walk(root)];
  const directories = [root, ...planned.filter((p): p is PlannedDirectory => p.kind === "directory")];
  const files = planned.filter((p): p is PlannedFile => p.kind === "file");
  const fileBytes = files.reduce((sum, f) => sum + f.node.size, 0);

  const clusters = (clusterBytes: number, bits: FatBits): number => {
    let n = 0;
    for (const f of files) n += Math.ceil(f.node.size / clusterBytes);
    for (const d of directories) {
      if (d === root && bits !== 32) continue;
      n += Math.max(1, Math.ceil((d.entries * ENTRY_SIZE) / clusterBytes));
    }
    return n;
  };
  const freeBytes = options.freeBytes ?? Math.max(DEFAULT_MIN_FREE, Math.ceil(fileBytes / 10));
  if (!Number.isSafeInteger(freeBytes) || freeBytes < 0) throw new FatError(`freeBytes ${freeBytes} is not a byte count`);
  const needs: VolumeNeeds = { clusters, rootEntries: root.entries, freeBytes, ...(options.fatBits ? { fatBits: options.fatBits } : {}) };
  const g = options.layout === "floppy" ? floppyGeometry(needs) : hardDiskGeometry(needs);
  const clusterBytes = g.sectorsPerCluster * SECTOR;

  // Clusters in tree order: each directory's run, then its files, then its subdirectories.
  const runs: Run[] = [];
  let next = 2;
  const place = (count: number, run: Omit<Run, "first" | "count">): number => {
    if (count === 0) return 0;
    const first = next;
    runs.push({ first, count, ...run });
    next += count;
    return first;
  };
  const assign = (d: PlannedDirectory): void => {
    if (d !== root || g.fatBits === 32) {
      d.firstCluster = place(Math.max(1, Math.ceil((d.entries * ENTRY_SIZE) / clusterBytes)), { directory: d });
    }
    for (const c of d.children) if (c.kind === "file") c.firstCluster = place(Math.ceil(c.node.size / clusterBytes), { file: c.node });
    for (const c of d.children) if (c.kind === "directory") assign(c);
  };
  assign(root);
  const usedClusters = next - 2;
  if (usedClusters > g.clusterCount) throw new FatError(`the tree needs ${usedClusters} clusters and the volume has ${g.clusterCount}`);

  const time = (ms: number): DosTime => dosTime(ms, options.utc);
  const fill = (d: PlannedDirectory, parent: PlannedDirectory | undefined): void => {
    const bytes = new Uint8Array(d.entries * ENTRY_SIZE);
    let at = 0;
    const t = time(d.node.mtime);
    if (parent === undefined) {
      if (label !== undefined) {
        bytes.set(shortEntry({ short: label, attr: Attr.VOLUME_ID, cluster: 0, size: 0, time: t }), at);
        at += ENTRY_SIZE;
      }
    } else {
      // ".." of a directory in the root points at cluster 0, even on FAT32 (fatgen103).
      const up = parent === root ? 0 : parent.firstCluster;
      bytes.set(shortEntry({ short: ".          ", attr: Attr.DIRECTORY, cluster: d.firstCluster, size: 0, time: t }), at);
      bytes.set(shortEntry({ short: "..         ", attr: Attr.DIRECTORY, cluster: up, size: 0, time: t }), at + ENTRY_SIZE);
      at += 2 * ENTRY_SIZE;
    }
    for (const c of d.children) {
      const entry = c.kind === "directory"
        ? nameEntries(c.name!, { attr: Attr.DIRECTORY, cluster: c.firstCluster, size: 0, time: time(c.node.mtime) })
        : nameEntries(c.name, { attr: Attr.ARCHIVE, cluster: c.firstCluster, size: c.node.size, time: time(c.node.mtime) });
      bytes.set(entry, at);
      at += entry.length;
    }
    d.bytes = bytes;
    for (const c of d.children) if (c.kind === "directory") fill(c, d);
  };
  fill(root, undefined);

  const volumeId = (options.volumeId ?? treeHash(rootNode)) >>> 0;
  return new ComputedFatImage(g, runs, root.bytes, usedClusters, fileBytes, { volumeId, label: label ?? "NO NAME    " });
}

const EOC: Record<FatBits, number> = { 12: 0xfff, 16: 0xffff, 32: 0x0fffffff };

/** The image: metadata sectors derived from the geometry and the run list, data read through. */
class ComputedFatImage implements FatImage {
  readonly size: number;
  readonly geometry: FatGeometry;
  readonly volumeOffset: number;
  readonly fileBytes: number;
  readonly freeClusters: number;
  readonly #runs: readonly Run[];
  readonly #root: Uint8Array;
  readonly #usedClusters: number;
  readonly #mbr: Uint8Array | undefined;
  readonly #boot: Uint8Array;
  readonly #fsInfo: Uint8Array | undefined;

  constructor(g: FatGeometry, runs: readonly Run[], root: Uint8Array, usedClusters: number, fileBytes: number, id: { volumeId: number; label: string }) {
    this.geometry = g;
    this.size = g.diskSectors * SECTOR;
    this.volumeOffset = g.volumeStart * SECTOR;
    this.fileBytes = fileBytes;
    this.freeClusters = g.clusterCount - usedClusters;
    this.#runs = runs;
    this.#root = root;
    this.#usedClusters = usedClusters;
    this.#mbr = g.partitionType === undefined ? undefined : mbrSector(g, id.volumeId);
    this.#boot = bootSector(g, id);
    this.#fsInfo = g.fatBits === 32 ? fsInfoSector(this.freeClusters, usedClusters + 2) : undefined;
  }

  read(offset: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`FAT image read of ${length} bytes at ${offset} is outside the ${this.size}-byte image`);
    }
    const out = new Uint8Array(length);
    const g = this.geometry;
    const dataStart = (g.volumeStart + FatOffsets.dataStart(g)) * SECTOR;
    const dataEnd = dataStart + g.clusterCount * g.sectorsPerCluster * SECTOR;
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      if (pos >= dataStart && pos < dataEnd) {
        pos += this.#readData(out, pos - offset, pos - dataStart, Math.min(end, dataEnd) - pos);
      } else {
        const sector = Math.floor(pos / SECTOR);
        const within = pos - sector * SECTOR;
        const n = Math.min(SECTOR - within, end - pos);
        const bytes = this.#metadataSector(sector);
        if (bytes) out.set(bytes.subarray(within, within + n), pos - offset);
        pos += n;
      }
    }
    return out;
  }

  /** A sector outside the data region, or undefined when it is all zeros. */
  #metadataSector(sector: number): Uint8Array | undefined {
    const g = this.geometry;
    if (sector < g.volumeStart) return sector === 0 ? this.#mbr : undefined;
    const rel = sector - g.volumeStart;
    if (rel >= g.volumeSectors) return undefined;
    if (rel < g.reservedSectors) {
      if (rel === 0 || (this.#fsInfo && rel === BACKUP_BOOT_SECTOR)) return this.#boot;
      if (rel === 1 || rel === BACKUP_BOOT_SECTOR + 1) return this.#fsInfo;
      return undefined;
    }
    const rootStart = FatOffsets.rootStart(g);
    if (rel < rootStart) return this.#fatSector((rel - g.reservedSectors) % g.fatSectors);
    // The FAT12/16 root region; past the data region's last cluster, the volume's tail is zeros.
    const at = (rel - rootStart) * SECTOR;
    if (rel >= FatOffsets.dataStart(g) || at >= this.#root.length) return undefined;
    return this.#root.subarray(at, at + SECTOR);
  }

  /** The run holding `cluster`, by binary search over the runs in cluster order. */
  #runAt(cluster: number): Run | undefined {
    let lo = 0;
    let hi = this.#runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.#runs[mid]!;
      if (cluster < r.first) hi = mid - 1;
      else if (cluster >= r.first + r.count) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /** FAT entry `n`: the next cluster of its run, end of chain on a run's last cluster, 0 if free. */
  #fatEntry(n: number): number {
    const bits = this.geometry.fatBits;
    if (n === 0) return (EOC[bits] & ~0xff) | this.geometry.media;
    if (n === 1) return EOC[bits];
    if (n >= this.#usedClusters + 2) return 0;
    const run = this.#runAt(n);
    if (!run) return 0;
    return n === run.first + run.count - 1 ? EOC[bits] : n + 1;
  }

  /** Sector `index` of a FAT copy, packed as FAT12 (1.5 bytes), FAT16 or FAT32 entries. */
  #fatSector(index: number): Uint8Array {
    const b = new Uint8Array(SECTOR);
    const start = index * SECTOR;
    const bits = this.geometry.fatBits;
    const limit = this.geometry.clusterCount + 2;
    if (bits === 12) {
      const first = Math.floor((start * 2) / 3);
      const last = Math.floor(((start + SECTOR) * 2) / 3);
      for (let n = first; n <= last && n < limit; n++) {
        const v = this.#fatEntry(n);
        const at = Math.floor((n * 3) / 2) - start;
        const pair = n & 1 ? [(v << 4) & 0xf0, v >> 4] : [v & 0xff, (v >> 8) & 0x0f];
        for (let k = 0; k < 2; k++) if (at + k >= 0 && at + k < SECTOR) b[at + k]! |= pair[k]!;
      }
      return b;
    }
    const width = bits / 8;
    const first = start / width;
    for (let i = 0; i < SECTOR / width && first + i < limit; i++) {
      const v = this.#fatEntry(first + i);
      for (let k = 0; k < width; k++) b[i * width + k] = (v >>> (8 * k)) & 0xff;
    }
    return b;
  }

  /** Copies up to `max` bytes of the data region from `dataPos` into `out`; returns the count. */
  #readData(out: Uint8Array, outAt: number, dataPos: number, max: number): number {
    const clusterBytes = this.geometry.sectorsPerCluster * SECTOR;
    const cluster = 2 + Math.floor(dataPos / clusterBytes);
    const run = this.#runAt(cluster);
    // Runs cover clusters 2 to usedClusters + 1 without gaps: past them all is free space.
    if (!run) return max;
    const runStart = (run.first - 2) * clusterBytes;
    const within = dataPos - runStart;
    const n = Math.min(max, run.count * clusterBytes - within);
    const contentSize = run.file ? run.file.size : run.directory!.bytes.length;
    const wanted = Math.max(0, Math.min(n, contentSize - within));
    if (wanted > 0) {
      const bytes = run.file ? run.file.read(within, wanted) : run.directory!.bytes.subarray(within, within + wanted);
      out.set(bytes.length > wanted ? bytes.subarray(0, wanted) : bytes, outAt);
    }
    return n;
  }
}

/** The whole image in memory, for floppies, small disks and tests; refuses more than `maxBytes`. */
export function materialize(image: DiskImage, maxBytes = DEFAULT_MAX_MATERIALIZE): Uint8Array {
  if (image.size > maxBytes) {
    throw new FatError(`the image is ${(image.size / MiB).toFixed(1)} MiB; only images up to ${(maxBytes / MiB).toFixed(1)} MiB are built in memory`);
  }
  const out = new Uint8Array(image.size);
  for (let at = 0; at < image.size; at += MiB) out.set(image.read(at, Math.min(MiB, image.size - at)), at);
  return out;
}
