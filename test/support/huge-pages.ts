// What the kernel says of a process's transparent huge pages, for the tests of
// main/native/huge-pages.ts: whether this host gives them, and how much memory asked for them.
import { existsSync, readFileSync } from "node:fs";

const THP = "/sys/kernel/mm/transparent_hugepage/enabled";

/** Whether this host gives transparent huge pages to memory that asks (its setting is "always" or "madvise"). */
export const hostGivesHugePages = process.platform === "linux" && existsSync(THP) && /\[(always|madvise)\]/.test(readFileSync(THP, "utf8"));

/** The bytes of a process's mappings marked for huge pages (VmFlags "hg" in its smaps). */
export function advisedBytes(pid: number | "self" = "self"): number {
  let total = 0;
  let size = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) size = parseInt(range[2]!, 16) - parseInt(range[1]!, 16);
    else if (line.startsWith("VmFlags:") && / hg\b/.test(line)) total += size;
  }
  return total;
}

/** How many of a process's mappings of exactly `bytes` are marked for huge pages: a memory just advised adds one of its own size. */
export function advisedMappingsOf(bytes: number, pid: number | "self" = "self"): number {
  let count = 0;
  let size = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) size = parseInt(range[2]!, 16) - parseInt(range[1]!, 16);
    else if (line.startsWith("VmFlags:") && / hg\b/.test(line) && size === bytes) count++;
  }
  return count;
}
