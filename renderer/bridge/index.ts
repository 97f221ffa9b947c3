// Picks the bridge for the shell the page runs in: Electron's preload API when present,
// otherwise the web shell, whose token is in the page's address.

import type { HostBridge } from "../../core/ipc/contract.js";
import { ElectronBridge, type PreloadApi } from "./electron-bridge.js";
import { WebBridge } from "./web-bridge.js";

export function connectHost(): HostBridge {
  const api = (window as { unmachine?: PreloadApi }).unmachine;
  if (api) return new ElectronBridge(api);
  const token = new URLSearchParams(location.search).get("token");
  if (!token) throw new Error("This page needs its token: open the address that `unmachine serve` printed.");
  return new WebBridge(token);
}
