// The desktop guest's first xterm as its agent lists it (80x24 cells of a 6x13 font in its window
// manager's frame at 40,40): one window for the tests of window lists, actions and seamless windows.
import type { GuestWindow } from "../../core/agent/messages.js";

export function xtermWindow(changes: Partial<GuestWindow> = {}): GuestWindow {
  return {
    id: 0x200004,
    title: "xterm",
    x: 45,
    y: 58,
    width: 484,
    height: 316,
    minimized: false,
    focused: true,
    frame: { x: 40, y: 40, width: 494, height: 339 },
    ...changes,
  };
}
