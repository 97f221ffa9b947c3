// Which parts of the guest's screen each seamless panel copies in one frame: a panel copies its
// whole window when it is new, moved or resized since its last copy, otherwise only the part of
// the screen the emulator redrew (its damage) over the window, and nothing when that is none.
// Pure: the page (renderer/components/SeamlessView.svelte) gathers the damage and draws.

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A panel: the guest window's content area on the screen. */
export interface PanelArea extends Rect {
  id: number;
}

/** One copy: the screen's rectangle `rect` into panel `id` at the same offset from the window's corner. */
export interface PanelCopy {
  id: number;
  rect: Rect;
}

function intersect(a: Rect, b: Rect): Rect | undefined {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const right = Math.min(a.x + a.width, b.x + b.width);
  const bottom = Math.min(a.y + a.height, b.y + b.height);
  return right > x && bottom > y ? { x, y, width: right - x, height: bottom - y } : undefined;
}

function union(a: Rect, b: Rect): Rect {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}

function sameArea(a: Rect, b: Rect): boolean {
  return a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
}

/**
 * The copies for this frame. `drawn` is each panel's area at its last copy (absent: never
 * copied, e.g. a new panel or a new canvas); the damage is the screen's redrawn rectangles since
 * then. One copy per panel: the bounding box of the damage over it.
 */
export function panelCopies(panels: readonly PanelArea[], damage: readonly Rect[], drawn: ReadonlyMap<number, Rect>): PanelCopy[] {
  const copies: PanelCopy[] = [];
  for (const panel of panels) {
    if (panel.width <= 0 || panel.height <= 0) continue;
    const area: Rect = { x: panel.x, y: panel.y, width: panel.width, height: panel.height };
    const last = drawn.get(panel.id);
    if (!last || !sameArea(last, area)) {
      copies.push({ id: panel.id, rect: area });
      continue;
    }
    let box: Rect | undefined;
    for (const rect of damage) {
      const part = intersect(area, rect);
      if (part) box = box ? union(box, part) : part;
    }
    if (box) copies.push({ id: panel.id, rect: box });
  }
  return copies;
}
