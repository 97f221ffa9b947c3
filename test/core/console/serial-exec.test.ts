// Running a command over the serial console: the typed lines must carry the command intact
// (base64), their echo must never look like a marker, and the reader must return exactly the
// command's output and status however the serial bytes are cut up.

import { describe, expect, it } from "vitest";
import { ExecReader, PromptWatcher, execLines, stripAnsi } from "../../../core/console/serial-exec.js";

const RS = "\x1e";

/** Reassembles the command from the `_um` assignments in the lines, as the guest shell would. */
function decodeCommand(lines: string[]): string {
  let encoded = "";
  for (const line of lines) {
    const first = /^ _um='([A-Za-z0-9+/=]*)'\n$/.exec(line);
    const more = /^ _um="\$_um"'([A-Za-z0-9+/=]*)'\n$/.exec(line);
    if (first) encoded = first[1]!;
    else if (more) encoded += more[1]!;
  }
  return Buffer.from(encoded, "base64").toString("utf8");
}

/** What the tty echoes back for typed lines: the same text with "\r\n" line ends. */
function echoOf(lines: string[]): string {
  return lines.map((line) => line.replace(/\n$/, "\r\n")).join("");
}

describe("execLines", () => {
  const commands = [
    "uname -a",
    "",
    `echo "it's" '$HOME' \`id\` $(date) \\ back\\slash`,
    "printf 'a\\nb'\nls /\n\techo tab",
    "echo 'grüße 日本語 ✓ 🙂'",
    "x".repeat(2500),
    Array.from({ length: 300 }, (_, i) => `echo line ${i} "$((${i} * 2))"`).join("; "),
  ];

  it("produces lines that each end with one newline and fit the shell's line editor", () => {
    for (const command of commands) {
      const lines = execLines(command, "a1");
      expect(lines.length).toBeGreaterThanOrEqual(2);
      for (const line of lines) {
        expect(line.endsWith("\n")).toBe(true);
        expect(line.slice(0, -1)).not.toContain("\n");
        expect(line.length).toBeLessThan(1024);
      }
    }
  });

  it("never types a raw 0x1E byte, so the echo cannot fake a marker", () => {
    for (const command of [...commands, `printf '${RS}UMEa1:0${RS}'`, RS]) {
      for (const line of execLines(command, "a1")) expect(line).not.toContain(RS);
    }
  });

  it("carries the command intact through base64, quotes, $, backticks, newlines and UTF-8 included", () => {
    for (const command of commands) {
      expect(decodeCommand(execLines(command, "z9"))).toBe(command);
    }
  });

  it("splits a long command over several lines that reassemble in order", () => {
    const command = Array.from({ length: 2100 }, (_, i) => String.fromCharCode(33 + (i % 90))).join("");
    const lines = execLines(command, "long");
    const parts = lines.filter((line) => line.startsWith(" _um="));
    expect(parts.length).toBeGreaterThan(3);
    expect(decodeCommand(lines)).toBe(command);
  });

  it("puts the marker id into the begin and end markers of the last line", () => {
    const last = execLines("true", "k7").at(-1)!;
    expect(last).toContain("\\036UMBk7\\036");
    expect(last).toContain("\\036UMEk7:%d\\036");
    expect(last).toContain("</dev/null");
  });

  it("rejects a marker id with characters outside [0-9a-z]", () => {
    for (const id of ["", "A1", "a-1", "a b", "a'b", "a\x1eb", "x".repeat(17), "a;rm"]) {
      expect(() => execLines("true", id), JSON.stringify(id)).toThrow(/marker id/);
    }
    expect(() => execLines("true", "0123456789abcdef")).not.toThrow();
  });
});

/** The serial output of one run: echo, prompt noise, begin marker, output, end marker. */
function transcript(command: string, id: string, output: string, status: number): string {
  return (
    echoOf(execLines(command, id)) +
    "\x1b[6n" +
    `${RS}UMB${id}${RS}` +
    output.replace(/\n/g, "\r\n") +
    `${RS}UME${id}:${status}${RS}\r\n` +
    "tiny:/# \x1b[6n"
  );
}

describe("ExecReader", () => {
  const output = "first line\nsecond line\n\nlast\n";

  it("returns the command's output with \\n line ends and its exit status", () => {
    const reader = new ExecReader("r1");
    const result = reader.feed(transcript("cat /x; exit 3", "r1", output, 3));
    expect(result).toEqual({ output, status: 3 });
    expect(reader.result).toEqual({ output, status: 3 });
  });

  it("does not report a result before the end marker arrives", () => {
    const reader = new ExecReader("r1");
    const text = transcript("ls", "r1", output, 0);
    const cut = text.indexOf(`${RS}UMEr1`);
    expect(reader.feed(text.slice(0, cut))).toBeUndefined();
    expect(reader.result).toBeUndefined();
    expect(reader.feed(text.slice(cut))).toEqual({ output, status: 0 });
  });

  it("is not fooled by the echo of the typed lines", () => {
    const reader = new ExecReader("r1");
    expect(reader.feed(echoOf(execLines("ls", "r1")) + "\x1b[6n")).toBeUndefined();
    expect(reader.result).toBeUndefined();
  });

  it("gives the same result when fed one character at a time", () => {
    const reader = new ExecReader("r2");
    const text = transcript("ls -l", "r2", output, 127);
    let result;
    for (const ch of text) result = reader.feed(ch) ?? result;
    expect(result).toEqual({ output, status: 127 });
  });

  it("works with every split of a marker across two feeds", () => {
    const text = transcript("ls", "r3", "out\n", 1);
    const begin = text.indexOf(`${RS}UMBr3`);
    const end = text.indexOf(`${RS}UMEr3`);
    for (let cut = begin; cut <= end + 10; cut++) {
      const reader = new ExecReader("r3");
      reader.feed(text.slice(0, cut));
      expect(reader.feed(text.slice(cut)), `cut at ${cut}`).toEqual({ output: "out\n", status: 1 });
    }
  });

  it("ignores the markers of another command id, including one that extends this id", () => {
    const reader = new ExecReader("a1");
    const other = `${RS}UMBb2${RS}other\r\n${RS}UMEb2:5${RS}\r\n`;
    const longer = `${RS}UMBa12${RS}longer\r\n${RS}UMEa12:6${RS}\r\n`;
    expect(reader.feed(other + longer)).toBeUndefined();
    expect(reader.feed(`${RS}UMBa1${RS}mine\r\n${RS}UMEa12:9${RS}`)).toBeUndefined();
    expect(reader.feed(`more\r\n${RS}UMEa1:0${RS}`)).toEqual({
      output: `mine\n${RS}UMEa12:9${RS}more\n`,
      status: 0,
    });
  });

  it("keeps its result once complete and ignores what follows", () => {
    const reader = new ExecReader("r4");
    reader.feed(transcript("true", "r4", "", 0));
    expect(reader.result).toEqual({ output: "", status: 0 });
    expect(reader.feed(`${RS}UMBr4${RS}again${RS}UMEr4:1${RS}`)).toEqual({ output: "", status: 0 });
  });

  it("finds the begin marker after a long stretch of unrelated output", () => {
    const reader = new ExecReader("r5");
    for (let i = 0; i < 1000; i++) expect(reader.feed(`boot message ${i}\r\n`)).toBeUndefined();
    expect(reader.feed(transcript("uname", "r5", "Linux\n", 0))).toEqual({ output: "Linux\n", status: 0 });
  });
});

describe("PromptWatcher", () => {
  const prompt = "tiny:[^\\n]*# ";

  it("sees the prompt at the end of the output", () => {
    expect(new PromptWatcher(prompt).feed("booting\r\ntiny:/# ")).toBe(true);
  });

  it("sees it with busybox's trailing cursor query and carriage returns", () => {
    expect(new PromptWatcher(prompt).feed("\r\n\rtiny:/# \x1b[6n")).toBe(true);
    expect(new PromptWatcher(prompt).feed("done\r\ntiny:/root# \r\x1b[6n")).toBe(true);
  });

  it("sees a prompt that arrives in pieces", () => {
    const watcher = new PromptWatcher(prompt);
    expect(watcher.feed("[    1.0] init\r\nti")).toBe(false);
    expect(watcher.feed("ny:/")).toBe(false);
    expect(watcher.feed("# ")).toBe(true);
  });

  it("does not see a prompt that is followed by more text", () => {
    const watcher = new PromptWatcher(prompt);
    expect(watcher.feed("tiny:/# ls\r\n")).toBe(false);
    expect(new PromptWatcher(prompt).feed("tiny:/# ls")).toBe(false);
    expect(new PromptWatcher(prompt).feed("tiny:/# \r\nbin  etc\r\n")).toBe(false);
  });

  it("does not see a prompt in output that has none", () => {
    expect(new PromptWatcher(prompt).feed("Loading, please wait...\r\n")).toBe(false);
  });

  it("still sees the prompt after a lot of earlier output", () => {
    const watcher = new PromptWatcher(prompt);
    for (let i = 0; i < 200; i++) watcher.feed(`kernel: message number ${i}\r\n`);
    expect(watcher.feed("tiny:/# \x1b[6n")).toBe(true);
  });
});

describe("stripAnsi", () => {
  it("removes colour, cursor and query sequences and keeps the text", () => {
    expect(stripAnsi("\x1b[1;32mgreen\x1b[0m plain")).toBe("green plain");
    expect(stripAnsi("a\x1b[6nb")).toBe("ab");
    expect(stripAnsi("\x1b[?25lhidden\x1b[?25h")).toBe("hidden");
    expect(stripAnsi("\x1b[2J\x1b[Hhome")).toBe("home");
    expect(stripAnsi("x\x1bMy")).toBe("xy");
  });

  it("leaves text without escapes alone", () => {
    const text = "tiny:/# ls [brackets] 6n\r\n";
    expect(stripAnsi(text)).toBe(text);
  });
});
