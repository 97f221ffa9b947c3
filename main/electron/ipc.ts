// The Electron shell's side of the contract: the only file that imports ipcMain. Every
// message's sender is checked (it must be our own page, unmachine://app/, in its top frame),
// commands go to the shared host API, and each FramePipe is a MessageChannelMain whose far
// port goes to the page.

import { ipcMain, MessageChannelMain, type IpcMainEvent, type IpcMainInvokeEvent, type MessagePortMain, type WebContents } from "electron";
import { dispatch, type CommandHandlers } from "../../core/ipc/contract.js";
import { CarrierPipe, isPipeService, portMessageToFrame } from "../../core/pipe/frame-pipe.js";
import type { HostSessions } from "../host/sessions.js";
import type { Disposable } from "../../core/disposable.js";
import { isAppUrl } from "./app-url.js";

function trusted(event: IpcMainEvent | IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame;
  return frame !== null && frame.parent === null && isAppUrl(frame.url);
}

function mainPortPipe(port: MessagePortMain): CarrierPipe {
  const pipe = new CarrierPipe(
    (frame) => port.postMessage(frame),
    () => {
      port.postMessage(null);
      port.close();
    },
  );
  port.on("message", (event) => {
    const frame = portMessageToFrame(event.data);
    if (frame === "end") pipe.end();
    else if (frame) pipe.deliver(frame);
  });
  port.on("close", () => pipe.end());
  port.start();
  return pipe;
}

export function serveIpc(api: CommandHandlers, sessions: HostSessions): Disposable {
  // Sessions a page opened end when that page goes away (closed, reloaded, crashed).
  const opened = new Map<WebContents, Set<string>>();
  const track = (contents: WebContents, id: string): void => {
    let ids = opened.get(contents);
    if (!ids) {
      const set = new Set<string>();
      opened.set(contents, set);
      const end = (): void => {
        for (const sessionId of set) sessions.close(sessionId);
        opened.delete(contents);
      };
      contents.once("destroyed", end);
      contents.once("render-process-gone", end);
      contents.on("did-start-navigation", (details) => {
        if (details.isMainFrame && !details.isSameDocument) end();
      });
      ids = set;
    }
    ids.add(id);
  };
  ipcMain.handle("unmachine:invoke", async (event, name: unknown, args: unknown) => {
    if (!trusted(event)) throw new Error("refused: not the Unmachine page");
    const result = await dispatch(api, name, args);
    if (name === "sessions:open") track(event.sender, (result as { id: string }).id);
    return result;
  });
  const onPipe = (event: IpcMainEvent, request: unknown): void => {
    if (!trusted(event)) return;
    const { id, session, service } = (request ?? {}) as { id?: unknown; session?: unknown; service?: unknown };
    if (typeof id !== "number") return;
    const { port1, port2 } = new MessageChannelMain();
    if (typeof session !== "string" || !isPipeService(service) || !sessions.has(session) || !sessions.serves(service)) {
      event.sender.postMessage("unmachine:pipe-port", { id, error: "no such session or service" }, []);
      return;
    }
    sessions.attachPipe(session, service, mainPortPipe(port1));
    event.sender.postMessage("unmachine:pipe-port", { id }, [port2]);
  };
  ipcMain.on("unmachine:pipe", onPipe);
  return {
    dispose() {
      ipcMain.removeHandler("unmachine:invoke");
      ipcMain.removeListener("unmachine:pipe", onPipe);
    },
  };
}
