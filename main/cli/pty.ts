// The guest's serial console as a host PTY (node-pty's openpty): any terminal program can
// attach to the printed path. The host keeps the slave end open (so the master never sees
// EOF between clients) and in raw mode (so the guest's output is not echoed back to it).

import { createRequire } from "node:module";
import { openSync, constants } from "node:fs";
import { ReadStream } from "node:tty";
import type { Disposable } from "../../core/disposable.js";
import type { FramePipe } from "../../core/pipe/frame-pipe.js";

interface OpenedPty {
  ptsName: string;
  write(data: string | Buffer): void;
  on(event: "data", listener: (data: Buffer | string) => void): void;
  destroy(): void;
  _slave?: { destroy(): void };
}

const require = createRequire(import.meta.url);

export interface ConsolePty extends Disposable {
  path: string;
}

export function openConsolePty(console: FramePipe): ConsolePty {
  const nodePty = require("node-pty") as { open(options: { cols: number; rows: number; encoding: null }): OpenedPty };
  const pty = nodePty.open({ cols: 80, rows: 25, encoding: null });
  // node-pty reads its own slave end, which would take the guest's output from whoever
  // attaches: hold a slave descriptor of our own that is never read, in raw mode, instead.
  const held = new ReadStream(openSync(pty.ptsName, constants.O_RDWR | constants.O_NOCTTY));
  held.setRawMode(true);
  pty._slave?.destroy();
  const sub = console.onFrame((frame) => pty.write(Buffer.from(frame)));
  pty.on("data", (data) => console.send(typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data)));
  return {
    path: pty.ptsName,
    dispose() {
      sub.dispose();
      pty.destroy();
      held.destroy();
    },
  };
}
