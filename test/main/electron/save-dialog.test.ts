// The export's save dialog (main/electron/save-dialog.ts), as Electron 45 documents
// dialog.showSaveDialog: it resolves {canceled, filePath}, filePath "" when cancelled; replacing
// a file is confirmed by the dialog itself only when asked to ("showOverwriteConfirmation").
import { describe, expect, it } from "vitest";
import { chosenPath, exportDialogOptions } from "../../../main/electron/save-dialog.js";

describe("the export's save dialog", () => {
  it("suggests the guest's image in the folder and asks before replacing a file", () => {
    const options = exportDialogOptions("games-disk.img", "/home/ann/Downloads");
    expect(options.defaultPath).toBe("/home/ann/Downloads/games-disk.img");
    expect(options.properties).toContain("showOverwriteConfirmation");
    expect(options.filters?.[0]).toEqual({ name: "Disk images", extensions: ["img"] });
  });

  it("writes nothing when cancelled, and where the user chose otherwise", () => {
    expect(chosenPath({ canceled: true, filePath: "" })).toBeNull();
    expect(chosenPath({ canceled: true, filePath: "/tmp/x.img" })).toBeNull();
    expect(chosenPath({ canceled: false, filePath: "" })).toBeNull();
    expect(chosenPath({ canceled: false, filePath: "/tmp/x.img" })).toBe("/tmp/x.img");
  });
});
