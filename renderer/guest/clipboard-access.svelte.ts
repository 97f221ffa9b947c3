// Whether the guest's clipboard can work in this page. In the web shell the clipboard shared
// with the guest is the page's (guest-run's ClipboardSync), so the browser's clipboard-read
// permission decides; in Electron the host shares its own clipboard and the page needs none.

import type { HostBridge } from "../../core/ipc/contract.js";

/** "host": the host shares it; "prompt": the browser will ask; "denied"/"unavailable": it cannot work. */
export type ClipboardAccessState = "host" | "granted" | "prompt" | "denied" | "unavailable";

export class ClipboardAccess {
  state: ClipboardAccessState = $state("prompt");

  constructor(host: HostBridge) {
    if (!host.pageClipboard) {
      this.state = "host";
      return;
    }
    if (!navigator.clipboard || !window.isSecureContext) {
      this.state = "unavailable";
      return;
    }
    // "clipboard-read" is Chromium's name; a browser without it leaves the state at "prompt".
    navigator.permissions.query({ name: "clipboard-read" as PermissionName }).then(
      (status) => {
        this.state = status.state;
        status.addEventListener("change", () => (this.state = status.state));
      },
      () => {},
    );
  }

  /** The browser will not share its clipboard with the page: the setting cannot take effect. */
  get refused(): boolean {
    return this.state === "denied" || this.state === "unavailable";
  }
}
