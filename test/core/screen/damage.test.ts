// What a seamless panel copies of the guest's screen each frame: all of a new, moved or resized
// window, only the redrawn part over a window otherwise, and nothing for a window nothing touched.
import { describe, expect, it } from "vitest";
import { panelCopies, type Rect } from "../../../core/screen/damage.js";

const xterm = { id: 1, x: 100, y: 50, width: 400, height: 300 };
const calc = { id: 2, x: 600, y: 400, width: 200, height: 250 };
const drawnAt = (...areas: { id: number; x: number; y: number; width: number; height: number }[]) =>
  new Map<number, Rect>(areas.map(({ id, ...rect }) => [id, rect]));

describe("panelCopies", () => {
  it("copies a window the panel has never shown in full, with no damage at all", () => {
    expect(panelCopies([xterm, calc], [], drawnAt(calc))).toEqual([{ id: 1, rect: { x: 100, y: 50, width: 400, height: 300 } }]);
  });

  it("copies nothing while the screen is unchanged", () => {
    expect(panelCopies([xterm, calc], [], drawnAt(xterm, calc))).toEqual([]);
  });

  it("copies only the redrawn rows over a window, and leaves the other window alone", () => {
    // The emulator redrew rows 200-219 across the whole screen.
    const copies = panelCopies([xterm, calc], [{ x: 0, y: 200, width: 1024, height: 20 }], drawnAt(xterm, calc));
    expect(copies).toEqual([{ id: 1, rect: { x: 100, y: 200, width: 400, height: 20 } }]);
  });

  it("covers every redrawn part over a window with one copy", () => {
    const copies = panelCopies([xterm], [{ x: 0, y: 60, width: 1024, height: 2 }, { x: 0, y: 300, width: 150, height: 10 }], drawnAt(xterm));
    expect(copies).toEqual([{ id: 1, rect: { x: 100, y: 60, width: 400, height: 250 } }]);
  });

  it("copies all of a window that moved or changed size since its last copy", () => {
    const moved = { ...xterm, x: 120 };
    const grown = { ...calc, height: 300 };
    expect(panelCopies([moved, grown], [], drawnAt(xterm, calc))).toEqual([
      { id: 1, rect: { x: 120, y: 50, width: 400, height: 300 } },
      { id: 2, rect: { x: 600, y: 400, width: 200, height: 300 } },
    ]);
  });

  it("skips a window with no area", () => {
    expect(panelCopies([{ id: 3, x: 0, y: 0, width: 0, height: 10 }], [{ x: 0, y: 0, width: 50, height: 50 }], new Map())).toEqual([]);
  });
});
