// The host pushes each session's guest windows to its page (main/host/window-events.ts): the
// list as the agent appears (when it already has one), every change after, an empty list when
// the agent goes away, and the current list on demand for a page that subscribes late.

import { describe, expect, it } from "vitest";
import { encodeFrame } from "../../../core/agent/frame.js";
import { encodeMessage, type AgentMessage, type GuestWindow } from "../../../core/agent/messages.js";
import { AgentSession, type AgentTransport } from "../../../core/agent/session.js";
import { Emitter, toDisposable } from "../../../core/disposable.js";
import type { AgentEvent } from "../../../main/host/services.js";
import { currentWindows, forwardWindows, type WindowsEvent } from "../../../main/host/window-events.js";

const XTERM: GuestWindow = { id: 7, title: "xterm", x: 5, y: 20, width: 484, height: 316, minimized: false, focused: true, frame: { x: 0, y: 0, width: 494, height: 340 } };

function agent(): { session: AgentSession; send: (message: AgentMessage) => void } {
  const listeners = new Set<(bytes: Uint8Array) => void>();
  const transport: AgentTransport = {
    send: () => {},
    onData: (listener) => {
      listeners.add(listener);
      return toDisposable(() => listeners.delete(listener));
    },
  };
  const session = new AgentSession(transport);
  const send = (message: AgentMessage): void => {
    for (const listener of listeners) listener(encodeFrame(encodeMessage(message)));
  };
  send({ type: "hello", minVersion: 1, maxVersion: 1, software: "umagent 1.0.0", capabilities: ["windows", "window-action"] });
  return { session, send };
}

describe("forwardWindows", () => {
  it("sends each session's list to its page: on change, and empty once the agent is gone", () => {
    const agents = new Emitter<AgentEvent>();
    const sent: WindowsEvent[] = [];
    const forwarding = forwardWindows({ onAgent: agents.event }, (event) => sent.push(event));
    const guest = agent();
    agents.fire({ session: "s1", agent: guest.session });
    expect(sent).toEqual([]);
    guest.send({ type: "windows", windows: [XTERM] });
    guest.send({ type: "windows", windows: [XTERM, { ...XTERM, id: 9, title: "xcalc" }] });
    expect(sent.map((e) => [e.session, e.windows.map((w) => w.title)])).toEqual([["s1", ["xterm"]], ["s1", ["xterm", "xcalc"]]]);
    guest.session.disconnect("the guest stopped");
    expect(sent.at(-1)).toEqual({ type: "windows", session: "s1", windows: [] });
    forwarding.dispose();
  });

  it("sends the list an agent already has when it appears, and the current one on demand", () => {
    const agents = new Emitter<AgentEvent>();
    const sent: WindowsEvent[] = [];
    forwardWindows({ onAgent: agents.event }, (event) => sent.push(event));
    const guest = agent();
    expect(currentWindows({ agent: () => guest.session }, "s2")).toBeUndefined();
    guest.send({ type: "windows", windows: [XTERM] });
    agents.fire({ session: "s2", agent: guest.session });
    expect(sent).toEqual([{ type: "windows", session: "s2", windows: [XTERM] }]);
    expect(currentWindows({ agent: () => guest.session }, "s2")).toEqual({ type: "windows", session: "s2", windows: [XTERM] });
    expect(currentWindows({ agent: () => undefined }, "s3")).toBeUndefined();
  });
});
