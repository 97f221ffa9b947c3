// The Electron shell: one window running the page, sandboxed and context-isolated with a
// strict CSP; navigation and new windows locked; permissions refused; a tray icon that lists
// the guests to start. It serves the same contract as the web shell (host/host-api.ts).

import { app, BrowserWindow, clipboard, dialog, Menu, nativeImage, session, Tray } from "electron";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GuestLibrary } from "../guests/library.js";
import { ensureGuestBuilt } from "../guests/builder.js";
import { HostSessions } from "../host/sessions.js";
import { SettingsStore } from "../guests/settings-store.js";
import { registerHostServices } from "../host/services.js";
import { createHostApi } from "../host/host-api.js";
import { assetsDir, dataDir, rendererDir } from "../paths.js";
import { serveIpc } from "./ipc.js";
import { APP_ORIGIN, registerScheme, SCHEME, serveScheme } from "./protocol.js";
import { appWebPreferences, lockContents } from "./contents-policy.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const library = new GuestLibrary();
const sessions = new HostSessions(join(dataDir(), "logs"));
let window: BrowserWindow | undefined;
let tray: Tray | undefined;

registerScheme();
app.enableSandbox();

if (!app.requestSingleInstanceLock()) app.quit();
app.on("second-instance", () => showWindow());

function showWindow(): BrowserWindow {
  if (window && !window.isDestroyed()) {
    if (window.isMinimized()) window.restore();
    window.show();
    window.focus();
    return window;
  }
  window = new BrowserWindow({
    width: 1180,
    height: 820,
    title: "Unmachine",
    icon: join(assetsDir, "icon.png"),
    backgroundColor: "#16181d",
    webPreferences: appWebPreferences(join(here, "preload.cjs"), { packaged: app.isPackaged }),
  });
  void window.loadURL(`${APP_ORIGIN}/index.html`);
  return window;
}

function startFromTray(guest: string): void {
  const win = showWindow();
  const send = (): void => win.webContents.send("unmachine:start-guest", guest);
  if (win.webContents.isLoading()) win.webContents.once("did-finish-load", send);
  else send();
}

function buildTray(): void {
  const icon = nativeImage.createFromPath(join(assetsDir, "tray.png"));
  tray = new Tray(icon);
  tray.setToolTip("Unmachine");
  const guests = library.summaries();
  tray.setContextMenu(
    Menu.buildFromTemplate([
      ...guests.map((g) => ({ label: `Start ${g.title}`, enabled: g.ready, click: () => startFromTray(g.name) })),
      { type: "separator" as const },
      { label: "Show Unmachine", click: () => showWindow() },
      { label: "Quit", role: "quit" as const },
    ]),
  );
  tray.on("click", () => showWindow());
}

app.on("web-contents-created", (_event, contents) => lockContents(contents, { packaged: app.isPackaged }));

void app.whenReady().then(async () => {
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  serveScheme(rendererDir, library);
  const settings = new SettingsStore(dataDir());
  const services = registerHostServices(sessions, settings, { readText: () => clipboard.readText(), writeText: (text) => clipboard.writeText(text) });
  const api = createHostApi({
    library,
    sessions,
    settings,
    services,
    pickFolder: async () => {
      const options = { title: "Share a folder with the guest", properties: ["openDirectory" as const, "createDirectory" as const] };
      const result = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
      return result.canceled ? null : (result.filePaths[0] ?? null);
    },
    shell: "electron",
    urls: {
      media: (guest, role) => `${SCHEME}://media/${encodeURIComponent(guest)}/${role}`,
      firmware: (which) => `${SCHEME}://firmware/${which}`,
    },
  });
  serveIpc(api, sessions);
  // The default guest is built on first run (its recipe prints progress to the terminal).
  await ensureGuestBuilt(library, "tiny").catch((error: unknown) => console.error(`unmachine: ${(error as Error).message}`));
  buildTray();
  showWindow();
});

app.on("window-all-closed", () => {
  // The tray keeps the app reachable; quit only where there is no tray.
  if (!tray) app.quit();
});

app.on("before-quit", () => sessions.dispose());
