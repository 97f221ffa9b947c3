// A FramePipe over a Node worker_threads MessagePort (both ends: main thread and worker).

import type { MessagePort } from "node:worker_threads";
import { portMessageToFrame, portPipe, type CarrierPipe } from "../../core/pipe/frame-pipe.js";

export function nodePortPipe(port: MessagePort): CarrierPipe {
  const pipe = portPipe(port);
  port.on("message", (data: unknown) => {
    const frame = portMessageToFrame(data);
    if (frame === "end") pipe.end();
    else if (frame) pipe.deliver(frame);
  });
  port.on("close", () => pipe.end());
  return pipe;
}
