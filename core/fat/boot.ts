// The sectors before the FATs: the MBR with one partition, the boot sector with its BIOS parameter
// block (fatgen103, "Boot Sector and BPB") and FAT32's FSInfo. Counterpart: core/fat/geometry.ts.
// Invariants: each sector ends in 55 AA; CHS uses the disk's 16 x 63 shape, capped at 1023/15/63
// (v86 reads that shape back from the partition entry); booting it prints why not and INT 18h.

import { SECTOR, type FatGeometry } from "./geometry.js";

/** Said on screen if a BIOS boots the disk. */
const NOT_BOOTABLE = "This drive holds host files and does not start a system.\r\n";
/** Where a boot sector's code starts: after the FAT12/16 or the FAT32 BPB. */
const CODE_FAT16 = 0x3e;
const CODE_FAT32 = 0x5a;
const LOAD_ADDRESS = 0x7c00;

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, v & 0xffff);
  put16(b, at + 2, (v >>> 16) & 0xffff);
}

function putAscii(b: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) b[at + i] = text.charCodeAt(i);
}

/**
 * Real-mode code at `codeAt` (loaded at 0x7C00) that prints NOT_BOOTABLE with INT 10h and then
 * gives the boot back to the BIOS with INT 18h. The message follows the 34 bytes of code.
 */
function putStub(b: Uint8Array, codeAt: number): void {
  const message = LOAD_ADDRESS + codeAt + 34;
  const code = [
    0xfa, //                    cli
    0x31, 0xc0, //              xor ax, ax
    0x8e, 0xd8, //              mov ds, ax
    0x8e, 0xd0, //              mov ss, ax
    0xbc, 0x00, 0x7c, //        mov sp, 0x7c00
    0xfb, //                    sti
    0xbe, message & 0xff, message >> 8, // mov si, message
    0xfc, //                    cld
    0xac, //                    next: lodsb
    0x84, 0xc0, //              test al, al
    0x74, 0x09, //              jz done
    0xb4, 0x0e, //              mov ah, 0x0e (teletype output)
    0xbb, 0x07, 0x00, //        mov bx, 0x0007
    0xcd, 0x10, //              int 0x10
    0xeb, 0xf2, //              jmp next
    0xcd, 0x18, //              done: int 0x18
    0xf4, //                    halt: hlt
    0xeb, 0xfd, //              jmp halt
  ];
  b.set(code, codeAt);
  putAscii(b, codeAt + code.length, NOT_BOOTABLE);
}

function bootSignature(b: Uint8Array): void {
  b[510] = 0x55;
  b[511] = 0xaa;
}

/** A CHS address in partition-entry form: head, sector | cylinder bits 8-9, cylinder bits 0-7. */
function chs(g: FatGeometry, lba: number): [number, number, number] {
  let cylinder = Math.floor(lba / (g.heads * g.sectorsPerTrack));
  let head = Math.floor(lba / g.sectorsPerTrack) % g.heads;
  let sector = (lba % g.sectorsPerTrack) + 1;
  if (cylinder > 1023) [cylinder, head, sector] = [1023, g.heads - 1, g.sectorsPerTrack];
  return [head, sector | ((cylinder >> 2) & 0xc0), cylinder & 0xff];
}

/** Sector 0 of a hard disk: the stub, a disk signature and one partition entry spanning the volume. */
export function mbrSector(g: FatGeometry, diskId: number): Uint8Array {
  if (g.partitionType === undefined) throw new Error("a floppy geometry has no MBR");
  const b = new Uint8Array(SECTOR);
  putStub(b, 0);
  put32(b, 440, diskId);
  const at = 446;
  b[at] = 0x00;
  b.set(chs(g, g.volumeStart), at + 1);
  b[at + 4] = g.partitionType;
  b.set(chs(g, g.volumeStart + g.volumeSectors - 1), at + 5);
  put32(b, at + 8, g.volumeStart);
  put32(b, at + 12, g.volumeSectors);
  bootSignature(b);
  return b;
}

export interface VolumeIdentity {
  /** The volume serial number DOS shows as XXXX-XXXX. */
  readonly volumeId: number;
  /** 11 characters, space padded; "NO NAME    " for none. */
  readonly label: string;
}

/** The volume's first sector: jump, OEM name, BPB, extended BPB, stub, 55 AA. */
export function bootSector(g: FatGeometry, id: VolumeIdentity): Uint8Array {
  const b = new Uint8Array(SECTOR);
  const fat32 = g.fatBits === 32;
  const codeAt = fat32 ? CODE_FAT32 : CODE_FAT16;
  b.set([0xeb, codeAt - 2, 0x90], 0);
  putAscii(b, 3, "MSWIN4.1");
  put16(b, 11, SECTOR);
  b[13] = g.sectorsPerCluster;
  put16(b, 14, g.reservedSectors);
  b[16] = 2;
  put16(b, 17, g.rootEntries);
  put16(b, 19, !fat32 && g.volumeSectors < 0x10000 ? g.volumeSectors : 0);
  b[21] = g.media;
  put16(b, 22, fat32 ? 0 : g.fatSectors);
  put16(b, 24, g.sectorsPerTrack);
  put16(b, 26, g.heads);
  put32(b, 28, g.volumeStart);
  put32(b, 32, !fat32 && g.volumeSectors < 0x10000 ? 0 : g.volumeSectors);
  let ext = 36;
  if (fat32) {
    put32(b, 36, g.fatSectors);
    put16(b, 40, 0); // both FATs mirrored
    put16(b, 42, 0); // version 0.0
    put32(b, 44, 2); // root directory cluster
    put16(b, 48, 1); // FSInfo sector
    put16(b, 50, BACKUP_BOOT_SECTOR);
    ext = 64;
  }
  b[ext] = g.volumeStart === 0 ? 0x00 : 0x80; // BIOS drive number
  b[ext + 2] = 0x29; // extended boot signature: the next three fields are present
  put32(b, ext + 3, id.volumeId);
  putAscii(b, ext + 7, id.label);
  putAscii(b, ext + 18, fat32 ? "FAT32   " : g.fatBits === 16 ? "FAT16   " : "FAT12   ");
  putStub(b, codeAt);
  bootSignature(b);
  return b;
}

/** FAT32 keeps a copy of its boot sector (and the FSInfo after it) here. */
export const BACKUP_BOOT_SECTOR = 6;

/** FAT32's FSInfo sector (fatgen103, "FAT32 FSInfo Sector Structure"): free count and next free hint. */
export function fsInfoSector(freeClusters: number, nextFree: number): Uint8Array {
  const b = new Uint8Array(SECTOR);
  put32(b, 0, 0x41615252);
  put32(b, 484, 0x61417272);
  put32(b, 488, freeClusters);
  put32(b, 492, nextFree);
  put32(b, 508, 0xaa550000);
  return b;
}

