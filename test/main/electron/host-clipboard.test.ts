// The Electron shell's host clipboard for images, without Electron's runtime: a PNG the guest
// copied is written as one ClipboardItem of image/png and read back as the same bytes, text
// passes through, and a clipboard without an image gives none. Also pins the wording of
// Electron 45's typings this relies on (the async clipboard with ClipboardItem).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { electronHostClipboard, type ClipboardEntry } from "../../../main/electron/host-clipboard.js";
import { noisePng } from "../../support/png.js";

class FakeItem implements ClipboardEntry {
  readonly #items: Record<string, Blob>;
  constructor(items: Record<string, Blob>) {
    this.#items = items;
  }
  get types(): string[] {
    return Object.keys(this.#items);
  }
  async getType(type: string): Promise<unknown> {
    const blob = this.#items[type];
    if (!blob) throw new Error(`no ${type}`);
    return blob;
  }
}

function fakeClipboard() {
  let items: FakeItem[] = [];
  let text = "";
  return {
    readText: async () => text,
    writeText: async (t: string) => {
      text = t;
      items = [new FakeItem({ "text/plain": new Blob([t]) })];
    },
    read: async () => items,
    write: async (next: FakeItem[]) => {
      items = next;
      text = "";
    },
  };
}

describe("electronHostClipboard", () => {
  it("writes a PNG as an image/png ClipboardItem and reads the same bytes back", async () => {
    const host = electronHostClipboard(fakeClipboard(), (items) => new FakeItem(items));
    expect(await host.readImage!()).toBeUndefined();
    const png = noisePng(16, 16);
    await host.writeImage!(png);
    expect(await host.readImage!()).toEqual(png);
    expect(await host.readText()).toBe("");
    await host.writeText("text again");
    expect(await host.readText()).toBe("text again");
    expect(await host.readImage!()).toBeUndefined();
  });

  it("relies on Electron 45: clipboard.read/write take ClipboardItems whose getType resolves to a Blob for image types", () => {
    const types = readFileSync(join(import.meta.dirname, "..", "..", "..", "node_modules", "electron", "electron.d.ts"), "utf8");
    expect(types).toMatch(/read\(\): Promise<Electron\.ClipboardItem\[\]>;/);
    expect(types).toMatch(/write\(data: ClipboardItem\[\]\): Promise<void>;/);
    expect(types).toMatch(/constructor\(items: Record<string, \(string\) \| \(ClipboardBookmark\) \| \(Blob\) \| \(Promise<\(Blob\) \| \(string\)>\)>\);/);
    expect(types).toMatch(/The promise resolves to a `Blob` for most MIME\s*\*\s*types/);
    expect(types).toMatch(/class ClipboardItem extends Electron\.ClipboardItem \{\}/);
  });
});
