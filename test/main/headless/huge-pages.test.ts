import { describe, expect, it } from "vitest";
import { adviseHugePages, bytesForFilling } from "../../../main/headless/huge-pages.js";
import { advisedBytes, hostGivesHugePages } from "../../support/huge-pages.js";

const MiB = 1024 * 1024;

describe.runIf(hostGivesHugePages)("adviseHugePages (this host's transparent huge pages are on)", () => {
  it("marks a WebAssembly memory for huge pages, and what it holds stays as it was", () => {
    const memory = new WebAssembly.Memory({ initial: 512 }); // 32 MiB
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
    const before = advisedBytes();
    const bytes = bytesForFilling(5 * MiB + 3);
    expect(bytes.length).toBe(5 * MiB + 3);
    expect(bytes.every((b) => b === 0)).toBe(true);
    bytes[5 * MiB + 2] = 9;
    expect(bytes[5 * MiB + 2]).toBe(9);
    const shared = bytesForFilling(1 * MiB, true);
    expect(shared!.buffer).toBeInstanceOf(SharedArrayBuffer);
    if (hostGivesHugePages) expect(advisedBytes() - before).toBeGreaterThanOrEqual(6 * MiB);
  });
});
