// Family detection from an image's content: FAT volumes built here with the system files each
// family's disks carry (on a partitioned hard disk, a floppy, FAT16 and FAT32), the OEM name of
// the boot sector, ISO volume labels, a Linux kernel header, and what is none of these.
import { describe, expect, it } from "vitest";
import { detectFamily, type ReadAt } from "../../../core/media/family.js";
import { buildFatImage, type FatImage } from "../../../core/fat/image.js";
import { directory, fileFromBytes, type FatNode } from "../../../core/fat/tree.js";

const T = Date.UTC(1998, 5, 25);
const f = (name: string, text = name): FatNode => fileFromBytes(name, new TextEncoder().encode(text), T);
const d = (name: string, ...children: FatNode[]): FatNode => directory(name, children, T);

/** Reads from a built image, with the boot sector's OEM name replaced when given. */
function reader(image: FatImage, oem?: string): ReadAt {
  return (offset, length) => {
    const end = Math.min(image.size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const bytes = image.read(offset, end - offset).slice();
    if (oem !== undefined) {
      const at = image.volumeOffset + 3 - offset;
      for (let i = 0; i < 8; i++) if (at + i >= 0 && at + i < bytes.length) bytes[at + i] = oem.padEnd(8).charCodeAt(i);
    }
    return bytes;
  };
}

function family(tree: FatNode[], options: Parameters<typeof buildFatImage>[1] = {}, oem?: string): string {
  const image = buildFatImage(tree, options);
  return detectFamily(reader(image, oem), image.size);
}

function bytesReader(bytes: Uint8Array): ReadAt {
  return (offset, length) => bytes.subarray(Math.min(offset, bytes.length), Math.min(bytes.length, offset + length));
}

describe("the family of a FAT disk", () => {
  it("is DOS for IO.SYS and MSDOS.SYS on a hard disk, a floppy, and FreeDOS's KERNEL.SYS", () => {
    expect(family([f("IO.SYS"), f("MSDOS.SYS"), f("COMMAND.COM")], {}, "MSDOS5.0")).toBe("dos");
    expect(family([f("IO.SYS"), f("MSDOS.SYS"), f("COMMAND.COM")], { layout: "floppy" }, "MSDOS5.0")).toBe("dos");
    expect(family([f("KERNEL.SYS"), f("COMMAND.COM")], { layout: "floppy" }, "FRDOS4.1")).toBe("dos");
  });

  it("is Windows 3.x for WINDOWS holding WIN.COM and PROGMAN.EXE beside DOS", () => {
    expect(family([f("IO.SYS"), f("MSDOS.SYS"), d("WINDOWS", f("WIN.COM"), f("PROGMAN.EXE"))], {}, "MSDOS5.0")).toBe("win3x");
  });

  it("is Windows 9x for WINDOWS holding EXPLORER.EXE, on FAT16 and on FAT32", () => {
    const tree = [f("IO.SYS"), f("MSDOS.SYS", "[Paths]\r\nWinDir=C:\\WINDOWS\r\n"), d("WINDOWS", f("WIN.COM"), f("EXPLORER.EXE"), f("SYSTEM.DAT"))];
    expect(family(tree, {}, "MSWIN4.1")).toBe("win9x");
    expect(family(tree, { fatBits: 32 }, "MSWIN4.1")).toBe("win9x");
  });

  it("is Windows NT for NTLDR and BOOT.INI, or WINDOWS\\SYSTEM32, or an NTFS boot sector", () => {
    expect(family([f("NTLDR"), f("BOOT.INI"), d("WINDOWS", f("EXPLORER.EXE"))], {}, "MSDOS5.0")).toBe("winnt");
    expect(family([d("WINNT", f("EXPLORER.EXE"))], {}, "MSDOS5.0")).toBe("winnt");
    expect(family([d("WINDOWS", d("SYSTEM32", f("NTOSKRNL.EXE")))], {}, "MSDOS5.0")).toBe("winnt");
    expect(family([f("DATA.TXT")], {}, "NTFS")).toBe("winnt");
  });

  it("is Linux for SYSLINUX's files", () => {
    expect(family([f("LDLINUX.SYS"), f("SYSLINUX.CFG"), f("VMLINUZ")], {}, "SYSLINUX")).toBe("linux");
    expect(family([f("ldlinux.c32"), d("syslinux", f("syslinux.cfg"))], { layout: "floppy" }, "mkfs.fat")).toBe("linux");
  });

  it("falls back to the OEM name, then to other", () => {
    expect(family([f("README.TXT")], {}, "MSWIN4.1")).toBe("win9x");
    expect(family([f("README.TXT")], { layout: "floppy" }, "IBM  3.3")).toBe("dos");
    expect(family([f("README.TXT")], {}, "mkfs.fat")).toBe("other");
  });
});

/** An ISO 9660 image head: a primary volume descriptor with this label (ECMA-119 8.4). */
function iso(label: string): Uint8Array {
  const bytes = new Uint8Array(0x8800);
  bytes[0x8000] = 1;
  bytes.set(new TextEncoder().encode("CD001"), 0x8001);
  bytes.set(new TextEncoder().encode(label.padEnd(32)), 0x8028);
  return bytes;
}

describe("the family of other images", () => {
  it("reads an ISO's volume label", () => {
    const cases: [string, string][] = [
      ["WIN98 SE", "win9x"],
      ["WIN95", "win9x"],
      ["WXPFPP_EN", "winnt"],
      ["W2PFPP_EN", "winnt"],
      ["FREEDOS", "dos"],
      ["Debian 12.5.0 i386 n", "linux"],
      ["TinyCore", "linux"],
      ["MY PHOTOS", "other"],
    ];
    for (const [label, expected] of cases) expect([label, detectFamily(bytesReader(iso(label)), 0x8800)]).toEqual([label, expected]);
  });

  it("is Linux for a kernel with the boot protocol's header", () => {
    const kernel = new Uint8Array(4096);
    kernel[0x1fe] = 0x55;
    kernel[0x1ff] = 0xaa;
    kernel.set(new TextEncoder().encode("HdrS"), 0x202);
    expect(detectFamily(bytesReader(kernel), kernel.length)).toBe("linux");
  });

  it("is Linux for a disk whose first partition is a Linux one, other for noise or a blank disk", () => {
    const mbr = new Uint8Array(1024 * 1024);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr[446 + 4] = 0x83;
    new DataView(mbr.buffer).setUint32(446 + 8, 2048, true);
    new DataView(mbr.buffer).setUint32(446 + 12, 100000, true);
    expect(detectFamily(bytesReader(mbr), 64 * 1024 * 1024)).toBe("linux");
    const noise = new Uint8Array(70000).map((_, i) => (i * 2654435761) >>> 24);
    expect(detectFamily(bytesReader(noise), noise.length)).toBe("other");
    expect(detectFamily(bytesReader(new Uint8Array(65536)), 65536)).toBe("other");
  });
});
