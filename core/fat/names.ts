// Names on a FAT volume: a host name becomes a VFAT long name (invalid characters replaced, unique
// per directory ignoring case) and an 8.3 short name made by the basis-name and numeric-tail
// rules of Microsoft's FAT specification (fatgen103, "FAT Long Directory Entries", 7.4).
// Counterpart: core/fat/entries.ts writes them. Short names are 11 ASCII characters, space
// padded ("README~1TXT"), never clash within a directory, and never hold non-ASCII bytes.

import { FatError } from "./tree.js";

/** A long name has at most 255 UTF-16 code units (fatgen103, "Name Limits and Character Sets"). */
export const MAX_LONG_NAME = 255;

/** Characters a long name may not hold (besides 0x00-0x1F): Windows refuses them in file names. */
const LONG_INVALID = new Set(['"', "*", "/", ":", "<", ">", "?", "\\", "|"]);
/** Punctuation a short name may hold, besides A-Z, 0-9 and bytes above 127 (which we never use). */
const SHORT_PUNCTUATION = new Set(["$", "%", "'", "-", "_", "@", "~", "`", "!", "(", ")", "{", "}", "^", "#", "&"]);
/** DOS device names: a short name with one of these as its base would open the device instead. */
const DEVICES = new Set([
  "CON", "PRN", "AUX", "NUL", "CLOCK$",
  ...Array.from({ length: 9 }, (_, i) => `COM${i + 1}`),
  ...Array.from({ length: 9 }, (_, i) => `LPT${i + 1}`),
]);
const COMBINING_MARKS = /[\u0300-\u036f]/g;
const MAX_TAIL = 999_999;

/** A name as it lands in one directory: the long name, its short name, whether it needs LFN entries. */
export interface DirectoryName {
  readonly long: string;
  /** 11 characters, space padded: 8 of base, 3 of extension. */
  readonly short: string;
  /** False when the long name is exactly the short name (upper case 8.3): no LFN entries. */
  readonly needsLongEntries: boolean;
}

/**
 * The long name a host name becomes: characters Windows refuses (control characters and
 * `" * / : < > ? \ |`) and trailing spaces or periods (which Windows strips) become "_".
 */
export function toLongName(hostName: string): string {
  if (hostName.length === 0) throw new FatError("a file or directory has an empty name; a FAT name needs at least one character");
  let out = "";
  for (const ch of hostName) {
    const code = ch.codePointAt(0)!;
    out += code < 0x20 || LONG_INVALID.has(ch) ? "_" : ch;
  }
  const trailing = /[ .]+$/.exec(out);
  if (trailing) out = out.slice(0, trailing.index) + "_".repeat(trailing[0].length);
  if (out.length > MAX_LONG_NAME) {
    throw new FatError(`"${hostName}": ${out.length} UTF-16 units is longer than the ${MAX_LONG_NAME} a FAT long name can hold`);
  }
  return out;
}

/** One character of a short name, upper case: "" for a space (dropped), "_" when lossy. */
function shortChar(ch: string): { char: string; lossy: boolean } {
  if (ch === " ") return { char: "", lossy: false };
  if (ch === ".") return { char: ".", lossy: false };
  const code = ch.codePointAt(0)!;
  if (code < 0x80) {
    const upper = ch.toUpperCase();
    if ((upper >= "A" && upper <= "Z") || (upper >= "0" && upper <= "9") || SHORT_PUNCTUATION.has(upper)) return { char: upper, lossy: false };
    return { char: "_", lossy: true };
  }
  // Not in every OEM code page: the base letter where there is one ("Ü" → "U"), else "_".
  const base = ch.normalize("NFD").replace(COMBINING_MARKS, "").toUpperCase();
  if (/^[A-Z0-9]$/.test(base)) return { char: base, lossy: true };
  return { char: "_", lossy: true };
}

/** The basis name (fatgen103 7.4): upper case, spaces and leading periods stripped, 8 + 3 characters. */
export function basisName(long: string): { base: string; ext: string; lossy: boolean } {
  let lossy = false;
  let converted = "";
  for (const ch of long) {
    const c = shortChar(ch);
    lossy ||= c.lossy;
    converted += c.char;
  }
  converted = converted.replace(/^\.+/, "");
  const dot = converted.lastIndexOf(".");
  // Embedded periods before the last one are dropped, as Windows does ("a.b.txt" → "AB~1.TXT").
  const base = (dot < 0 ? converted : converted.slice(0, dot)).replaceAll(".", "");
  const ext = dot < 0 ? "" : converted.slice(dot + 1);
  return { base: (base || "_").slice(0, 8), ext: ext.slice(0, 3), lossy };
}

/** Whether a long name is already a valid 8.3 name, ignoring case ("readme.txt" is, "Read Me.txt" is not). */
export function fits83(long: string): boolean {
  const m = /^([^.]{1,8})(?:\.([^.]{1,3}))?$/.exec(long);
  if (!m) return false;
  for (const ch of long) {
    if (ch === ".") continue;
    const c = shortChar(ch);
    if (c.lossy || c.char === "") return false;
  }
  return true;
}

/** "README~1TXT" → "README~1.TXT". */
export function displayShortName(short: string): string {
  const base = short.slice(0, 8).trimEnd();
  const ext = short.slice(8, 11).trimEnd();
  return ext ? `${base}.${ext}` : base;
}

function pack(base: string, ext: string): string {
  return base.padEnd(8, " ") + ext.padEnd(3, " ");
}

/** The key two long names clash on: FAT compares names without regard to case. */
function foldCase(name: string): string {
  return name.toUpperCase();
}

/** Long names made unique ignoring case: a later clash gets " (2)", " (3)"... before its extension. */
export function uniqueLongNames(longs: readonly string[]): string[] {
  const taken = new Set<string>();
  const all = new Set(longs.map(foldCase));
  return longs.map((long) => {
    let name = long;
    if (taken.has(foldCase(name))) {
      const dot = long.lastIndexOf(".");
      const stem = dot > 0 ? long.slice(0, dot) : long;
      const ext = dot > 0 ? long.slice(dot) : "";
      for (let n = 2; ; n++) {
        const suffix = ` (${n})`;
        name = stem.slice(0, MAX_LONG_NAME - suffix.length - ext.length) + suffix + ext;
        if (!taken.has(foldCase(name)) && !all.has(foldCase(name))) break;
      }
    }
    taken.add(foldCase(name));
    return name;
  });
}

/**
 * Names for every entry of one directory, in order. Names that already fit 8.3 keep their short
 * name (reserved first, so a generated "~n" never takes it); the others get the lowest free
 * numeric tail "~n" (fatgen103 7.4, "The Numeric-Tail Generation Algorithm"). `where` names the
 * directory in errors.
 */
export function directoryNames(hostNames: readonly string[], where: string): DirectoryName[] {
  const longs = uniqueLongNames(hostNames.map(toLongName));
  const taken = new Set<string>();
  const shorts: (string | undefined)[] = longs.map((long) => {
    if (!fits83(long)) return undefined;
    const { base, ext } = basisName(long);
    if (DEVICES.has(base)) return undefined;
    const short = pack(base, ext);
    taken.add(short);
    return short;
  });
  const nextTail = new Map<string, number>();
  longs.forEach((long, i) => {
    if (shorts[i] !== undefined) return;
    const { base, ext } = basisName(long);
    const key = `${base}.${ext}`;
    for (let n = nextTail.get(key) ?? 1; n <= MAX_TAIL; n++) {
      const tail = `~${n}`;
      const short = pack(base.slice(0, 8 - tail.length) + tail, ext);
      if (!taken.has(short)) {
        taken.add(short);
        shorts[i] = short;
        nextTail.set(key, n + 1);
        return;
      }
    }
    throw new FatError(`${where}: no free short name left for "${long}" (tails ~1 to ~${MAX_TAIL} are all taken)`);
  });
  return longs.map((long, i) => {
    const short = shorts[i]!;
    return { long, short, needsLongEntries: long !== displayShortName(short) };
  });
}

/** The checksum of a short name that each of its LFN entries carries (fatgen103 7.2, ChkSum). */
export function shortNameChecksum(short: string): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + short.charCodeAt(i)) & 0xff;
  return sum;
}
