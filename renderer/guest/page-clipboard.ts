// The page's clipboard for ClipboardSync in the web shell: text, and PNG images through
// navigator.clipboard.read/write with a ClipboardItem of image/png. Images cross the host's
// WebSocket as base64 ("clipboard:setImage", the "clipboardImage" event).

import type { HostClipboard } from "../../core/agent/clipboard-sync.js";

export function pageClipboard(): HostClipboard {
  const clipboard = navigator.clipboard;
  return {
    readText: () => clipboard.readText(),
    writeText: (text) => clipboard.writeText(text),
    readImage: async () => {
      const item = (await clipboard.read()).find((entry) => entry.types.includes("image/png"));
      return item ? new Uint8Array(await (await item.getType("image/png")).arrayBuffer()) : undefined;
    },
    writeImage: (png) => clipboard.write([new ClipboardItem({ "image/png": new Blob([png.slice()], { type: "image/png" }) })]),
  };
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let at = 0; at < bytes.length; at += 0x8000) binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}
