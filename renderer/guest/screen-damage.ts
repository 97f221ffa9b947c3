// The parts of the guest's screen v86 redraws: its screen adapter puts each changed band of the
// frame buffer onto the canvas with putImageData(image, dx, dy, dirtyX, dirtyY, dirtyW, dirtyH)
// and draws nothing while the screen is unchanged. This notes each band as it is put, so the
// seamless panels copy only what changed (core/screen/damage.ts) instead of every frame.
import type { Rect } from "../../core/screen/damage.js";

type Put = CanvasRenderingContext2D["putImageData"];

/** Calls `damaged` with each rectangle drawn onto the canvas's 2D context; dispose to stop. */
export function watchScreenDamage(canvas: HTMLCanvasElement, damaged: (rect: Rect) => void): { dispose(): void } {
  const context = canvas.getContext("2d");
  if (!context) return { dispose: () => {} };
  const put: Put = context.putImageData.bind(context);
  const watching: Put = (image: ImageData, dx: number, dy: number, ...dirty: number[]) => {
    const [x = 0, y = 0, width = image.width, height = image.height] = dirty;
    damaged({ x: dx + x, y: dy + y, width, height });
    if (dirty.length >= 4) put(image, dx, dy, x, y, width, height);
    else put(image, dx, dy);
  };
  context.putImageData = watching;
  return {
    dispose: () => {
      if (context.putImageData === watching) Reflect.deleteProperty(context, "putImageData");
    },
  };
}
