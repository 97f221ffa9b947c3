// The host's wheel as the guest's: a PS/2 or VMware mouse wheel turns by whole notches, while a
// host reports travel. A mouse's notch is one event of 53 to 120 pixels (or a few lines); a
// trackpad sends many events of a few pixels each.

/** Travel that makes one notch, in pixels (a mouse notch on most hosts). */
export const NOTCH_PX = 100;
/** One event with at least this travel is a mouse's notch: never less than one. */
export const MOUSE_NOTCH_PX = 40;
/** A line, as Chromium counts one (WheelEvent.DOM_DELTA_LINE). */
const LINE_PX = 40;
/** A page (WheelEvent.DOM_DELTA_PAGE): as a screen of lines. */
const PAGE_PX = 800;

/**
 * The notches one wheel event turns (positive: down, as deltaY) and the travel left for the next
 * one. `rest` is what the last call left; travel the other way starts afresh.
 */
export function wheelNotches(rest: number, deltaY: number, deltaMode: number): { notches: number; rest: number } {
  if (!Number.isFinite(deltaY) || deltaY === 0) return { notches: 0, rest };
  const travel = deltaY * (deltaMode === 1 ? LINE_PX : deltaMode === 2 ? PAGE_PX : 1);
  const total = Math.sign(rest) === Math.sign(travel) ? rest + travel : travel;
  const notches = Math.trunc(total / NOTCH_PX) || 0;
  if (notches === 0 && Math.abs(travel) >= MOUSE_NOTCH_PX) return { notches: Math.sign(travel), rest: 0 };
  return { notches, rest: total - notches * NOTCH_PX };
}
