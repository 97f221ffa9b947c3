// The save dialog an export asks where to write a guest's disk (Electron's dialog.showSaveDialog),
// kept free of Electron's runtime so it is tested without it. The dialog itself confirms replacing
// an existing file ("showOverwriteConfirmation"), so the host then writes with replacing allowed;
// a cancelled dialog resolves with an empty filePath, which means: write nothing.

import { join } from "node:path";
import type { SaveDialogOptions, SaveDialogReturnValue } from "electron";

/** The dialog's options: the guest's image name in `folder`, replacing a file confirmed by the dialog. */
export function exportDialogOptions(suggested: string, folder: string): SaveDialogOptions {
  return {
    title: "Export the guest's disk with its changes",
    buttonLabel: "Export",
    defaultPath: join(folder, suggested),
    filters: [
      { name: "Disk images", extensions: ["img"] },
      { name: "All files", extensions: ["*"] },
    ],
    properties: ["createDirectory", "showOverwriteConfirmation"],
  };
}

/** The file the user chose, or null when the dialog was cancelled. */
export function chosenPath(result: SaveDialogReturnValue): string | null {
  return result.canceled || result.filePath === "" ? null : result.filePath;
}
