// The copy-on-write overlay (main/disk/overlay.ts): reads see the newest writes, the base is
// never written, a grown disk reads zeros past its image, a host killed with SIGKILL while
// writing leaves every record whole or absent, and damaged overlays are recovered or refused.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, appendFileSync, existsSync } from "node:fs";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exportDisk, OverlayDisk, OverlayError, overlayHolder, overlayStats, HEADER_BYTES, RECORD_HEADER_BYTES, SECTOR } from "../../../main/disk/overlay.js";

let dir: string;
let base: string;
let overlay: string;
const BASE_SIZE = 64 * 1024;

const sha = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");
const pattern = (length: number, seed: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "overlay-test-"));
  base = join(dir, "base.img");
  overlay = join(dir, "disk.overlay");
  writeFileSync(base, pattern(BASE_SIZE, 1));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("OverlayDisk", () => {
  it("reads the base, then the newest writes, and never writes the base", () => {
    const before = sha(base);
    const disk = new OverlayDisk(base, overlay);
    const first = new Uint8Array(1024);
    disk.read(0, first);
    expect(first).toEqual(pattern(BASE_SIZE, 1).subarray(0, 1024));
    disk.write(512, new Uint8Array(1024).fill(0xaa));
    disk.write(1024, new Uint8Array(512).fill(0xbb));
    disk.write(100, Uint8Array.of(1, 2, 3)); // part of a sector: the rest keeps its bytes
    // In the file at once, before any flush or close (another process reading it sees them).
    expect(overlayStats(overlay).changedBytes).toBe(3 * SECTOR);
    const got = new Uint8Array(2048);
    disk.read(0, got);
    const expected = pattern(BASE_SIZE, 1).slice(0, 2048);
    expected.fill(0xaa, 512, 1024);
    expected.fill(0xbb, 1024, 1536);
    expected.set([1, 2, 3], 100);
    expect(got).toEqual(expected);
    expect(disk.changedBytes).toBe(3 * SECTOR);
    disk.close();
    expect(sha(base)).toBe(before);
    const again = new OverlayDisk(base, overlay);
    const reread = new Uint8Array(2048);
    again.read(0, reread);
    expect(reread).toEqual(expected);
    again.close();
    expect(overlayStats(overlay).changedBytes).toBe(3 * SECTOR);
    expect(overlayStats(join(dir, "none")).changedBytes).toBe(0);
  });

  it("reads zeros past the image's end of a grown disk, and refuses what is outside the disk", () => {
    const disk = new OverlayDisk(base, overlay, { size: BASE_SIZE * 2 });
    const tail = new Uint8Array(1024);
    disk.read(BASE_SIZE - 512, tail);
    expect(tail.subarray(0, 512)).toEqual(pattern(BASE_SIZE, 1).subarray(BASE_SIZE - 512));
    expect(tail.subarray(512).every((b) => b === 0)).toBe(true);
    disk.write(BASE_SIZE + 512, new Uint8Array(512).fill(9));
    const grown = new Uint8Array(512);
    disk.read(BASE_SIZE + 512, grown);
    expect(grown.every((b) => b === 9)).toBe(true);
    expect(() => disk.read(BASE_SIZE * 2 - 256, new Uint8Array(512))).toThrow(OverlayError);
    expect(() => disk.write(-512, new Uint8Array(512))).toThrow(OverlayError);
    disk.close();
  });

  it("compacts a mostly superseded overlay without changing what the disk reads", () => {
    const disk = new OverlayDisk(base, overlay);
    for (let i = 0; i < 50; i++) disk.write(4096, pattern(8192, i));
    const before = statSync(overlay).size;
    expect(disk.compact(true)).toBe(true);
    expect(statSync(overlay).size).toBe(HEADER_BYTES + RECORD_HEADER_BYTES + 8192);
    expect(statSync(overlay).size).toBeLessThan(before);
    const got = new Uint8Array(8192);
    disk.read(4096, got);
    expect(got).toEqual(pattern(8192, 49));
    disk.write(0, new Uint8Array(512).fill(5));
    disk.close();
    const again = new OverlayDisk(base, overlay);
    again.read(4096, got);
    expect(got).toEqual(pattern(8192, 49));
    again.close();
  });

  it("exports base and changes as one flat image of the disk's size, refusing to overwrite", () => {
    const disk = new OverlayDisk(base, overlay, { size: BASE_SIZE + 4096 });
    disk.write(0, new Uint8Array(512).fill(0x11));
    disk.write(BASE_SIZE, new Uint8Array(512).fill(0x22));
    const out = join(dir, "flat.img");
    exportDisk(disk, out);
    const flat = readFileSync(out);
    expect(flat.length).toBe(BASE_SIZE + 4096);
    expect(flat.subarray(0, 512).every((b) => b === 0x11)).toBe(true);
    expect(flat.subarray(512, BASE_SIZE)).toEqual(Buffer.from(pattern(BASE_SIZE, 1).subarray(512)));
    expect(flat.subarray(BASE_SIZE, BASE_SIZE + 512).every((b) => b === 0x22)).toBe(true);
    expect(() => exportDisk(disk, out)).toThrow(/already exists/);
    expect(() => exportDisk(disk, base, { overwrite: true })).toThrow(/own image/);
    disk.close();
  });

  it("refuses an overlay made for another image", () => {
    const disk = new OverlayDisk(base, overlay);
    disk.write(0, new Uint8Array(512));
    disk.close();
    const other = join(dir, "other.img");
    writeFileSync(other, pattern(BASE_SIZE, 2));
    expect(() => new OverlayDisk(other, overlay)).toThrow(/made for another image/);
  });
});

describe("damaged overlays", () => {
  it("refuses a file that is not an overlay, naming it", () => {
    writeFileSync(overlay, Buffer.from("this is not an overlay at all, just some text\n".repeat(4)));
    expect(() => new OverlayDisk(base, overlay)).toThrow(new RegExp(`${overlay.replace(/[.]/g, "\\.")}: not an unmachine disk overlay`));
    writeFileSync(overlay, Buffer.alloc(10));
    expect(() => new OverlayDisk(base, overlay)).toThrow(OverlayError);
  });

  it("refuses an overlay whose header is damaged", () => {
    new OverlayDisk(base, overlay).close();
    const bytes = readFileSync(overlay);
    bytes[20] = bytes[20]! ^ 0xff;
    writeFileSync(overlay, bytes);
    expect(() => new OverlayDisk(base, overlay)).toThrow(/header is damaged/);
  });

  it("recovers to the last whole record when the overlay is cut anywhere or ends in garbage", () => {
    const disk = new OverlayDisk(base, overlay);
    for (let i = 0; i < 4; i++) disk.write(i * 1024, new Uint8Array(1024).fill(i + 1));
    disk.close();
    const whole = readFileSync(overlay);
    const recordBytes = RECORD_HEADER_BYTES + 1024;
    for (const cut of [HEADER_BYTES + 1, HEADER_BYTES + recordBytes + 10, HEADER_BYTES + 3 * recordBytes + RECORD_HEADER_BYTES + 512, whole.length - 1]) {
      writeFileSync(overlay, whole);
      truncateSync(overlay, cut);
      const messages: string[] = [];
      const reopened = new OverlayDisk(base, overlay, { onRecover: (m) => messages.push(m) });
      const kept = Math.floor((cut - HEADER_BYTES) / recordBytes);
      expect(messages.join()).toMatch(/cut \d+ bytes/);
      for (let i = 0; i < 4; i++) {
        const got = new Uint8Array(1024);
        reopened.read(i * 1024, got);
        const expected = i < kept ? new Uint8Array(1024).fill(i + 1) : pattern(BASE_SIZE, 1).subarray(i * 1024, i * 1024 + 1024);
        expect(got, `cut at ${cut}, record ${i}`).toEqual(expected);
      }
      reopened.close();
      expect(statSync(overlay).size).toBe(HEADER_BYTES + kept * recordBytes);
    }
    writeFileSync(overlay, whole);
    appendFileSync(overlay, Buffer.from("garbage after the records".repeat(20)));
    const reopened = new OverlayDisk(base, overlay);
    expect(reopened.changedBytes).toBe(4096);
    reopened.close();
    expect(statSync(overlay).size).toBe(whole.length);
  });

  it("drops a record whose data was changed on the host's disk, and what follows it", () => {
    const disk = new OverlayDisk(base, overlay);
    disk.write(0, new Uint8Array(512).fill(1));
    disk.write(512, new Uint8Array(512).fill(2));
    disk.close();
    const bytes = readFileSync(overlay);
    bytes[HEADER_BYTES + RECORD_HEADER_BYTES + 5] = bytes[HEADER_BYTES + RECORD_HEADER_BYTES + 5]! ^ 0x40;
    writeFileSync(overlay, bytes);
    const reopened = new OverlayDisk(base, overlay);
    expect(reopened.changedBytes).toBe(0);
    reopened.close();
  });
});

describe("a host killed while writing", () => {
  const built = fileURLToPath(new URL("../../../dist/main/disk/overlay.js", import.meta.url));

  it("leaves the base bit-identical and every record whole or absent", async () => {
    expect(existsSync(built), "run npm run build first").toBe(true);
    writeFileSync(base, pattern(4 * 1024 * 1024, 3));
    const before = sha(base);
    // Each write fills 64 sectors; every sector says which write and which sector it is.
    const script = `
      import { OverlayDisk } from ${JSON.stringify(built)};
      const disk = new OverlayDisk(${JSON.stringify(base)}, ${JSON.stringify(overlay)});
      let n = 1;
      for (;;) {
        const sectors = 64, first = (n * 13) % (8192 - sectors);
        const data = new Uint8Array(sectors * 512);
        const view = new DataView(data.buffer);
        for (let s = 0; s < sectors; s++) for (let w = 0; w < 128; w++) view.setUint32(s * 512 + w * 4, w % 2 ? n : first + s, true);
        disk.write(first * 512, data);
        if (n === 200) process.stdout.write("going\\n");
        n++;
      }`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", () => resolve());
      child.on("exit", (code) => reject(new Error(`the writer ended by itself (${code})`)));
    });
    await new Promise((r) => setTimeout(r, 300));
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    expect(sha(base)).toBe(before);
    const disk = new OverlayDisk(base, overlay);
    expect(disk.changedBytes).toBeGreaterThan(0);
    const all = new Uint8Array(4 * 1024 * 1024);
    disk.read(0, all);
    disk.close();
    const view = new DataView(all.buffer);
    const original = pattern(4 * 1024 * 1024, 3);
    let written = 0;
    const torn: string[] = [];
    for (let s = 0; s < 8192; s++) {
      const at = s * 512;
      if (Buffer.compare(all.subarray(at, at + 512), original.subarray(at, at + 512)) === 0) continue;
      written++;
      const n = view.getUint32(at + 4, true);
      for (let w = 0; w < 128; w++) if (view.getUint32(at + w * 4, true) !== (w % 2 ? n : s)) torn.push(`sector ${s} word ${w}`);
    }
    expect(torn.slice(0, 5)).toEqual([]);
    expect(written).toBeGreaterThan(64);
    expect(sha(base)).toBe(before);
  });
});

describe("export targets a careless user gives", () => {
  it("replaces an existing file for a disk with no changes yet, and refuses the overlay's place, a folder and a missing folder", () => {
    const disk = new OverlayDisk(base, overlay, { readOnly: true }); // no overlay file yet
    const out = join(dir, "out.img");
    writeFileSync(out, "old");
    exportDisk(disk, out, { overwrite: true });
    expect(sha(out)).toBe(sha(base));
    // The overlay's own path, before the overlay exists: writing there would make the guest unbootable.
    expect(() => exportDisk(disk, overlay, { overwrite: true })).toThrow(`${overlay}: is the disk's own image or overlay; export to a new file`);
    expect(existsSync(overlay)).toBe(false);
    expect(() => exportDisk(disk, dir, { overwrite: true })).toThrow(`${dir}: is a folder; expected the name of the image file to write`);
    const missing = join(dir, "no", "such", "out.img");
    expect(() => exportDisk(disk, missing)).toThrow(`${missing}: the folder ${join(dir, "no", "such")} does not exist`);
    disk.close();
  });
});

describe("a disk opened smaller than what its overlay holds", () => {
  it("still closes and compacts, keeping the sectors past its end for when it grows again", () => {
    const grown = new OverlayDisk(base, overlay, { size: BASE_SIZE * 4 });
    grown.write(BASE_SIZE * 3, new Uint8Array(512).fill(5));
    for (let i = 0; i < 4; i++) grown.write(0, new Uint8Array(512).fill(i));
    grown.close({ compact: false });
    // The saved disk size went back down (the page's slider): the guest sees only the image.
    const small = new OverlayDisk(base, overlay);
    expect(small.compact(true)).toBe(true);
    small.close();
    const again = new OverlayDisk(base, overlay, { size: BASE_SIZE * 4 });
    const far = new Uint8Array(512);
    again.read(BASE_SIZE * 3, far);
    expect(far.every((b) => b === 5)).toBe(true);
    const first = new Uint8Array(512);
    again.read(0, first);
    expect(first.every((b) => b === 3)).toBe(true);
    expect(again.changedBytes).toBe(2 * SECTOR);
    again.close();
  });
});

describe("one writer per overlay", () => {
  it("refuses a second writer, in this process or another live one, and takes over a dead writer's lock", async () => {
    const first = new OverlayDisk(base, overlay);
    // A second open (another tab, another `unmachine run`) would append over the first one's records.
    expect(() => new OverlayDisk(base, overlay)).toThrow(/in use by another running guest/);
    first.write(0, new Uint8Array(512).fill(1));
    first.close();
    const again = new OverlayDisk(base, overlay);
    again.close();

    // A live process holds it: refused, naming that process.
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
    try {
      writeFileSync(`${overlay}.lock`, `${holder.pid}\n`);
      expect(() => new OverlayDisk(base, overlay)).toThrow(new RegExp(`in use by another running guest \\(process ${holder.pid}\\)`));
      expect(overlayHolder(overlay)).toBe(holder.pid);
      // Reading (an export) is still allowed.
      new OverlayDisk(base, overlay, { readOnly: true }).close();
    } finally {
      holder.kill("SIGKILL");
      await new Promise((resolve) => holder.once("exit", resolve));
    }
    // Its process is gone (a host killed with SIGKILL): the lock is stale and taken over.
    expect(overlayHolder(overlay)).toBeUndefined();
    const after = new OverlayDisk(base, overlay);
    const got = new Uint8Array(512);
    after.read(0, got);
    expect(got.every((b) => b === 1)).toBe(true);
    after.close();
    expect(existsSync(`${overlay}.lock`)).toBe(false);
  });
});
