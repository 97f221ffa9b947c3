// The Electron shell's side of the contract: the only file that imports ipcMain. Every
// message's sender is checked (it must be our own page, unmachine://app/, in its top frame),
// commands go to the shared host API and answer {ok, value|error}, and each FramePipe is a
// MessageChannelMain whose far port goes to the page; a pipe that cannot be had is refused.
// A closing window asks its page to suspend its guests and hears back when they are saved.
// Host events of a session (its guest's windows) are sent to the page that opened it.

import { ipcMain, MessageChannelMain, type IpcMainEvent, type IpcMainInvokeEvent, type MessagePortMain, type WebContents } from "electron";
import { dispatch, type CommandHandlers } from "../../core/ipc/contract.js";
import { isPipeService, portMessageToFrame, portPipe, type CarrierPipe } from "../../core/pipe/frame-pipe.js";
import type { HostSessions } from "../host/sessions.js";
import type { Disposable } from "../../core/disposable.js";
import { isAppUrl } from "./app-url.js";
import { PageSessions, replyOf, type PipeAnswer } from "./ipc-shapes.js";
import type { HostEvent } from "../../core/ipc/contract.js";
import type { HostServices } from "../host/services.js";
import { currentWindows, forwardWindows } from "../host/window-events.js";

function trusted(event: IpcMainEvent | IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame;
  return frame !== null && frame.parent === null && isAppUrl(frame.url);
}

/** A pipe over Electron's port: frames are posted as exact copies, with no transfer list. */
function mainPortPipe(port: MessagePortMain): CarrierPipe {
  const pipe = portPipe(port);
  port.on("message", (event) => {
    const frame = portMessageToFrame(event.data);
    if (frame === "end") pipe.end();
    else if (frame) pipe.deliver(frame);
  });
  port.on("close", () => pipe.end());
  port.start();
  return pipe;
}

let nextAsk = 1;

/** Asks a page to suspend its guests; resolves when it says they are saved (or it is gone). */
export function askToSuspend(contents: WebContents): Promise<void> {
  if (contents.isDestroyed()) return Promise.resolve();
  const id = nextAsk++;
  return new Promise((resolve) => {
    const onDone = (event: IpcMainEvent, answered: unknown): void => {
      if (event.sender !== contents || answered !== id) return;
      ipcMain.removeListener("unmachine:suspended", onDone);
      resolve();
    };
    ipcMain.on("unmachine:suspended", onDone);
    contents.once("destroyed", () => {
      ipcMain.removeListener("unmachine:suspended", onDone);
      resolve();
    });
    contents.send("unmachine:suspend-all", id);
  });
}

export function serveIpc(api: CommandHandlers, sessions: HostSessions, services: HostServices): Disposable {
  const pages = new PageSessions<WebContents>((id) => sessions.close(id));
  // A session's host events (its guest's windows) go to the page that opened it.
  const pushEvent = (event: HostEvent): void => {
    const contents = pages.pageOf(event.session);
    if (contents && !contents.isDestroyed()) contents.send("unmachine:event", event);
  };
  const windowEvents = forwardWindows(services, pushEvent);
  ipcMain.handle("unmachine:invoke", (event, name: unknown, args: unknown) =>
    replyOf(async () => {
      if (!trusted(event)) throw new Error("refused: not the Unmachine page");
      const result = await dispatch(api, name, args);
      if (name === "sessions:open") {
        const id = (result as { id: string }).id;
        pages.track(event.sender, id);
        const current = currentWindows(services, id);
        if (current) setImmediate(() => pushEvent(current));
      }
      return result;
    }),
  );
  const onPipe = (event: IpcMainEvent, request: unknown): void => {
    const { id, session, service } = (request ?? {}) as { id?: unknown; session?: unknown; service?: unknown };
    const answer: PipeAnswer = { id: typeof id === "number" ? id : -1 };
    const refuse = (error: string): void => event.sender.postMessage("unmachine:pipe-port", { ...answer, error }, []);
    if (!trusted(event)) return refuse("refused: not the Unmachine page");
    if (typeof session !== "string" || !sessions.has(session)) return refuse("no such session");
    if (!isPipeService(service) || !sessions.serves(service)) return refuse(`the host does not serve "${String(service)}"`);
    const { port1, port2 } = new MessageChannelMain();
    sessions.attachPipe(session, service, mainPortPipe(port1));
    event.sender.postMessage("unmachine:pipe-port", answer, [port2]);
  };
  ipcMain.on("unmachine:pipe", onPipe);
  return {
    dispose() {
      ipcMain.removeHandler("unmachine:invoke");
      ipcMain.removeListener("unmachine:pipe", onPipe);
      windowEvents.dispose();
    },
  };
}
