// The guest's serial console as a host PTY (node-pty's openpty): any terminal program can
// attach to the printed path. The host keeps a slave descriptor of its own open (so the
// master never sees EOF between clients), raw (so the guest's output is not echoed back to
// it) and never read (so the guest's output goes to whoever attaches).

import { createRequire } from "node:module";
import { openSync, constants } from "node:fs";
import { ReadStream } from "node:tty";
import type { Socket } from "node:net";
import type { Disposable } from "../../core/disposable.js";
import type { FramePipe } from "../../core/pipe/frame-pipe.js";

interface OpenedPty {
  readonly ptsName: string;
  /** The master end, as a socket. */
  readonly master: Socket;
  /** node-pty's own reader of the slave end. */
  readonly slave: Socket;
  destroy(): void;
}

const require = createRequire(import.meta.url);

export interface ConsolePty extends Disposable {
  path: string;
}

export function openConsolePty(console: FramePipe): ConsolePty {
  const nodePty = require("node-pty") as { open(options: { cols: number; rows: number; encoding: null }): OpenedPty };
  const pty = nodePty.open({ cols: 80, rows: 25, encoding: null });
  const held = new ReadStream(openSync(pty.ptsName, constants.O_RDWR | constants.O_NOCTTY));
  held.setRawMode(true);
  pty.slave.destroy();
  const master = pty.master;
  master.on("error", () => {}); // EIO while no program is attached is not an error here
  const sub = console.onFrame((frame) => master.write(frame));
  master.on("data", (data: Buffer) => console.send(new Uint8Array(data)));
  return {
    path: pty.ptsName,
    dispose() {
      sub.dispose();
      held.destroy();
      master.destroy();
    },
  };
}
