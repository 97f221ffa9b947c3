// Byte access for the network codecs: big-endian (network order) reads and writes at fixed
// offsets, which callers guard with a length check first, and a ByteReader for the variable
// formats (DHCP options, DNS names) that throws Malformed on any read past the end. Decoders
// catch Malformed and drop the frame: a short or lying frame is never a crash.

export class Malformed extends Error {
  override name = "Malformed";
}

export function getU16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

export function getU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

export function setU16(b: Uint8Array, at: number, value: number): void {
  b[at] = (value >>> 8) & 0xff;
  b[at + 1] = value & 0xff;
}

export function setU32(b: Uint8Array, at: number, value: number): void {
  b[at] = (value >>> 24) & 0xff;
  b[at + 1] = (value >>> 16) & 0xff;
  b[at + 2] = (value >>> 8) & 0xff;
  b[at + 3] = value & 0xff;
}

/** Sequential reads that refuse to run past the end. */
export class ByteReader {
  readonly #b: Uint8Array;
  #at: number;

  constructor(bytes: Uint8Array, at = 0) {
    this.#b = bytes;
    this.#at = at;
  }

  get offset(): number {
    return this.#at;
  }

  get remaining(): number {
    return this.#b.length - this.#at;
  }

  #need(n: number): void {
    if (n < 0 || this.#at + n > this.#b.length) throw new Malformed(`needs ${n} bytes at ${this.#at}, has ${this.#b.length - this.#at}`);
  }

  seek(at: number): void {
    if (at < 0 || at > this.#b.length) throw new Malformed(`offset ${at} is outside ${this.#b.length} bytes`);
    this.#at = at;
  }

  u8(): number {
    this.#need(1);
    return this.#b[this.#at++]!;
  }

  u16(): number {
    this.#need(2);
    const v = getU16(this.#b, this.#at);
    this.#at += 2;
    return v;
  }

  u32(): number {
    this.#need(4);
    const v = getU32(this.#b, this.#at);
    this.#at += 4;
    return v;
  }

  bytes(n: number): Uint8Array {
    this.#need(n);
    const v = this.#b.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }

  skip(n: number): void {
    this.#need(n);
    this.#at += n;
  }
}

/** Appends to a growing buffer (DNS answers, DHCP options): sizes are not known up front. */
export class ByteWriter {
  #b: Uint8Array;
  #at = 0;

  constructor(capacity = 512) {
    this.#b = new Uint8Array(capacity);
  }

  get length(): number {
    return this.#at;
  }

  #room(n: number): void {
    if (this.#at + n <= this.#b.length) return;
    const grown = new Uint8Array(Math.max(this.#b.length * 2, this.#at + n));
    grown.set(this.#b.subarray(0, this.#at));
    this.#b = grown;
  }

  u8(value: number): this {
    this.#room(1);
    this.#b[this.#at++] = value & 0xff;
    return this;
  }

  u16(value: number): this {
    this.#room(2);
    setU16(this.#b, this.#at, value);
    this.#at += 2;
    return this;
  }

  u32(value: number): this {
    this.#room(4);
    setU32(this.#b, this.#at, value);
    this.#at += 4;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.#room(value.length);
    this.#b.set(value, this.#at);
    this.#at += value.length;
    return this;
  }

  /** Overwrites two bytes already written (a length or count filled in afterwards). */
  patchU16(at: number, value: number): void {
    if (at < 0 || at + 2 > this.#at) throw new RangeError(`patch at ${at} is outside the ${this.#at} bytes written`);
    setU16(this.#b, at, value);
  }

  finish(): Uint8Array {
    return this.#b.slice(0, this.#at);
  }
}
