// The page's side of the Electron shell: the preload (main/electron/preload.cts) exposes
// `window.unmachine`; commands go through it, and each FramePipe is a MessagePort that the
// main process hands over in answer to openPipe.

import type { CommandArgs, CommandName, CommandResult, HostBridge } from "../../core/ipc/contract.js";
import { portPipe, portMessageToFrame, type FramePipe, type PipeService } from "../../core/pipe/frame-pipe.js";

/** What the preload exposes; kept in step with main/electron/preload.cts. */
export interface PreloadApi {
  invoke(name: string, args: unknown[]): Promise<unknown>;
  /** Asks for a pipe; its port arrives as a window message {unmachinePipe: id}. */
  openPipe(session: string, service: string): number;
  onStartGuest(listener: (guest: string) => void): void;
}

function portFor(id: number): Promise<MessagePort> {
  return new Promise((resolve, reject) => {
    const onMessage = (event: MessageEvent): void => {
      const data = event.data as { unmachinePipe?: unknown; error?: string } | null;
      if (event.source !== window || data?.unmachinePipe !== id) return;
      window.removeEventListener("message", onMessage);
      const port = event.ports[0];
      if (port) resolve(port);
      else reject(new Error(data.error ?? "the host refused the pipe"));
    };
    window.addEventListener("message", onMessage);
  });
}

export class ElectronBridge implements HostBridge {
  readonly #api: PreloadApi;

  constructor(api: PreloadApi) {
    this.#api = api;
  }

  invoke<C extends CommandName>(name: C, ...args: CommandArgs<C>): Promise<CommandResult<C>> {
    return this.#api.invoke(name, args) as Promise<CommandResult<C>>;
  }

  onStartGuest(listener: (guest: string) => void): void {
    this.#api.onStartGuest(listener);
  }

  async openPipe(session: string, service: PipeService): Promise<FramePipe> {
    const port = await portFor(this.#api.openPipe(session, service));
    const pipe = portPipe(port);
    port.onmessage = (event) => {
      const frame = portMessageToFrame(event.data);
      if (frame === "end") pipe.end();
      else if (frame) pipe.deliver(frame);
    };
    port.start();
    return pipe;
  }
}
