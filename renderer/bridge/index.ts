// Picks the bridge for the shell the page runs in: Electron's preload API when present,
// otherwise the web shell, which the page reaches with the session cookie the server set.

import type { HostBridge } from "../../core/ipc/contract.js";
import { ElectronBridge, type PreloadApi } from "./electron-bridge.js";
import { WebBridge } from "./web-bridge.js";

/** Electron's preload API, when the page runs in the Electron shell. */
function preloadApi(): PreloadApi | undefined {
  return (window as { unmachine?: PreloadApi }).unmachine;
}

/** Whether the page runs in the Electron shell (not the web shell). */
export function inElectronShell(): boolean {
  return preloadApi() !== undefined;
}

export function connectHost(): HostBridge {
  const api = preloadApi();
  if (api) return new ElectronBridge(api);
  return new WebBridge();
}
