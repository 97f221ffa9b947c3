// Picks the bridge for the shell the page runs in: Electron's preload API when present,
// otherwise the web shell, which the page reaches with the session cookie the server set.

import type { HostBridge } from "../../core/ipc/contract.js";
import { ElectronBridge, type PreloadApi } from "./electron-bridge.js";
import { WebBridge } from "./web-bridge.js";

export function connectHost(): HostBridge {
  const api = (window as { unmachine?: PreloadApi }).unmachine;
  if (api) return new ElectronBridge(api);
  return new WebBridge();
}
