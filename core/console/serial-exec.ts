// Running one command in a guest's shell over its serial console, and reading back exactly
// its output and exit status. The guest side is any POSIX shell with printf and base64 (the
// tiny guest's busybox): the command travels base64-encoded, so quotes and newlines survive,
// and its output is framed by markers that contain a 0x1E byte. The tty echoes what we type,
// but the echo holds the two characters "\036", never the byte, so it cannot fake a marker.

const RS = "\x1e";
const CHUNK = 480; // busybox's line editor takes 1024 characters; stay well below.

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** The lines to type to run `command` with stdin from /dev/null; marker `id` must be [0-9a-z]. */
export function execLines(command: string, id: string): string[] {
  if (!/^[0-9a-z]{1,16}$/.test(id)) throw new Error(`exec marker id must be [0-9a-z], got ${id}`);
  const encoded = base64(command);
  const lines: string[] = [];
  for (let at = 0; at < encoded.length; at += CHUNK) {
    const part = encoded.slice(at, at + CHUNK);
    lines.push(at === 0 ? ` _um='${part}'\n` : ` _um="$_um"'${part}'\n`);
  }
  if (lines.length === 0) lines.push(" _um=''\n");
  lines.push(
    ` printf '\\036UMB${id}\\036'; (eval "$(echo "$_um" | base64 -d)") </dev/null; printf '\\036UME${id}:%d\\036\\n' $?\n`,
  );
  return lines;
}

export interface ExecResult {
  output: string;
  status: number;
}

/**
 * Reads serial output until the framed result of command `id` is complete. Feed it decoded
 * text; `result` is set once the end marker has arrived.
 */
export class ExecReader {
  readonly #begin: string;
  readonly #endRe: RegExp;
  #buffer = "";
  #started = false;
  result: ExecResult | undefined;

  constructor(id: string) {
    this.#begin = `${RS}UMB${id}${RS}`;
    this.#endRe = new RegExp(`${RS}UME${id}:(\\d+)${RS}`);
  }

  feed(text: string): ExecResult | undefined {
    if (this.result) return this.result;
    this.#buffer += text;
    if (!this.#started) {
      const at = this.#buffer.indexOf(this.#begin);
      if (at < 0) {
        // Keep only what could still be the start of a marker.
        this.#buffer = this.#buffer.slice(-this.#begin.length);
        return undefined;
      }
      this.#started = true;
      this.#buffer = this.#buffer.slice(at + this.#begin.length);
    }
    const end = this.#endRe.exec(this.#buffer);
    if (!end) return undefined;
    // The tty turns "\n" into "\r\n" (onlcr); give the user what the command wrote.
    const output = this.#buffer.slice(0, end.index).replace(/\r\n/g, "\n");
    this.result = { output, status: Number(end[1]) };
    return this.result;
  }
}

// CSI sequences (colours, cursor moves, busybox's ESC[6n cursor query) and lone escapes.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/** Watches serial output for a shell prompt at the end of what has arrived so far. */
export class PromptWatcher {
  readonly #re: RegExp;
  #tail = "";

  constructor(prompt: string) {
    this.#re = new RegExp(`(?:${prompt})$`);
  }

  /** True when the text so far ends in a prompt. */
  feed(text: string): boolean {
    this.#tail = (this.#tail + text).slice(-512);
    const clean = stripAnsi(this.#tail).replace(/\r/g, "");
    return this.#re.test(clean);
  }
}
