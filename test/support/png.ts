// Real PNG files for the clipboard tests: an RGB image of noise (a fixed seed, so it barely
// compresses and its size is chosen by its dimensions), made with node:zlib.
import { crc32, deflateSync } from "node:zlib";

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A width x height RGB PNG of the given rows (each a filter byte, then width RGB triples). */
function rgbPng(width: number, height: number, rows: Buffer): Uint8Array {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", deflateSync(rows)), chunk("IEND", new Uint8Array())]));
}

/** A width x height RGB PNG of noise from `seed`. */
export function noisePng(width: number, height: number, seed = 1): Uint8Array {
  const rows = Buffer.alloc((width * 3 + 1) * height);
  let state = seed >>> 0;
  for (let y = 0; y < height; y++) {
    const at = y * (width * 3 + 1);
    rows[at] = 0; // no filter
    for (let i = 1; i <= width * 3; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      rows[at + i] = state >>> 24;
    }
  }
  return rgbPng(width, height, rows);
}

/** A width x height PNG of one colour: a few dozen bytes, short enough to type. */
export function solidPng(width: number, height: number, [r, g, b]: readonly [number, number, number]): Uint8Array {
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rows.set([r, g, b], y * (width * 3 + 1) + 1 + x * 3);
  return rgbPng(width, height, rows);
}
