// What the Electron shell relies on to add a dropped file by its path: Electron 45's
// webUtils.getPathForFile (called in the preload, main/electron/preload.cts) returns the file's
// path, and "" for a File made in the page; the page's bridge refuses such a file in one line
// and otherwise asks the host to add the path it was given.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ElectronBridge, type PreloadApi } from "../../../renderer/bridge/electron-bridge.js";

const root = join(import.meta.dirname, "..", "..", "..");

function bridge(path: string, asked: unknown[][]): ElectronBridge {
  const api: PreloadApi = {
    invoke: async (name, args) => {
      asked.push([name, ...args]);
      return { ok: true, value: { name: "added" } };
    },
    openPipe: () => 0,
    onStartGuest: () => {},
    onBuild: () => () => {},
    onSuspendAll: () => {},
    pathForFile: () => path,
    onEvent: () => () => {},
  };
  return new ElectronBridge(api);
}

describe("a dropped file's path in Electron", () => {
  it("comes from webUtils.getPathForFile, a string that is empty for a File made in JavaScript", () => {
    const types = readFileSync(join(root, "node_modules", "electron", "electron.d.ts"), "utf8");
    const webUtils = types.slice(types.indexOf("interface WebUtils {"), types.indexOf("interface WebviewTag"));
    expect(webUtils).toContain("getPathForFile(file: File): string;");
    expect(webUtils).toMatch(/constructed in JS and is not backed by a\s+\*?\s*file on disk an empty string is returned/);
    expect(readFileSync(join(root, "main", "electron", "preload.cts"), "utf8")).toContain("webUtils.getPathForFile(file as File)");
  });

  it("is added by the host; a file without one is refused in the page, the host never asked", async () => {
    const asked: unknown[][] = [];
    await expect(bridge("", asked).addImage({ name: "unpacked.img" } as File)).rejects.toThrow("unpacked.img: this file has no path on this computer");
    expect(asked).toEqual([]);
    await expect(bridge("/home/me/dos.img", asked).addImage({ name: "dos.img" } as File)).resolves.toEqual({ name: "added" });
    expect(asked).toEqual([["library:add", "/home/me/dos.img"]]);
  });
});
