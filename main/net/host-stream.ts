// A Node TCP socket as the gateway's HostStream, for both directions: the backend's outbound
// connections and the port forwards' accepted ones. Socket events go to the gateway's sink,
// always asynchronously; half-close is kept (allowHalfOpen), and an error before connecting
// tells refused, unreachable and timeout apart so the guest hears the matching answer.

import type { Socket } from "node:net";
import type { HostCloseReason, HostStream, HostStreamSink } from "../../core/net/backend.js";

function failure(error: NodeJS.ErrnoException | undefined): HostCloseReason {
  switch (error?.code) {
    case "ECONNREFUSED":
      return "refused";
    case "ETIMEDOUT":
      return "timeout";
    default:
      return "unreachable";
  }
}

/**
 * Wires `socket` to `sink` and returns the stream the gateway writes to. `connected` says
 * whether the socket is already open (an accepted connection) or still connecting.
 */
export function socketStream(socket: Socket, sink: HostStreamSink, options: { connected: boolean; connectTimeoutMs?: number }): HostStream {
  let connected = options.connected;
  let error: NodeJS.ErrnoException | undefined;
  let timer: NodeJS.Timeout | undefined;
  socket.setNoDelay(true);
  if (!connected) {
    timer = setTimeout(() => {
      error = Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" });
      socket.destroy();
    }, options.connectTimeoutMs ?? 20_000);
    socket.once("connect", () => {
      clearTimeout(timer);
      connected = true;
      sink.connected();
    });
  }
  socket.on("data", (bytes: Buffer) => sink.data(bytes));
  socket.on("end", () => sink.end());
  socket.on("drain", () => sink.drain());
  socket.on("error", (e: NodeJS.ErrnoException) => {
    error ??= e;
  });
  socket.on("close", () => {
    clearTimeout(timer);
    if (!connected) sink.closed(failure(error));
    else sink.closed(error ? "reset" : "closed");
  });
  return {
    write(bytes) {
      if (socket.writable) socket.write(bytes);
    },
    get backlog() {
      return socket.writableLength;
    },
    end() {
      if (!socket.writableEnded) socket.end();
    },
    destroy() {
      socket.destroy();
    },
    pause() {
      socket.pause();
    },
    resume() {
      socket.resume();
    },
  };
}
