// The Electron shell: one window running the page, sandboxed and context-isolated with a
// strict CSP; navigation and new windows locked; permissions refused; a tray icon that lists
// the library with each guest's state and its remembered apps (choosing one starts it or brings
// its tab forward in the page, and launches the app), where a tray can be seen. Closing the window suspends its guests first. It serves the same contract as the web shell
// (host/host-api.ts). The window shows at once; in development the default guest is built in
// the background with its progress on the page; a packaged app never builds (it is bundled).

import { app, BrowserWindow, clipboard, ClipboardItem, dialog, Menu, nativeImage, session, Tray } from "electron";
import { electronHostClipboard } from "./host-clipboard.js";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BuildProgress } from "../../core/ipc/contract.js";
import { GuestLibrary } from "../guests/library.js";
import { AppsStore } from "../guests/apps-store.js";
import { ensureGuestBuilt } from "../guests/builder.js";
import { HostSessions } from "../host/sessions.js";
import { SettingsStore } from "../guests/settings-store.js";
import { registerHostServices } from "../host/services.js";
import { createHostApi } from "../host/host-api.js";
import { assetsDir, dataDir, rendererDir } from "../paths.js";
import { askToSuspend, serveIpc } from "./ipc.js";
import { pageStates } from "../host/page-states.js";
import { chosenPath, exportDialogOptions } from "./save-dialog.js";
import { APP_ORIGIN, registerScheme, SCHEME, serveScheme } from "./protocol.js";
import { appWebPreferences, lockContents } from "./contents-policy.js";
import { buildAtStart, guestStates, progressLines, quitWhenAllClosed, statusNotifierWatched, suspendOnClose, trayTemplate } from "./shell-rules.js";
import { EMULATOR_V8_FLAGS } from "../emulator-v8.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const DEFAULT_GUEST = "tiny";

registerScheme();
app.enableSandbox();
// The page runs the emulator: its V8 gets the emulator's flags (emulator-v8.ts), before any page starts.
app.commandLine.appendSwitch("js-flags", EMULATOR_V8_FLAGS);

// The second instance only hands its turn to the first (which shows its window) and quits,
// without running anything below: app.quit() does not stop "ready" from being emitted.
if (!app.requestSingleInstanceLock()) app.quit();
else startShell();

function startShell(): void {
  const library = new GuestLibrary();
  const sessions = new HostSessions(join(dataDir(), "logs"));
  const apps = new AppsStore(library.dataDir);
  let window: BrowserWindow | undefined;
  let tray: Tray | undefined;
  let lastBuild: BuildProgress | undefined;

  const showWindow = (): BrowserWindow => {
    if (window && !window.isDestroyed()) {
      if (window.isMinimized()) window.restore();
      window.show();
      window.focus();
      return window;
    }
    const win = new BrowserWindow({
      width: 1180,
      height: 820,
      title: "Unmachine",
      icon: join(assetsDir, "icon.png"),
      backgroundColor: "#16181d",
      webPreferences: appWebPreferences(join(here, "preload.cjs"), { packaged: app.isPackaged }),
    });
    window = win;
    // Its guests are saved before it closes.
    suspendOnClose(win, () => askToSuspend(win.webContents));
    // A page that loads (or reloads) during a build is told where it stands.
    win.webContents.on("did-finish-load", () => {
      if (lastBuild) win.webContents.send("unmachine:build", lastBuild);
    });
    void win.loadURL(`${APP_ORIGIN}/index.html`);
    return win;
  };

  /** The page starts the guest, or brings its tab forward where it runs already; then launches the app, if one is named. */
  const openFromTray = (guest: string, app?: string): void => {
    const win = showWindow();
    const send = (): void => win.webContents.send("unmachine:start-guest", guest, app);
    if (win.webContents.isLoading()) win.webContents.once("did-finish-load", send);
    else send();
  };

  const refreshTray = (): void => {
    if (!tray || tray.isDestroyed()) return;
    const states = guestStates(sessions.list());
    const remembered = new Map(library.summaries().map((g) => [g.name, apps.load(g.name)] as const));
    tray.setContextMenu(Menu.buildFromTemplate(trayTemplate(library.summaries(), states, { open: openFromTray, show: () => void showWindow() }, remembered)));
  };
  // A guest starting or stopping changes its state in the tray; a guest's agent reporting other apps, its apps.
  sessions.onChange(() => refreshTray());
  apps.onChange(() => refreshTray());

  const reportBuild = (progress: BuildProgress): void => {
    lastBuild = progress;
    console.error(`unmachine: ${progress.line}`);
    for (const win of BrowserWindow.getAllWindows()) win.webContents.send("unmachine:build", progress);
  };

  const buildDefaultGuest = async (): Promise<void> => {
    if (!buildAtStart({ packaged: app.isPackaged, recipe: library.buildScript(DEFAULT_GUEST) !== undefined })) return;
    const progress = progressLines(DEFAULT_GUEST, reportBuild);
    try {
      await ensureGuestBuilt(library, DEFAULT_GUEST, { progress });
      progress.end();
      reportBuild({ guest: DEFAULT_GUEST, state: "done", line: `guest "${DEFAULT_GUEST}" is ready` });
    } catch (error) {
      progress.end();
      reportBuild({ guest: DEFAULT_GUEST, state: "failed", line: (error as Error).message });
    }
    refreshTray();
  };

  /** Linux shows a tray icon only where a StatusNotifier host runs (GNOME needs an extension). */
  const trayCanShow = (): Promise<boolean> => {
    if (process.platform !== "linux") return Promise.resolve(true);
    const args = ["call", "--session", "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus"];
    args.push("--method", "org.freedesktop.DBus.NameHasOwner", "org.kde.StatusNotifierWatcher");
    return new Promise((resolve) => execFile("gdbus", args, { timeout: 2000 }, (error, stdout) => resolve(!error && statusNotifierWatched(stdout))));
  };

  const buildTray = async (): Promise<void> => {
    if (!(await trayCanShow())) return;
    tray = new Tray(nativeImage.createFromPath(join(assetsDir, "tray.png")));
    tray.setToolTip("Unmachine");
    tray.on("click", () => void showWindow());
    refreshTray();
  };

  app.on("second-instance", () => void showWindow());
  app.on("web-contents-created", (_event, contents) => lockContents(contents, { packaged: app.isPackaged }));
  app.on("window-all-closed", () => {
    if (quitWhenAllClosed(tray !== undefined && !tray.isDestroyed())) app.quit();
  });
  // Quitting closes the window first, so that its page saves its guests; then it quits.
  app.on("before-quit", (event) => {
    if (window && !window.isDestroyed()) {
      event.preventDefault();
      window.once("closed", () => app.quit());
      window.close();
      return;
    }
    sessions.dispose();
  });

  const states = pageStates(library.dataDir, library);

  void app.whenReady().then(async () => {
    session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
    session.defaultSession.setPermissionCheckHandler(() => false);
    serveScheme(rendererDir, library, states);
    const settings = new SettingsStore(dataDir());
    const services = registerHostServices(sessions, electronHostClipboard(clipboard, (items) => new ClipboardItem(items)));
    const api = createHostApi({
      library,
      sessions,
      settings,
      services,
      states,
      apps,
      pickFolder: async () => {
        const options = { title: "Share a folder with the guest", properties: ["openDirectory" as const, "createDirectory" as const] };
        const result = window && !window.isDestroyed() ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
        return result.canceled ? null : (result.filePaths[0] ?? null);
      },
      pickSaveFile: async (suggested) => {
        const options = exportDialogOptions(suggested, app.getPath("downloads"));
        const result = window && !window.isDestroyed() ? await dialog.showSaveDialog(window, options) : await dialog.showSaveDialog(options);
        return chosenPath(result);
      },
      shell: "electron",
      urls: {
        media: (guest, role) => `${SCHEME}://media/${encodeURIComponent(guest)}/${role}`,
        firmware: (which) => `${SCHEME}://firmware/${which}`,
        state: (guest) => `${SCHEME}://state/${encodeURIComponent(guest)}`,
      },
    });
    serveIpc(api, sessions, services);
    showWindow();
    await Promise.all([buildTray(), buildDefaultGuest()]);
  });
}
