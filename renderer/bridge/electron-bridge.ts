// The page's side of the Electron shell: the preload (main/electron/preload.cts) exposes
// `window.unmachine`; commands go through it, and each FramePipe is a MessagePort that the
// main process hands over in answer to openPipe.

import type { CommandArgs, CommandName, CommandResult, HostBridge } from "../../core/ipc/contract.js";
import { portPipe, portMessageToFrame, type FramePipe, type PipeService } from "../../core/pipe/frame-pipe.js";

/** What the preload exposes; kept in step with main/electron/preload.cts. */
export interface PreloadApi {
  invoke(name: string, args: unknown[]): Promise<unknown>;
  openPipe(session: string, service: string): Promise<MessagePort>;
}

export class ElectronBridge implements HostBridge {
  readonly #api: PreloadApi;

  constructor(api: PreloadApi) {
    this.#api = api;
  }

  invoke<C extends CommandName>(name: C, ...args: CommandArgs<C>): Promise<CommandResult<C>> {
    return this.#api.invoke(name, args) as Promise<CommandResult<C>>;
  }

  async openPipe(session: string, service: PipeService): Promise<FramePipe> {
    const port = await this.#api.openPipe(session, service);
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
