// Tells from what a guest shows that it has stopped for good: a kernel panic on its serial
// console or its text screen, a shutdown message, or its processor halted with interrupts off
// (only a reset wakes it). Pure: the session feeds it text and events; it answers once.

/** How a guest ended by itself: "failed" (a panic, a dead processor) or "stopped" (shut down). */
export interface GuestStop {
  state: "failed" | "stopped";
  reason: string;
}

const PANIC = /Kernel panic - not syncing:?\s*(.*)/;
const SHUTDOWN = /reboot: (?:System halted|Power down)|System halted\.|It's now safe to turn off your computer/;
/** A serial line with no end yet is looked at once it is this long (a panic line may never end). */
const MAX_LINE = 512;

export class StopDetector {
  #partial = "";
  #shutdown = false;
  #stop: GuestStop | undefined;

  /** The verdict, once there is one; it never changes after. */
  get stop(): GuestStop | undefined {
    return this.#stop;
  }

  /** Text from the serial console, in any chunks: looked at a whole line at a time. */
  feedSerial(text: string): GuestStop | undefined {
    if (this.#stop) return this.#stop;
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop() ?? "";
    if (this.#partial.length > MAX_LINE) {
      lines.push(this.#partial);
      this.#partial = "";
    }
    for (const line of lines) this.#line(line);
    return this.#stop;
  }

  /** The whole text screen as it is now. */
  feedScreen(text: string): GuestStop | undefined {
    if (this.#stop) return this.#stop;
    for (const line of text.split("\n")) this.#line(line);
    return this.#stop;
  }

  /** The processor halted with interrupts off: after a shutdown message that is a clean end. */
  halted(): GuestStop {
    if (this.#stop) return this.#stop;
    if (this.#partial) this.feedSerial("\n");
    this.#stop ??= this.#shutdown
      ? { state: "stopped", reason: "the guest shut down" }
      : { state: "failed", reason: "the guest's processor halted with interrupts off, so it cannot go on; Restart starts it again" };
    return this.#stop;
  }

  #line(raw: string): void {
    if (this.#stop) return;
    const line = plain(raw).trim();
    const panic = PANIC.exec(line);
    if (panic) {
      const why = panic[1]?.replace(/\s*\]---$/, "").trim();
      this.#stop = { state: "failed", reason: `the guest's kernel panicked${why ? `: ${why}` : ""}` };
      return;
    }
    if (SHUTDOWN.test(line)) this.#shutdown = true;
  }
}

const ESC = 0x1b;
const BEL = 0x07;

/** The line without terminal escape sequences (CSI, OSC) and control characters. */
function plain(line: string): string {
  let out = "";
  for (let i = 0; i < line.length; i++) {
    const code = line.charCodeAt(i);
    if (code === ESC) {
      const kind = line[i + 1];
      if (kind === "[") {
        i += 2;
        while (i < line.length && !(line.charCodeAt(i) >= 0x40 && line.charCodeAt(i) <= 0x7e)) i++;
      } else if (kind === "]") {
        i += 2;
        while (i < line.length && line.charCodeAt(i) !== BEL && !(line.charCodeAt(i) === ESC && line[i + 1] === "\\")) i++;
        if (line.charCodeAt(i) === ESC) i++;
      } else {
        i++;
      }
    } else if (code >= 0x20 && code !== 0x7f) {
      out += line[i];
    } else if (code === 0x09) {
      out += " ";
    }
  }
  return out;
}
