import { describe, expect, it } from "vitest";
import { adviseHugePages, bytesForFilling } from "../../../main/native/huge-pages.js";
import { advisedBytes, advisedMappingsOf, hostGivesHugePages } from "../../support/huge-pages.js";

const MiB = 1024 * 1024;
/** Memories advised here, kept alive: one collected between two counts would lower the second. */
const held: unknown[] = [];

describe.runIf(hostGivesHugePages)("adviseHugePages (this host's transparent huge pages are on)", () => {
  it("marks a WebAssembly memory for huge pages, and what it holds stays as it was", () => {
    const memory = new WebAssembly.Memory({ initial: 512 }); // 32 MiB
    held.push(memory);
    const view = new Uint8Array(memory.buffer);
    view[5] = 7;
    const before = advisedBytes();
    expect(adviseHugePages(memory.buffer)).toBe(true);
    expect(advisedBytes() - before).toBeGreaterThanOrEqual(32 * MiB);
    view[32 * MiB - 1] = 1;
    expect(view[5]).toBe(7);
    expect(view[32 * MiB - 1]).toBe(1);
  });
});

describe("adviseHugePages", () => {
  it("gives no advice for an empty memory", () => {
    expect(adviseHugePages(new ArrayBuffer(0))).toBe(false);
  });
});

describe("bytesForFilling", () => {
  it("gives zero bytes of the size asked for, shared when asked, in memory asked for huge pages where the host gives them", () => {
    const before = advisedMappingsOf(5 * MiB + 64 * 1024); // its memory: 5 MiB and 3 bytes in whole 64 KiB pages
    const bytes = bytesForFilling(5 * MiB + 3);
    expect(bytes.length).toBe(5 * MiB + 3);
    expect(bytes.every((b) => b === 0)).toBe(true);
    bytes[5 * MiB + 2] = 9;
    expect(bytes[5 * MiB + 2]).toBe(9);
    const shared = bytesForFilling(1 * MiB, true);
    held.push(bytes, shared);
    expect(shared!.buffer).toBeInstanceOf(SharedArrayBuffer);
    if (hostGivesHugePages) expect(advisedMappingsOf(5 * MiB + 64 * 1024)).toBe(before + 1);
  });
});
