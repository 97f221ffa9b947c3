// Volume geometry: FAT type, cluster size, FAT and root sizes, partition placement, CHS shape.
// Counterpart: core/fat/boot.ts writes these numbers, core/fat/image.ts maps sectors with them.
// Invariants: a hard disk is whole 16 x 63 cylinders, partition at sector 63; cluster counts sit
// well inside their FAT type's range (fatgen103, "FAT Type Determination"); FAT16 while the disk
// fits the 1024 cylinders CHS reaches (504 MiB), FAT32 (LBA) above unless FAT16 is forced.

import { FatError } from "./tree.js";

export const SECTOR = 512;
export const HEADS = 16;
export const SECTORS_PER_TRACK = 63;
/** The partition starts on the second track, as DOS FDISK puts it. */
export const PARTITION_START = SECTORS_PER_TRACK;
const CYLINDER = HEADS * SECTORS_PER_TRACK;
/** The last cylinder a CHS address reaches. */
const CHS_CYLINDERS = 1024;

export const PartitionType = {
  /** FAT16 with fewer than 65536 sectors. */
  FAT16_SMALL: 0x04,
  FAT16: 0x06,
  FAT32_LBA: 0x0c,
  /** FAT16 reaching past cylinder 1023 (only when FAT16 is forced on a large tree). */
  FAT16_LBA: 0x0e,
} as const;

export type FatBits = 12 | 16 | 32;

/** Cluster counts per FAT type (fatgen103), kept 16 clusters away from either edge as it advises. */
const MIN_CLUSTERS: Record<FatBits, number> = { 12: 1, 16: 4085 + 16, 32: 65525 + 16 };
const MAX_CLUSTERS: Record<FatBits, number> = { 12: 4084 - 16, 16: 65524 - 16, 32: 0x0ffffff5 };
const MAX_CLUSTER_BYTES = 32 * 1024;

export interface FatGeometry {
  readonly fatBits: FatBits;
  /** Sectors of the whole disk (a floppy is all volume). */
  readonly diskSectors: number;
  /** First sector of the volume on the disk: 63 on a hard disk, 0 on a floppy. */
  readonly volumeStart: number;
  readonly volumeSectors: number;
  /** MBR partition type; undefined on a floppy, which has no MBR. */
  readonly partitionType: number | undefined;
  readonly heads: number;
  readonly sectorsPerTrack: number;
  readonly media: number;
  readonly sectorsPerCluster: number;
  readonly reservedSectors: number;
  /** Sectors of one FAT copy; there are two. */
  readonly fatSectors: number;
  /** Root directory entries (FAT12/16); 0 on FAT32, whose root is a cluster chain. */
  readonly rootEntries: number;
  readonly rootSectors: number;
  /** Data clusters, numbered 2 to clusterCount + 1. */
  readonly clusterCount: number;
}

/** What a tree needs, asked per cluster size since directories and files round up to clusters. */
export interface VolumeNeeds {
  /** Data clusters the tree takes at this cluster size (FAT16 root excluded, FAT32 root included). */
  readonly clusters: (clusterBytes: number, fatBits: FatBits) => number;
  /** Entries in the root directory (volume label and long-name entries included). */
  readonly rootEntries: number;
  /** Free space to leave for the guest. */
  readonly freeBytes: number;
  /** Forces a FAT type on a hard disk. */
  readonly fatBits?: 16 | 32;
}

export const FatOffsets = {
  fatStart: (g: FatGeometry): number => g.reservedSectors,
  rootStart: (g: FatGeometry): number => g.reservedSectors + 2 * g.fatSectors,
  dataStart: (g: FatGeometry): number => g.reservedSectors + 2 * g.fatSectors + g.rootSectors,
} as const;

function bytesPerEntry(bits: FatBits): number {
  return bits / 8;
}

/** FAT sectors for `total` volume sectors: grown until the FAT covers every cluster that fits. */
function fitFat(bits: FatBits, total: number, reserved: number, rootSectors: number, spc: number): { fatSectors: number; clusters: number } {
  let fatSectors = 1;
  for (;;) {
    const clusters = Math.floor((total - reserved - rootSectors - 2 * fatSectors) / spc);
    const need = Math.ceil(((clusters + 2) * bytesPerEntry(bits)) / SECTOR);
    if (need <= fatSectors) return { fatSectors, clusters };
    fatSectors = need;
  }
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A hard disk layout for one FAT type and cluster size, or undefined if the count falls outside the type. */
function tryHardDisk(needs: VolumeNeeds, bits: 16 | 32, clusterBytes: number): FatGeometry | undefined {
  const spc = clusterBytes / SECTOR;
  const reserved = bits === 32 ? 32 : 1;
  const rootEntries = bits === 32 ? 0 : Math.max(512, roundUp(needs.rootEntries, SECTOR / 32));
  if (rootEntries > 0xffff) return undefined;
  const rootSectors = (rootEntries * 32) / SECTOR;
  const wanted = Math.max(needs.clusters(clusterBytes, bits) + Math.ceil(needs.freeBytes / clusterBytes), MIN_CLUSTERS[bits]);
  const fatGuess = Math.ceil(((wanted + 2) * bytesPerEntry(bits)) / SECTOR);
  let diskSectors = roundUp(PARTITION_START + reserved + 2 * fatGuess + rootSectors + wanted * spc, CYLINDER);
  let fit = fitFat(bits, diskSectors - PARTITION_START, reserved, rootSectors, spc);
  while (fit.clusters < wanted) {
    diskSectors += CYLINDER;
    fit = fitFat(bits, diskSectors - PARTITION_START, reserved, rootSectors, spc);
  }
  const volumeSectors = diskSectors - PARTITION_START;
  const { fatSectors, clusters } = fit;
  if (clusters > MAX_CLUSTERS[bits]) return undefined;
  const partitionType = bits === 32 ? PartitionType.FAT32_LBA
    : diskSectors > CHS_CYLINDERS * CYLINDER ? PartitionType.FAT16_LBA
    : volumeSectors < 0x10000 ? PartitionType.FAT16_SMALL : PartitionType.FAT16;
  return {
    fatBits: bits, diskSectors, volumeStart: PARTITION_START, volumeSectors, partitionType,
    heads: HEADS, sectorsPerTrack: SECTORS_PER_TRACK, media: 0xf8,
    sectorsPerCluster: spc, reservedSectors: reserved, fatSectors, rootEntries, rootSectors, clusterCount: clusters,
  };
}

/** Microsoft's FAT32 cluster size for a volume of this many bytes (4 KiB up to 8 GiB). */
function fat32ClusterBytes(bytes: number): number {
  const GiB = 1024 ** 3;
  return bytes <= 8 * GiB ? 4096 : bytes <= 16 * GiB ? 8192 : bytes <= 32 * GiB ? 16384 : 32768;
}

/**
 * The hard disk for a tree: FAT16 with the smallest cluster that fits while the disk stays within
 * 1024 cylinders (type 0x04 or 0x06; 0x0E when FAT16 is forced past them), otherwise FAT32
 * (type 0x0C) with Microsoft's cluster size, smaller on a small forced-FAT32 volume so that it
 * still has the clusters FAT32 needs.
 */
export function hardDiskGeometry(needs: VolumeNeeds): FatGeometry {
  if (needs.fatBits !== 32) {
    for (let cb = SECTOR; cb <= MAX_CLUSTER_BYTES; cb *= 2) {
      const g = tryHardDisk(needs, 16, cb);
      if (g && (needs.fatBits === 16 || g.diskSectors <= CHS_CYLINDERS * CYLINDER)) return g;
    }
    if (needs.fatBits === 16) {
      throw new FatError(`the tree needs ${mib(needs.clusters(MAX_CLUSTER_BYTES, 16) * MAX_CLUSTER_BYTES + needs.freeBytes)} MiB; FAT16 holds at most 2 GiB`);
    }
  }
  const estimate = needs.clusters(4096, 32) * 4096 + needs.freeBytes;
  let first = fat32ClusterBytes(estimate);
  while (first > SECTOR && estimate / first < MIN_CLUSTERS[32]) first /= 2;
  for (let cb = first; cb <= MAX_CLUSTER_BYTES; cb *= 2) {
    const g = tryHardDisk(needs, 32, cb);
    if (g) {
      if (g.diskSectors > 0xffff_ffff) break;
      return g;
    }
  }
  throw new FatError(`the tree needs ${mib(estimate)} MiB; an MBR disk holds at most 2 TiB`);
}

function mib(bytes: number): string {
  return (bytes / 1024 ** 2).toFixed(1);
}

const FLOPPIES = [
  { name: "1.44 MB", sectors: 2880, sectorsPerTrack: 18, spc: 1, rootEntries: 224 },
  { name: "2.88 MB", sectors: 5760, sectorsPerTrack: 36, spc: 2, rootEntries: 240 },
] as const;

/** The smallest standard floppy (FAT12, no MBR) the tree fits on. */
export function floppyGeometry(needs: Omit<VolumeNeeds, "fatBits">): FatGeometry {
  for (const f of FLOPPIES) {
    const rootSectors = (f.rootEntries * 32) / SECTOR;
    const { fatSectors, clusters } = fitFat(12, f.sectors, 1, rootSectors, f.spc);
    if (needs.rootEntries > f.rootEntries) continue;
    if (needs.clusters(f.spc * SECTOR, 12) > clusters) continue;
    return {
      fatBits: 12, diskSectors: f.sectors, volumeStart: 0, volumeSectors: f.sectors, partitionType: undefined,
      heads: 2, sectorsPerTrack: f.sectorsPerTrack, media: 0xf0,
      sectorsPerCluster: f.spc, reservedSectors: 1, fatSectors, rootEntries: f.rootEntries, rootSectors, clusterCount: clusters,
    };
  }
  const largest = FLOPPIES[FLOPPIES.length - 1]!;
  throw new FatError(
    `the tree needs ${Math.ceil((needs.clusters(largest.spc * SECTOR, 12) * largest.spc * SECTOR) / 1024)} KiB and ${needs.rootEntries} root entries; ` +
      `the largest floppy (${largest.name}) holds about 2.8 MB and ${largest.rootEntries} root entries`,
  );
}
