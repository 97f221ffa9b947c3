// The host services a page's session is served: exactly those of the launch plan the host gave
// for its guest, read once from that plan (not from the settings again per pipe).

import { describe, expect, it } from "vitest";
import { HostSessions } from "../../../main/host/sessions.js";
import { registerHostServices } from "../../../main/host/services.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";

describe("a session's host services", () => {
  it("serves only the services its plan names, and refuses the others by name", () => {
    const sessions = new HostSessions();
    registerHostServices(sessions);
    const { id } = sessions.open("tiny", { agent: { port: "virtio", clipboard: false } });
    expect(() => sessions.attachPipe(id, "net", createPipePair()[0])).toThrow(/the plan of tiny has no "net" service/);
    expect(() => sessions.attachPipe(id, "p9", createPipePair()[0])).toThrow(/no "p9" service/);
    expect(() => sessions.attachPipe(id, "agent", createPipePair()[0])).not.toThrow();
    const plain = sessions.open("dropped-image");
    expect(() => sessions.attachPipe(plain.id, "agent", createPipePair()[0])).toThrow(/no "agent" service/);
    sessions.dispose();
  });

  it("shares the clipboard with a guest whose plan says so, and only while its session runs", () => {
    const sessions = new HostSessions();
    const services = registerHostServices(sessions);
    const shared = sessions.open("tiny", { agent: { port: "virtio", clipboard: true } });
    const unshared = sessions.open("tiny", { agent: { port: "virtio", clipboard: false } });
    sessions.attachPipe(shared.id, "agent", createPipePair()[0]);
    sessions.attachPipe(unshared.id, "agent", createPipePair()[0]);
    expect(services.agent(shared.id)).toBeDefined();
    expect(services.sharesClipboard(shared.id)).toBe(true);
    expect(services.sharesClipboard(unshared.id)).toBe(false);
    sessions.close(shared.id);
    expect(services.agent(shared.id)).toBeUndefined();
    expect(services.sharesClipboard(shared.id)).toBe(false);
    sessions.dispose();
  });
});
