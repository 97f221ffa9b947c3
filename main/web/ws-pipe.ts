// A FramePipe over one WebSocket (the `ws` library, host side): one binary message is one
// frame. The page's counterpart is renderer/bridge/web-bridge.ts.

import type { WebSocket } from "ws";
import { CarrierPipe } from "../../core/pipe/frame-pipe.js";

/** Frames larger than this are refused (the socket is closed): 16 MiB. */
export const MAX_PIPE_FRAME = 16 * 1024 * 1024;

export function webSocketPipe(socket: WebSocket): CarrierPipe {
  const pipe = new CarrierPipe(
    (frame) => {
      if (socket.readyState === socket.OPEN) socket.send(frame, { binary: true });
    },
    () => socket.close(1000, "closed"),
  );
  socket.on("message", (data, isBinary) => {
    if (!isBinary) return;
    const chunks = Array.isArray(data) ? data : [data instanceof ArrayBuffer ? Buffer.from(data) : data];
    pipe.deliver(new Uint8Array(Buffer.concat(chunks)));
  });
  socket.on("close", () => pipe.end());
  socket.on("error", () => pipe.end());
  return pipe;
}
