// The host's clipboard in Electron's main process, for ClipboardSync: text, and PNG images
// through Electron 45's asynchronous clipboard (clipboard.read/write with ClipboardItem, whose
// getType gives a Blob). Kept free of Electron's runtime: main.ts passes its clipboard module
// and ClipboardItem class in, so this is tested with stand-ins.

import type { HostClipboard } from "../../core/agent/clipboard-sync.js";

/** The part of an Electron ClipboardItem used here. */
export interface ClipboardEntry {
  readonly types: string[];
  /** A Blob for image/png (Electron gives a bookmark object only for its bookmark type). */
  getType(type: string): Promise<unknown>;
}

/** The part of Electron's clipboard module used here. */
export interface ElectronClipboard<Item extends ClipboardEntry> {
  readText(): Promise<string>;
  writeText(text: string): Promise<void>;
  read(): Promise<Item[]>;
  write(items: Item[]): Promise<void>;
}

export function electronHostClipboard<Item extends ClipboardEntry>(
  clipboard: ElectronClipboard<Item>,
  makeItem: (items: Record<string, Blob>) => Item,
): HostClipboard {
  return {
    readText: () => clipboard.readText(),
    writeText: (text) => clipboard.writeText(text),
    readImage: async () => {
      const item = (await clipboard.read()).find((entry) => entry.types.includes("image/png"));
      const data = item ? await item.getType("image/png") : undefined;
      return data instanceof Blob ? new Uint8Array(await data.arrayBuffer()) : undefined;
    },
    writeImage: (png) => clipboard.write([makeItem({ "image/png": new Blob([png.slice()], { type: "image/png" }) })]),
  };
}
