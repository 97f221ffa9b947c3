// The VGA text screen as text: what the headless runner matches (--until) and prints.

import { describe, expect, it } from "vitest";
import { TextScreen } from "../../../core/screen/text-screen.js";

function write(screen: TextScreen, row: number, col: number, text: string): void {
  [...text].forEach((ch, i) => screen.putChar(row, col + i, ch.charCodeAt(0)));
}

describe("TextScreen", () => {
  it("starts blank", () => {
    expect(new TextScreen().text()).toBe("");
  });

  it("shows characters where they were put, blank lines kept between them", () => {
    const screen = new TextScreen();
    write(screen, 0, 0, "Starting MS-DOS...");
    write(screen, 3, 2, "C:\\>dir");
    expect(screen.text()).toBe("Starting MS-DOS...\n\n\n  C:\\>dir");
  });

  it("trims trailing blanks on each line and trailing blank lines, but not leading ones", () => {
    const screen = new TextScreen();
    write(screen, 1, 4, "x   ");
    write(screen, 24, 79, " ");
    expect(screen.text()).toBe("\n    x");
  });

  it("uses the full 80x25 grid", () => {
    const screen = new TextScreen();
    screen.putChar(24, 79, 0x21);
    const lines = screen.text().split("\n");
    expect(lines).toHaveLength(25);
    expect(lines[24]).toBe(" ".repeat(79) + "!");
  });

  it("maps code page 437 to Unicode for box drawing and accents", () => {
    const screen = new TextScreen();
    const high = [0xc9, 0xcd, 0xbb, 0xc4, 0xb3, 0xda, 0xbf, 0xc0, 0xd9, 0xdb, 0xb0, 0xb1, 0xb2];
    high.forEach((code, col) => screen.putChar(0, col, code));
    const accents = [0x80, 0x81, 0x82, 0x84, 0x94, 0xa4, 0xe1, 0xe3, 0xf8, 0xfd, 0xfe];
    accents.forEach((code, col) => screen.putChar(1, col, code));
    expect(screen.text()).toBe("╔═╗─│┌┐└┘█░▒▓\nÇüéäöñßπ°²■");
  });

  it("maps 0xC4 to a horizontal line", () => {
    const screen = new TextScreen();
    screen.putChar(0, 0, 0xc4);
    expect(screen.text()).toBe("─");
  });

  it("shows control codes and NUL as blanks", () => {
    const screen = new TextScreen();
    screen.putChar(0, 0, 0x41);
    screen.putChar(0, 1, 0x00);
    screen.putChar(0, 2, 0x07);
    screen.putChar(0, 3, 0x42);
    expect(screen.text()).toBe("A  B");
  });

  it("ignores puts outside the grid, without changing the version", () => {
    const screen = new TextScreen();
    const before = screen.version;
    for (const [row, col] of [[-1, 0], [0, -1], [25, 0], [0, 80], [1000, 1000]] as const) {
      screen.putChar(row, col, 0x58);
    }
    expect(screen.text()).toBe("");
    expect(screen.version).toBe(before);
  });

  it("changes its version with each put and each resize", () => {
    const screen = new TextScreen();
    const v0 = screen.version;
    screen.putChar(0, 0, 0x41);
    const v1 = screen.version;
    expect(v1).not.toBe(v0);
    screen.setSize(40, 25, 0);
    expect(screen.version).not.toBe(v1);
  });

  it("keeps the text when the guest switches to a graphics mode", () => {
    const screen = new TextScreen();
    write(screen, 0, 0, "Windows is starting");
    screen.setSize(320, 200, 8);
    expect(screen.text()).toBe("Windows is starting");
    screen.setSize(640, 480, 8);
    expect(screen.text()).toBe("Windows is starting");
    screen.setSize(1024, 768, 32);
    expect(screen.text()).toBe("Windows is starting");
  });

  it("keeps the text when set to the size it already has", () => {
    const screen = new TextScreen();
    write(screen, 0, 0, "same");
    const version = screen.version;
    screen.setSize(80, 25, 0);
    expect(screen.text()).toBe("same");
    expect(screen.version).toBe(version);
  });

  it("clears and resizes for a new text mode", () => {
    const screen = new TextScreen();
    write(screen, 0, 0, "old");
    screen.setSize(40, 50, 0);
    expect(screen.text()).toBe("");
    screen.putChar(49, 39, 0x5a);
    screen.putChar(0, 40, 0x59); // past the new width
    const lines = screen.text().split("\n");
    expect(lines).toHaveLength(50);
    expect(lines[49]).toBe(" ".repeat(39) + "Z");
  });

  it("ignores nonsensical sizes", () => {
    const screen = new TextScreen();
    write(screen, 0, 0, "kept");
    screen.setSize(0, 25, 0);
    screen.setSize(80, -1, 0);
    screen.setSize(100_000, 100_000, 0);
    expect(screen.text()).toBe("kept");
  });
});
