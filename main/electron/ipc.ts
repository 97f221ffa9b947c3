// The Electron shell's side of the contract: the only file that imports ipcMain. Every
// message's sender is checked (it must be our own page, unmachine://app/, in its top frame),
// commands go to the shared host API, and each FramePipe is a MessageChannelMain whose far
// port goes to the page.

import { ipcMain, MessageChannelMain, type IpcMainEvent, type IpcMainInvokeEvent, type MessagePortMain } from "electron";
import { dispatch, type CommandHandlers } from "../../core/ipc/contract.js";
import { CarrierPipe, isPipeService, portMessageToFrame } from "../../core/pipe/frame-pipe.js";
import type { HostSessions } from "../host/sessions.js";
import type { Disposable } from "../../core/disposable.js";
import { APP_ORIGIN } from "./protocol.js";

function trusted(event: IpcMainEvent | IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame;
  return frame !== null && frame.parent === null && new URL(frame.url).origin === APP_ORIGIN;
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
  ipcMain.handle("unmachine:invoke", async (event, name: unknown, args: unknown) => {
    if (!trusted(event)) throw new Error("refused: not the Unmachine page");
    return await dispatch(api, name, args);
  });
  const onPipe = (event: IpcMainEvent, request: unknown): void => {
    if (!trusted(event)) return;
    const { id, session, service } = (request ?? {}) as { id?: unknown; session?: unknown; service?: unknown };
    if (typeof id !== "number") return;
    const { port1, port2 } = new MessageChannelMain();
    if (typeof session !== "string" || !isPipeService(service) || !sessions.has(session)) {
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
