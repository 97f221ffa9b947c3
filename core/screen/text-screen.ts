// The guest's VGA text screen as text: a grid fed by v86's "screen-put-char" and
// "screen-set-size" events, so the headless runner can match it (--until) and print it
// (the last screen on a timeout). Graphics modes leave the grid as it was.

export class TextScreen {
  #cols = 80;
  #rows = 25;
  #cells: Uint16Array = new Uint16Array(80 * 25).fill(0x20);
  #graphical = false;
  #version = 0;

  /** Changes each time the screen does; cheap to compare. */
  get version(): number {
    return this.#version;
  }

  setSize(cols: number, rows: number, bpp: number): void {
    this.#graphical = bpp !== 0;
    if (this.#graphical || (cols === this.#cols && rows === this.#rows)) return;
    if (cols <= 0 || rows <= 0 || cols * rows > 512 * 512) return;
    this.#cols = cols;
    this.#rows = rows;
    this.#cells = new Uint16Array(cols * rows).fill(0x20);
    this.#version++;
  }

  putChar(row: number, col: number, chr: number): void {
    if (row < 0 || col < 0 || row >= this.#rows || col >= this.#cols) return;
    this.#cells[row * this.#cols + col] = chr;
    this.#version++;
  }

  /** The screen as lines of text, trailing blanks trimmed, code page 437 mapped to Unicode. */
  text(): string {
    const lines: string[] = [];
    for (let r = 0; r < this.#rows; r++) {
      let line = "";
      for (let c = 0; c < this.#cols; c++) line += cp437(this.#cells[r * this.#cols + c]!);
      lines.push(line.trimEnd());
    }
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines.join("\n");
  }
}

// Code page 437 above 0x7F, for box drawing and accents on DOS screens.
const CP437_HIGH =
  "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ ";

function cp437(code: number): string {
  if (code >= 0x20 && code < 0x7f) return String.fromCharCode(code);
  if (code >= 0x80 && code <= 0xff) return CP437_HIGH[code - 0x80]!;
  return " ";
}
