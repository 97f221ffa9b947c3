// The page's side of the web shell (main/web/server.ts): commands as JSON over /rpc, each
// FramePipe over a WebSocket of its own (one binary message per frame). The page holds no key:
// the browser sends the shell's HttpOnly session cookie with every connection to its origin.
// A dropped image is added to the library by uploading its bytes (PUT /library/add); a guest's
// disk is exported as a download (GET /library/export/NAME); a guest's saved state is uploaded
// (PUT /state/SESSION?tag=TAG), since the commands' JSON cannot carry bytes.

import type { CommandArgs, CommandName, CommandReply, CommandResult, EventMessage, GuestSummary, HostBridge, HostEvent } from "../../core/ipc/contract.js";
import { Emitter } from "../../core/disposable.js";
import { CarrierPipe, type FramePipe, type PipeService } from "../../core/pipe/frame-pipe.js";

function wsUrl(path: string): string {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  return url.href;
}

function opened(socket: WebSocket, what: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    socket.addEventListener("open", () => resolve(socket), { once: true });
    socket.addEventListener("error", () => reject(new Error(`cannot reach the Unmachine host (${what}); is it still running?`)), { once: true });
  });
}

export class WebBridge implements HostBridge {
  #rpc: Promise<WebSocket> | undefined;
  #next = 1;
  readonly #waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly #events = new Emitter<HostEvent>();
  readonly onEvent = this.#events.event;
  readonly pageClipboard = true;

  #connect(): Promise<WebSocket> {
    if (this.#rpc) return this.#rpc;
    const socket = new WebSocket(wsUrl("rpc"));
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as CommandReply | EventMessage;
      if ("event" in message) {
        this.#events.fire(message.event);
        return;
      }
      const reply = message;
      const waiter = this.#waiting.get(reply.id);
      if (!waiter) return;
      this.#waiting.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(reply.error));
    });
    socket.addEventListener("close", () => {
      this.#rpc = undefined;
      for (const waiter of this.#waiting.values()) waiter.reject(new Error("the connection to the Unmachine host closed"));
      this.#waiting.clear();
    });
    this.#rpc = opened(socket, "commands");
    this.#rpc.catch(() => (this.#rpc = undefined));
    return this.#rpc;
  }

  async invoke<C extends CommandName>(name: C, ...args: CommandArgs<C>): Promise<CommandResult<C>> {
    const socket = await this.#connect();
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      socket.send(JSON.stringify({ id, name, args }));
    });
  }

  /** Uploads a dropped image to the host (main/web/upload.ts), which adds it to the library. */
  async addImage(file: File): Promise<GuestSummary> {
    let reply: Response;
    try {
      reply = await fetch(`/library/add?name=${encodeURIComponent(file.name)}`, { method: "PUT", body: file, credentials: "same-origin" });
    } catch {
      throw new Error(`${file.name}: could not be sent to the Unmachine host; is it still running?`);
    }
    if (!reply.ok) throw new Error((await reply.text()).trim() || `${file.name}: the host refused it (${reply.status})`);
    return (await reply.json()) as GuestSummary;
  }

  /**
   * Downloads a user guest's disk with its changes (main/web/download.ts): the browser saves it
   * as it comes, never holding it whole. Asked first with HEAD, so a refusal is told in the page.
   */
  async exportGuest(guest: string, fileName: string): Promise<string | null> {
    const url = `/library/export/${encodeURIComponent(guest)}`;
    const probe = await fetch(url, { method: "HEAD", credentials: "same-origin" }).catch(() => undefined);
    if (!probe) throw new Error(`${guest}: the Unmachine host cannot be reached; is it still running?`);
    if (!probe.ok) {
      const why = await fetch(url, { credentials: "same-origin" }).then((r) => (r.ok ? "" : r.text()), () => "");
      throw new Error(why.trim() || `${guest}: the host refused the export (${probe.status})`);
    }
    const link = document.createElement("a");
    link.href = url;
    link.download = fileName;
    document.body.append(link);
    link.click();
    link.remove();
    return `${fileName}: downloading ${guest}'s disk with its changes`;
  }

  async saveState(session: string, tag: string, state: Uint8Array): Promise<void> {
    let reply: Response;
    try {
      const body = new Blob([state as Uint8Array<ArrayBuffer>]);
      reply = await fetch(`/state/${encodeURIComponent(session)}?tag=${encodeURIComponent(tag)}`, { method: "PUT", body, credentials: "same-origin" });
    } catch {
      throw new Error("the guest's state could not be sent to the Unmachine host; is it still running?");
    }
    if (!reply.ok) throw new Error((await reply.text()).trim() || `the host refused the guest's state (${reply.status})`);
  }

  async openPipe(session: string, service: PipeService): Promise<FramePipe> {
    const socket = new WebSocket(wsUrl(`pipe/${encodeURIComponent(session)}/${service}`));
    socket.binaryType = "arraybuffer";
    const pipe = new CarrierPipe(
      (frame) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(frame as Uint8Array<ArrayBuffer>);
      },
      () => socket.close(1000),
    );
    socket.addEventListener("message", (event) => {
      if (event.data instanceof ArrayBuffer) pipe.deliver(new Uint8Array(event.data));
    });
    socket.addEventListener("close", () => pipe.end());
    await opened(socket, service);
    return pipe;
  }
}
