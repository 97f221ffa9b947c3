// The screen sizes a guest may be asked for (agent message setDisplay): what v86's VGA shows.
// The guest's agent (guests/agent/umagent.c, display_clamp) applies the same bounds, since a
// request may come from any host: 640x480 .. 1920x1200, the width a multiple of 8 (a CVT
// character cell), and at most 8 MiB of VGA memory at 32 bits a pixel.

import { VGA_MEMORY_MiB } from "../v86/options.js";

export const DISPLAY_BOUNDS = {
  minWidth: 640,
  minHeight: 480,
  maxWidth: 1920,
  maxHeight: 1200,
  /** v86's VGA memory over 4 bytes a pixel. */
  maxPixels: (VGA_MEMORY_MiB * 1024 * 1024) / 4,
} as const;

/** A requested size brought within DISPLAY_BOUNDS (non-finite numbers count as the minimum). */
export function clampDisplaySize(width: number, height: number): { width: number; height: number } {
  const b = DISPLAY_BOUNDS;
  const within = (value: number, min: number, max: number): number => (Number.isFinite(value) ? Math.min(max, Math.max(min, Math.floor(value))) : min);
  const w = within(width, b.minWidth, b.maxWidth) & ~7;
  let h = within(height, b.minHeight, b.maxHeight);
  if (w * h > b.maxPixels) h = Math.floor(b.maxPixels / w);
  return { width: w, height: h };
}
