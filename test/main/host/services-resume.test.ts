// A resumed guest's host services (hostServiceSet with `resumed`): its agent, already running in
// the restored guest, is asked to say hello again, and right after that hello its clock is set to
// the host's (it stood still while the guest was suspended). A guest booted cold is not probed
// and its clock is left alone. The guest's end here is a scripted agent on the agent's pipe.

import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "../../../core/agent/frame.js";
import { decodeMessage, encodeMessage, type AgentMessage } from "../../../core/agent/messages.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import { hostServiceSet, type HostState } from "../../../main/host/services.js";

/** Attaches the agent of a set and answers its hello as umagent does; returns what the host sent. */
async function agentExchange(resumed: boolean | HostState, lostProbes = 0, waitMs = 50, kept?: (saved: HostState) => void, port: "virtio" | "com2" = "virtio"): Promise<AgentMessage[]> {
  const services = hostServiceSet(
    { guest: "tiny", services: { agent: { port, clipboard: false } } },
    { onError: (message) => { throw new Error(message); }, ...(resumed ? { resumed: { host: resumed === true ? {} : resumed } } : {}) },
  );
  const [guest, host] = createPipePair();
  const received: AgentMessage[] = [];
  const decoder = new FrameDecoder();
  const hello = (): void => guest.send(encodeFrame(encodeMessage({ type: "hello", minVersion: 1, maxVersion: 1, software: "umagent 1.0.0", capabilities: ["time"], pid: 7 })));
  guest.onFrame((bytes) => {
    for (const payload of decoder.feed(bytes).frames) {
      const decoded = decodeMessage(payload);
      if (!decoded.ok || decoded.message.type === "unknown") throw new Error("the host sent an undecodable message");
      received.push(decoded.message);
      // The running agent answers a host's probe (a hello without a version) with its own.
      // A restored guest's port may drop what reached it before its emulator ran again.
      if (decoded.message.type === "hello" && decoded.message.version === undefined && lostProbes-- <= 0) hello();
    }
  });
  services.attach.agent!(host);
  if (!resumed) hello();
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  kept?.(services.saveState());
  services.dispose();
  return received;
}

describe("host services of a resumed guest", () => {
  it("probe the agent and, after its hello, set the guest's clock to the host's", async () => {
    const before = Date.now();
    const sent = await agentExchange(true);
    expect(sent.map((m) => m.type)).toEqual(["hello", "hello", "setTime"]);
    const set = sent[2] as Extract<AgentMessage, { type: "setTime" }>;
    const ms = set.seconds * 1000 + set.nanoseconds / 1e6;
    expect(ms).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(ms).toBeLessThanOrEqual(Date.now());
  });

  it("probe again each second until the agent answers, as when the first probe was lost", async () => {
    const sent = await agentExchange(true, 1, 1500);
    expect(sent.map((m) => m.type)).toEqual(["hello", "hello", "hello", "setTime"]);
  });

  it("leave a cold-booted guest's agent to say hello first, and its clock alone", async () => {
    const sent = await agentExchange(false);
    expect(sent.map((m) => m.type)).toEqual(["hello"]);
  });

  it("keep the agent that said hello with the guest's state; resumed with it, set the clock right behind the probe, before its hello", async () => {
    let kept: HostState = {};
    await agentExchange(false, 0, 50, (saved) => (kept = saved));
    expect(kept.agent).toEqual({ version: 1, pid: 7 });
    const sent = await agentExchange(kept);
    // The probe and the clock go out together; the clock is set again after the hello.
    expect(sent.map((m) => m.type)).toEqual(["hello", "setTime", "hello", "setTime"]);
    // A kept agent that is not one (a damaged or older state) leaves the usual handshake.
    expect((await agentExchange({ agent: { version: "1", pid: 7 } })).map((m) => m.type)).toEqual(["hello", "hello", "setTime"]);
    // On COM2 nothing goes out before the hello: the restore overwrites the UART it went into.
    expect((await agentExchange(kept, 0, 50, undefined, "com2")).map((m) => m.type)).toEqual(["hello", "hello", "setTime"]);
  });
});
