// The preload: the only code that touches ipcRenderer. It exposes `window.unmachine` to the
// sandboxed, context-isolated page: commands by name (the host checks them against the
// contract; each answers {ok, value|error}), build progress, a dropped file's path (Electron's
// webUtils.getPathForFile, which only a preload may call), and FramePipes as MessagePorts
// handed to the page with window.postMessage (or an explicit refusal), and the closing window's
// request to suspend the page's guests (answered once they are saved), and host events.
// Counterparts: main/electron/ipc.ts (host), renderer/bridge/electron-bridge.ts (page).

const { contextBridge, ipcRenderer, webUtils } = require("electron") as typeof import("electron");

/** The page's window, seen from the preload's isolated world. */
const page = globalThis as unknown as { postMessage(message: unknown, targetOrigin: string, transfer?: unknown[]): void };

let nextPipe = 1;

ipcRenderer.on("unmachine:pipe-port", (event, reply: { id: number; error?: string }) => {
  page.postMessage({ unmachinePipe: reply.id, error: reply.error }, "*", event.ports);
});

contextBridge.exposeInMainWorld("unmachine", {
  invoke: (name: string, args: unknown[]): Promise<unknown> => ipcRenderer.invoke("unmachine:invoke", name, args),
  openPipe: (session: string, service: string): number => {
    const id = nextPipe++;
    ipcRenderer.send("unmachine:pipe", { id, session, service });
    return id;
  },
  /** The tray asks to start a guest, and to launch one of its apps when `app` is a string. */
  onStartGuest: (listener: (guest: string, app?: string) => void): void => {
    ipcRenderer.on("unmachine:start-guest", (_event, guest: unknown, app: unknown) => {
      if (typeof guest === "string") listener(guest, typeof app === "string" ? app : undefined);
    });
  },
  /** A closing window asks the page to save its guests; the host hears when they are. */
  onSuspendAll: (listener: () => Promise<void>): void => {
    ipcRenderer.on("unmachine:suspend-all", (_event, id: number) => {
      void listener().finally(() => ipcRenderer.send("unmachine:suspended", id));
    });
  },
  /** The path of a dropped File on this computer, "" for one the page made itself. */
  pathForFile: (file: unknown): string => webUtils.getPathForFile(file as File),
  /** Build progress ({guest, state, line}); returns the way to stop listening. */
  onBuild: (listener: (progress: unknown) => void): (() => void) => {
    const relay = (_event: unknown, progress: unknown): void => listener(progress);
    ipcRenderer.on("unmachine:build", relay);
    return () => void ipcRenderer.removeListener("unmachine:build", relay);
  },
  /** Host events of the page's sessions (a guest's windows); returns the way to stop listening. */
  onEvent: (listener: (event: unknown) => void): (() => void) => {
    const relay = (_event: unknown, event: unknown): void => listener(event);
    ipcRenderer.on("unmachine:event", relay);
    return () => void ipcRenderer.removeListener("unmachine:event", relay);
  },
});
