// Image detection from content and size: each kind a user may drop or configure is built in
// memory, byte by byte, and must land in the right drive with a readable description.
// Anything else must be refused with a message that names the file and says what would do.

import { describe, expect, it } from "vitest";
import { EXPECTED_KINDS, HEADER_BYTES, ImageError, detectImage } from "../../../core/media/detect.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Detects as the host does: the first HEADER_BYTES of the file plus its full size. */
function detect(image: Uint8Array, name = "image.bin") {
  return detectImage(image.subarray(0, HEADER_BYTES), image.length, name);
}

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
function bootSignature(b: Uint8Array): void {
  b[510] = 0x55;
  b[511] = 0xaa;
}

/** A FAT12 boot sector with a BIOS parameter block, as FORMAT writes it. */
function fatBootSector(b: Uint8Array, totalSectors: number, media: number): void {
  b.set([0xeb, 0x3c, 0x90], 0);
  putAscii(b, 3, "MSDOS5.0");
  put16(b, 11, 512); // bytes per sector
  b[13] = 2; // sectors per cluster
  put16(b, 14, 1); // reserved sectors
  b[16] = 2; // FATs
  put16(b, 17, 112); // root directory entries
  put16(b, 19, totalSectors);
  b[21] = media;
  put16(b, 22, 3); // sectors per FAT
  put16(b, 24, 10); // sectors per track
  put16(b, 26, 2); // heads
  b[38] = 0x29;
  putAscii(b, 43, "NO NAME    FAT12   ");
  bootSignature(b);
}

/** An MBR with one partition entry. */
function mbrDisk(size: number): Uint8Array {
  const b = new Uint8Array(size);
  b.set([0xfa, 0x33, 0xc0, 0x8e, 0xd0], 0); // a little boot code
  const entry = 446;
  b[entry] = 0x80; // active
  b.set([0x01, 0x01, 0x00], entry + 1); // CHS start
  b[entry + 4] = 0x06; // FAT16
  b.set([0xfe, 0x3f, 0x13], entry + 5); // CHS end
  put32(b, entry + 8, 63); // first LBA
  put32(b, entry + 12, size / 512 - 63); // sectors
  bootSignature(b);
  return b;
}

function isoImage(size: number, options: { elTorito?: boolean; hybrid?: boolean } = {}): Uint8Array {
  const b = new Uint8Array(size);
  // Primary volume descriptor in sector 16.
  b[0x8000] = 1;
  putAscii(b, 0x8001, "CD001");
  b[0x8006] = 1;
  putAscii(b, 0x8028, "TEST_DISC");
  if (options.elTorito) {
    // Boot record volume descriptor in sector 17.
    b[0x8800] = 0;
    putAscii(b, 0x8801, "CD001");
    b[0x8806] = 1;
    putAscii(b, 0x8807, "EL TORITO SPECIFICATION");
    put32(b, 0x8847, 19); // boot catalogue sector
  }
  // Volume descriptor set terminator.
  const end = options.elTorito ? 0x9000 : 0x8800;
  b[end] = 0xff;
  putAscii(b, end + 1, "CD001");
  b[end + 6] = 1;
  if (options.hybrid) {
    // isohybrid: an MBR in sector 0 with one partition covering the image.
    b[446] = 0x80;
    b[446 + 4] = 0x17;
    put32(b, 446 + 8, 0);
    put32(b, 446 + 12, size / 512);
    bootSignature(b);
  }
  return b;
}

/** A bzImage setup header (Linux boot protocol). */
function bzImage(size: number, version: number): Uint8Array {
  const b = new Uint8Array(size);
  b[0x1f1] = 27; // setup sectors
  put16(b, 0x1fe, 0xaa55);
  b[0x200] = 0xeb; // jump over the header
  b[0x201] = 0x66;
  putAscii(b, 0x202, "HdrS");
  put16(b, 0x206, version);
  b[0x211] = 0x01; // loaded high
  return b;
}

const MULTIBOOT_MAGIC = 0x1badb002;

function multibootKernel(size: number, at: number, checksumDelta = 0): Uint8Array {
  const b = new Uint8Array(size);
  b.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0); // an ELF header start
  const flags = 0x00010003;
  put32(b, at, MULTIBOOT_MAGIC);
  put32(b, at + 4, flags);
  put32(b, at + 8, (-(MULTIBOOT_MAGIC + flags) + checksumDelta) >>> 0);
  return b;
}

/** A small seeded generator (xorshift32), so the noise is the same on every run. */
function noise(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

describe("detectImage: floppies", () => {
  it("takes a 1.44 MB image with a FAT boot sector as a floppy for drive A", () => {
    const image = new Uint8Array(1474560);
    fatBootSector(image, 2880, 0xf0);
    const found = detect(image, "dos.img");
    expect(found.kind).toBe("floppy");
    expect(found.role).toBe("fda");
    expect(found.description).toContain("1.44 MB");
    expect(found.description).toContain("floppy");
  });

  it("takes a blank, unformatted 1.44 MB image as a floppy by its size", () => {
    const found = detect(new Uint8Array(1474560), "blank.img");
    expect(found.kind).toBe("floppy");
    expect(found.role).toBe("fda");
  });

  it("names other standard floppy sizes", () => {
    expect(detect(new Uint8Array(720 * KiB)).description).toContain("720 KB");
    expect(detect(new Uint8Array(2880 * KiB)).description).toContain("2.88 MB");
    expect(detect(new Uint8Array(1200 * KiB)).description).toContain("1.2 MB");
  });

  it("takes an odd-size image with a FAT parameter block as a floppy of non-standard size", () => {
    const image = new Uint8Array(800 * KiB);
    fatBootSector(image, 1600, 0xf9);
    const found = detect(image, "odd.img");
    expect(found.kind).toBe("floppy");
    expect(found.role).toBe("fda");
    expect(found.description).toMatch(/floppy/);
    expect(found.description).toMatch(/non-standard/);
    expect(found.description).toContain("800 KiB");
  });
});

describe("detectImage: hard disks", () => {
  it("takes a 10 MiB image with an MBR partition table as a hard disk", () => {
    const found = detect(mbrDisk(10 * MiB), "disk.img");
    expect(found.kind).toBe("harddisk");
    expect(found.role).toBe("hda");
    expect(found.description).toContain("hard disk");
    expect(found.description).toContain("10.0 MiB");
  });

  it("takes a large FAT volume without a partition table (a superfloppy) as a hard disk, not a floppy", () => {
    const image = new Uint8Array(8 * MiB);
    fatBootSector(image, 0, 0xf8);
    put32(image, 32, (8 * MiB) / 512);
    const found = detect(image, "volume.img");
    expect(found.kind).toBe("harddisk");
    expect(found.role).toBe("hda");
  });
});

describe("detectImage: CDs", () => {
  it("takes an ISO 9660 image as a CD", () => {
    const found = detect(isoImage(2 * MiB), "disc.iso");
    expect(found.kind).toBe("cdrom");
    expect(found.role).toBe("cdrom");
    expect(found.description).toContain("ISO 9660");
    expect(found.description).not.toContain("bootable");
    expect(found.description).not.toContain("hybrid");
  });

  it("says when an ISO is El Torito bootable", () => {
    const found = detect(isoImage(4 * MiB, { elTorito: true }), "boot.iso");
    expect(found.kind).toBe("cdrom");
    expect(found.role).toBe("cdrom");
    expect(found.description).toContain("ISO 9660");
    expect(found.description).toContain("El Torito bootable");
  });

  it("takes a hybrid ISO (with an MBR and partition table) as a CD, not a hard disk", () => {
    const found = detect(isoImage(4 * MiB, { elTorito: true, hybrid: true }), "hybrid.iso");
    expect(found.kind).toBe("cdrom");
    expect(found.role).toBe("cdrom");
    expect(found.description).toContain("hybrid");
  });

  it("takes an ISO with the size of a floppy as a CD", () => {
    const found = detect(isoImage(1474560), "small.iso");
    expect(found.kind).toBe("cdrom");
  });
});

describe("detectImage: kernels", () => {
  it("takes a bzImage as a Linux kernel and reads its boot protocol version", () => {
    const found = detect(bzImage(3 * MiB + 12345, 0x020f), "vmlinuz");
    expect(found.kind).toBe("linux-kernel");
    expect(found.role).toBe("bzimage");
    expect(found.description).toContain("Linux kernel");
    expect(found.description).toContain("2.15");
  });

  it("pads the minor protocol version (2.04 is not 2.4)", () => {
    expect(detect(bzImage(600 * KiB, 0x0204)).description).toContain("2.04");
  });

  it("takes a bzImage whose size happens to be a floppy size as a kernel", () => {
    expect(detect(bzImage(1474560, 0x020c)).kind).toBe("linux-kernel");
  });

  it("finds a multiboot header anywhere 4-aligned in the first 8 KiB", () => {
    for (const at of [0, 0x40, 0x1000, 8192 - 12]) {
      const found = detect(multibootKernel(123457, at), "kernel.elf");
      expect(found.kind, `header at ${at}`).toBe("multiboot-kernel");
      expect(found.role).toBe("multiboot");
      expect(found.description).toContain("multiboot");
    }
  });

  it("does not take a multiboot magic with a wrong checksum as a kernel", () => {
    expect(() => detect(multibootKernel(123457, 0x1000, 1), "bad.elf")).toThrow(ImageError);
  });

  it("does not look for a multiboot header past the first 8 KiB", () => {
    expect(() => detect(multibootKernel(123457, 8192), "late.elf")).toThrow(ImageError);
  });
});

describe("detectImage: other files", () => {
  it("takes a v86 state file as an initial state", () => {
    const image = new Uint8Array(5 * MiB);
    put32(image, 0, 0x86768676);
    const found = detect(image, "state.bin");
    expect(found.kind).toBe("v86-state");
    expect(found.role).toBe("initial_state");
    expect(found.description).toContain("v86");
  });

  it("recognises gzip and zstd compressed files, with no drive", () => {
    const gz = new Uint8Array(1000);
    gz.set([0x1f, 0x8b, 0x08, 0x00]);
    const gzip = detect(gz, "disk.img.gz");
    expect(gzip.kind).toBe("gzip");
    expect(gzip.role).toBeUndefined();
    expect(gzip.description).toContain("gzip");

    const zs = new Uint8Array(1000);
    zs.set([0x28, 0xb5, 0x2f, 0xfd]);
    const zstd = detect(zs, "disk.img.zst");
    expect(zstd.kind).toBe("zstd");
    expect(zstd.role).toBeUndefined();
    expect(zstd.description).toContain("zstd");
  });

  it("refuses an empty file, naming it", () => {
    expect(() => detectImage(new Uint8Array(0), 0, "empty.img")).toThrow(ImageError);
    expect(() => detectImage(new Uint8Array(0), 0, "empty.img")).toThrow(/empty\.img.*empty/);
  });

  it("refuses random data, naming the file and saying what was expected", () => {
    const image = noise(1 * MiB, 0x5eed1234);
    // The generator must not have made a signature by chance, or this would test nothing.
    expect(image[510] === 0x55 && image[511] === 0xaa).toBe(false);
    let error: unknown;
    try {
      detect(image, "noise.bin");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ImageError);
    const message = (error as Error).message;
    expect(message).toContain("noise.bin");
    expect(message).toContain(EXPECTED_KINDS);
    expect(message).toMatch(/expected .*floppy.*kernel/);
  });

  it("refuses a text file", () => {
    const text = new TextEncoder().encode("#!/bin/sh\necho hello\n".repeat(100));
    expect(() => detect(text, "script.sh")).toThrow(/script\.sh/);
  });
});
