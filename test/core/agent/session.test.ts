// AgentSession against a scripted fake guest over an in-memory byte stream: the handshake,
// ping, exec, clipboard both ways, sends of at most 4096 bytes, timeouts, and a clean
// disconnect (with a reason, pending requests failed, nothing thrown) when the guest misbehaves.

import { afterEach, describe, expect, it, vi } from "vitest";
import { encodeFrame, FrameDecoder } from "../../../core/agent/frame.js";
import { decodeMessage, encodeMessage, LIMITS, type AgentMessage, type Hello } from "../../../core/agent/messages.js";
import { AGENT_SEND_CHUNK, AgentError, AgentSession, pipeTransport, savedAgent, type AgentTransport } from "../../../core/agent/session.js";
import { createPipePair } from "../../../core/pipe/frame-pipe.js";
import { toDisposable } from "../../../core/disposable.js";
import { noisePng } from "../../support/png.js";

const GUEST_HELLO: Hello = {
  type: "hello",
  minVersion: 1,
  maxVersion: 1,
  software: "umagent 1.0.0",
  os: "Linux",
  osRelease: "6.1.0-37-686",
  machine: "i686",
  hostname: "tiny",
  capabilities: ["ping", "exec", "clipboard", "display"],
  pid: 100,
};

type Reply = (message: AgentMessage, version: number) => void;

/** The guest's end of the stream: decodes what the host sends, answers as a script says. */
class FakeGuest {
  readonly decoder = new FrameDecoder();
  /** Every host send, as given (to check the 4096-byte limit). */
  readonly sends: Uint8Array[] = [];
  readonly received: { version: number; message: AgentMessage }[] = [];
  readonly #listeners = new Set<(bytes: Uint8Array) => void>();
  readonly transport: AgentTransport;
  onMessage: Reply = (message, version) => this.standard(message, version);
  decodeErrors: string[] = [];
  readonly sync: boolean;

  constructor(sync = false) {
    this.sync = sync;
    this.transport = {
      send: (bytes) => {
        this.sends.push(bytes);
        const copy = bytes.slice();
        const take = (): void => this.#take(copy);
        if (this.sync) take();
        else queueMicrotask(take);
      },
      onData: (listener) => {
        this.#listeners.add(listener);
        return toDisposable(() => this.#listeners.delete(listener));
      },
    };
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  #take(bytes: Uint8Array): void {
    const fed = this.decoder.feed(bytes);
    if (fed.error) this.decodeErrors.push(fed.error);
    for (const payload of fed.frames) {
      const version = payload[0]!;
      const decoded = decodeOrFail(payload);
      this.received.push({ version, message: decoded });
      this.onMessage(decoded, version);
    }
  }

  /** Bytes from the guest to the host. */
  emit(bytes: Uint8Array): void {
    const deliver = (): void => {
      for (const listener of [...this.#listeners]) listener(bytes);
    };
    if (this.sync) deliver();
    else queueMicrotask(deliver);
  }

  send(message: AgentMessage, version = 1): void {
    this.emit(encodeFrame(encodeMessage(message, version)));
  }

  hello(extra: Partial<Hello> = {}): void {
    this.send({ ...GUEST_HELLO, ...extra });
  }

  /** What a well-behaved agent does. */
  standard(message: AgentMessage, version: number): void {
    if (message.type === "hello" && message.version === undefined) this.hello();
    if (message.type === "ping") this.send({ type: "pong", id: message.id }, version);
  }

  of<T extends AgentMessage["type"]>(type: T): Extract<AgentMessage, { type: T }>[] {
    return this.received.map((r) => r.message).filter((m): m is Extract<AgentMessage, { type: T }> => m.type === type);
  }
}

/** What the host sends must decode with the real decoder. */
function decodeOrFail(payload: Uint8Array): AgentMessage {
  const decoded = decodeMessage(payload);
  if (!decoded.ok || decoded.message.type === "unknown") throw new Error(`host sent something undecodable: ${JSON.stringify(decoded)}`);
  return decoded.message;
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function connected(options: { sync?: boolean } = {}): Promise<{ guest: FakeGuest; session: AgentSession }> {
  const guest = new FakeGuest(options.sync);
  const session = new AgentSession(guest.transport);
  guest.hello();
  await session.whenReady(1000);
  return { guest, session };
}

function disconnection(session: AgentSession): Promise<string> {
  return new Promise((resolve) => session.onDisconnect(resolve));
}

afterEach(() => {
  vi.useRealTimers();
});

describe("AgentSession handshake", () => {
  it("answers the guest's hello with the agreed version and reports who the guest is", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport, { software: "unmachine 0.1.0" });
    const hellos: Hello[] = [];
    session.onHello((hello) => hellos.push(hello));
    expect(session.state).toBe("waiting");
    await settle();
    expect(guest.received, "nothing is sent before the guest speaks").toEqual([]);
    guest.hello();
    const info = await session.whenReady(1000);
    expect(session.state).toBe("ready");
    expect(session.version).toBe(1);
    expect(info).toMatchObject({ software: "umagent 1.0.0", os: "Linux", machine: "i686", hostname: "tiny", pid: 100 });
    expect(session.info).toEqual(info);
    expect(hellos).toHaveLength(1);
    await settle();
    expect(guest.of("hello")).toEqual([
      { type: "hello", minVersion: 1, maxVersion: 1, version: 1, software: "unmachine 0.1.0", capabilities: ["ping", "exec", "clipboard", "display", "windows", "apps", "launch", "window-action", "display.size", "clipboard.png"] },
    ]);
  });

  it("agrees on the highest version both know", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    guest.hello({ minVersion: 1, maxVersion: 9 });
    await session.whenReady(1000);
    expect(session.version).toBe(1);
    await settle();
    expect(guest.received[0]).toMatchObject({ version: 1, message: { type: "hello", version: 1 } });
  });

  it("disconnects an agent that speaks only newer versions, saying what to do", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    guest.hello({ minVersion: 2, maxVersion: 3 });
    await expect(session.whenReady(1000)).rejects.toThrow(/speaks protocol versions 2\.\.3, this host 1\.\.1; install the agent that comes with this host/);
    expect(session.state).toBe("disconnected");
  });

  it("with probe, asks an agent that is already running to say hello again", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport, { probe: true });
    await session.whenReady(1000);
    expect(guest.of("hello")[0]).not.toHaveProperty("version");
    expect(guest.of("hello")[1]).toMatchObject({ version: 1 });
  });

  it("with the agent a resumed guest saved, sends the probe, the clock and a command at once, in its version, before its hello", async () => {
    const guest = new FakeGuest();
    guest.onMessage = () => {}; // silent until told
    const session = new AgentSession(guest.transport, { saved: { version: 1, pid: 100 } });
    expect(session.early).toBe(true);
    expect(session.setTime(1_700_000_000_123)).toBe(true);
    const ran = session.exec("echo hi");
    await settle();
    expect(guest.received.map((r) => [r.message.type, r.version])).toEqual([
      ["hello", 1],
      ["setTime", 1],
      ["exec", 1],
    ]);
    expect(guest.of("hello")[0]).not.toHaveProperty("version"); // the probe
    // The agent answers in order: its hello, then the command's result.
    guest.hello();
    const exec = guest.of("exec")[0]!;
    guest.send({ type: "execResult", id: exec.id, status: 0, signal: 0, timedOut: false, truncated: false, output: new TextEncoder().encode("hi\n") });
    await expect(ran).resolves.toMatchObject({ status: 0, output: "hi\n" });
    expect(session.state).toBe("ready");
    expect(session.early).toBe(false);
    expect(guest.of("exec")).toHaveLength(1); // not sent again after the hello
    expect(session.saved()).toEqual({ version: 1, pid: 100 });
  });

  it("never takes the answer to a request of the run that saved the guest for one of its own", async () => {
    // The saving run's command, still running when the guest was saved, answers after the resume.
    const before = new FakeGuest();
    before.onMessage = () => {};
    const saving = new AgentSession(before.transport, { saved: { version: 1, pid: 100 } });
    void saving.exec("sleep 5; echo late").catch(() => {});
    await settle();
    const late = before.of("exec")[0]!.id;
    saving.dispose();

    const guest = new FakeGuest();
    guest.onMessage = () => {};
    const session = new AgentSession(guest.transport, { saved: { version: 1, pid: 100 } });
    const ran = session.exec("echo mine");
    await settle();
    guest.hello();
    const mine = guest.of("exec")[0]!.id;
    expect(mine).not.toBe(late);
    guest.send({ type: "execResult", id: late, status: 0, signal: 0, timedOut: false, truncated: false, output: new TextEncoder().encode("late\n") });
    guest.send({ type: "execResult", id: mine, status: 0, signal: 0, timedOut: false, truncated: false, output: new TextEncoder().encode("mine\n") });
    await expect(ran).resolves.toMatchObject({ output: "mine\n" });
  });

  it("takes the answer of another agent of the same version (restarted) to what went out early", async () => {
    const guest = new FakeGuest();
    guest.onMessage = () => {};
    const session = new AgentSession(guest.transport, { saved: { version: 1, pid: 99 } });
    const early = session.exec("echo hi");
    await settle();
    guest.hello(); // pid 100
    const exec = guest.of("exec")[0]!;
    guest.send({ type: "execResult", id: exec.id, status: 0, signal: 0, timedOut: false, truncated: false, output: new TextEncoder().encode("hi\n") });
    await expect(early).resolves.toMatchObject({ status: 0, output: "hi\n" });
    expect(session.saved()).toEqual({ version: 1, pid: 100 });
  });

  it("keeps nothing of an agent that has not said hello, and reads a kept one back only if it is one", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    expect(session.saved()).toBeUndefined();
    expect(session.early).toBe(false);
    expect(session.setTime(1)).toBe(false); // no clock is set before the hello without a saved agent
    expect(savedAgent({ version: 1, pid: 4242 })).toEqual({ version: 1, pid: 4242 });
    for (const junk of [undefined, null, "x", [], { version: 1 }, { version: 2, pid: 5 }, { version: 0, pid: 5 }, { version: 1, pid: -1 }, { version: 1, pid: 1.5 }, { version: "1", pid: 5 }, { version: 1, pid: 2 ** 31 }])
      expect(savedAgent(junk), JSON.stringify(junk)).toBeUndefined();
    const ignored = new AgentSession(new FakeGuest().transport, { saved: { version: 7, pid: 5 } });
    expect(ignored.early).toBe(false); // a version this host does not speak: the usual handshake
  });

  it("says so when no agent ever says hello", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    await expect(session.whenReady(30)).rejects.toThrow(/did not say hello within 30 ms; is umagent running in the guest\?/);
    await expect(session.ping(30)).rejects.toThrow(/did not answer ping within 30 ms \(it never said hello/);
  });

  it("ignores what arrives before the hello (left over from an earlier session)", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    const clips: string[] = [];
    session.onClipboard((text) => clips.push(text));
    guest.send({ type: "clipboard", text: "old" });
    guest.send({ type: "pong", id: 5 });
    guest.hello();
    await session.whenReady(1000);
    expect(clips).toEqual([]);
    expect(session.state).toBe("ready");
  });

  it("fires onHello again when the agent restarts, failing what the old one had pending", async () => {
    const { guest, session } = await connected();
    const hellos: Hello[] = [];
    session.onHello((hello) => hellos.push(hello));
    guest.onMessage = () => {};
    const pending = session.exec("sleep 100");
    await settle();
    guest.hello(); // the same agent again: not news
    await settle();
    expect(hellos).toEqual([]);
    guest.hello({ pid: 200 });
    await expect(pending).rejects.toThrow(/the guest agent restarted \(pid 100 → 200\) before answering/);
    expect(hellos).toHaveLength(1);
    expect(session.info?.pid).toBe(200);
    expect(session.state).toBe("ready");
  });
});

describe("AgentSession requests", () => {
  it("ping resolves with the round trip time", async () => {
    const { session } = await connected();
    const ms = await session.ping(1000);
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(1000);
  });

  it("exec sends the command and resolves with output and status", async () => {
    const { guest, session } = await connected();
    guest.onMessage = (message, version) => {
      if (message.type !== "exec") return;
      expect(message).toMatchObject({ command: "echo hi; exit 3", timeoutMs: 2000, maxOutput: 100 });
      guest.send(
        { type: "execResult", id: message.id, status: 3, signal: 0, timedOut: false, truncated: false, output: new TextEncoder().encode("hi\n") },
        version,
      );
    };
    const outcome = await session.exec("echo hi; exit 3", { timeoutMs: 2000, maxOutput: 100 });
    expect(outcome).toMatchObject({ output: "hi\n", status: 3, signal: 0, timedOut: false, truncated: false });
    expect(outcome.outputBytes).toEqual(new TextEncoder().encode("hi\n"));
  });

  it("matches replies to requests by id, in any order", async () => {
    const { guest, session } = await connected();
    const execs: { id: number; command: string }[] = [];
    guest.onMessage = (message) => {
      if (message.type === "exec") execs.push(message);
    };
    const a = session.exec("a");
    const b = session.exec("b");
    await settle();
    expect(execs.map((e) => e.command)).toEqual(["a", "b"]);
    expect(execs[0]!.id).not.toBe(execs[1]!.id);
    const reply = (id: number, text: string): AgentMessage => ({
      type: "execResult", id, status: 0, signal: 0, timedOut: false, truncated: false, output: new TextEncoder().encode(text),
    });
    guest.send(reply(execs[1]!.id, "B"));
    guest.send(reply(execs[0]!.id, "A"));
    expect((await a).output).toBe("A");
    expect((await b).output).toBe("B");
  });

  it("decodes output that is not UTF-8 leniently and keeps the bytes", async () => {
    const { guest, session } = await connected();
    guest.onMessage = (message) => {
      if (message.type === "exec") {
        guest.send({ type: "execResult", id: message.id, status: 0, signal: 0, timedOut: false, truncated: true, output: new Uint8Array([0x61, 0xff]) });
      }
    };
    const outcome = await session.exec("cat /bin/sh");
    expect(outcome.output).toBe("a\ufffd");
    expect(outcome.outputBytes).toEqual(new Uint8Array([0x61, 0xff]));
    expect(outcome.truncated).toBe(true);
  });

  it("requests made before the hello wait for it", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    const ping = session.ping(1000);
    await settle();
    expect(guest.received).toEqual([]);
    guest.hello();
    await expect(ping).resolves.toBeGreaterThanOrEqual(0);
    expect(guest.received.map((r) => r.message.type)).toEqual(["hello", "ping"]);
  });

  it("times out a request the agent never answers, and ignores the late reply", async () => {
    const { guest, session } = await connected();
    const pings: number[] = [];
    guest.onMessage = (message) => {
      if (message.type === "ping") pings.push(message.id);
    };
    await expect(session.ping(20)).rejects.toThrow(/the guest agent did not answer ping within 20 ms$/);
    guest.send({ type: "pong", id: pings[0]! });
    await settle();
    expect(session.state).toBe("ready");
  });

  it("waits for the guest's own exec timeout plus a grace period", async () => {
    vi.useFakeTimers();
    const guest = new FakeGuest(true);
    const session = new AgentSession(guest.transport);
    guest.hello();
    guest.onMessage = () => {};
    const outcome = session.exec("sleep 100", { timeoutMs: 1000 });
    let settled = false;
    outcome.then(() => (settled = true), () => (settled = true));
    await vi.advanceTimersByTimeAsync(5_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(outcome).rejects.toThrow(/did not answer exec within 6000 ms/);
  });

  it("fails a request the agent refuses, with the agent's reason", async () => {
    const { guest, session } = await connected();
    guest.onMessage = (message) => {
      if (message.type === "exec") guest.send({ type: "error", id: message.id, message: "too many commands running in the guest (8)" });
    };
    const error = await session.exec("ls").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentError);
    expect((error as Error).message).toBe("the guest agent refused exec: too many commands running in the guest (8)");
  });

  it("checks exec arguments before sending anything", async () => {
    const { guest, session } = await connected();
    const before = guest.sends.length;
    await expect(session.exec("x".repeat(LIMITS.commandBytes + 1))).rejects.toThrow(/the command is 65537 bytes; the agent takes at most 65536/);
    await expect(session.exec("a\0b")).rejects.toThrow(/NUL/);
    await expect(session.exec("ls", { timeoutMs: 0 })).rejects.toThrow(/exec timeout must be 1\.\.86400000 ms, got 0/);
    await expect(session.exec("ls", { maxOutput: -1 })).rejects.toThrow(/maxOutput/);
    expect(guest.sends.length).toBe(before);
  });

  it("answers the guest's ping", async () => {
    const { guest } = await connected();
    guest.send({ type: "ping", id: 77 });
    await settle();
    await settle();
    expect(guest.of("pong")).toEqual([{ type: "pong", id: 77 }]);
  });

  it("runs nothing the guest asks for and skips types it does not know", async () => {
    const { guest, session } = await connected();
    guest.send({ type: "exec", id: 1, command: "rm -rf ~", timeoutMs: 1, maxOutput: 1 });
    guest.emit(encodeFrame(new Uint8Array([1, 99, 0, 0, 0, 0, 1, 2, 3])));
    await settle();
    expect(session.state).toBe("ready");
    expect(guest.of("execResult")).toEqual([]);
    await expect(session.ping(1000)).resolves.toBeGreaterThanOrEqual(0);
  });
});

describe("AgentSession clipboard and display", () => {
  it("reports the guest's clipboard", async () => {
    const { guest, session } = await connected();
    const clips: string[] = [];
    session.onClipboard((text) => clips.push(text));
    guest.send({ type: "clipboard", text: "from the guest ✓" });
    await settle();
    expect(clips).toEqual(["from the guest ✓"]);
  });

  it("sets the guest's clipboard, a 1 MiB text in sends of at most 4096 bytes", async () => {
    const { guest, session } = await connected();
    const text = "ü".repeat(LIMITS.clipboardBytes / 2);
    const before = guest.sends.length;
    session.setClipboard(text);
    await settle();
    const sends = guest.sends.slice(before);
    expect(sends.length).toBe(Math.ceil((LIMITS.clipboardBytes + 6 + 6 + 5) / AGENT_SEND_CHUNK));
    for (const send of sends) expect(send.length).toBeLessThanOrEqual(AGENT_SEND_CHUNK);
    expect(guest.of("clipboard")).toEqual([{ type: "clipboard", text }]);
  });

  it("honours a smaller send size", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport, { sendChunk: 64 });
    guest.hello();
    await session.whenReady(1000);
    session.setClipboard("x".repeat(1000));
    await settle();
    expect(Math.max(...guest.sends.map((s) => s.length))).toBe(64);
    expect(guest.of("clipboard")).toEqual([{ type: "clipboard", text: "x".repeat(1000) }]);
  });

  it("refuses clipboard text over the limit, saying so", async () => {
    const { session } = await connected();
    expect(() => session.setClipboard("x".repeat(LIMITS.clipboardBytes + 1))).toThrow(/clipboard text is 1048577 bytes; the guest agent takes at most 1048576/);
  });

  it("keeps the latest clipboard set before the hello and sends it after", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    session.setClipboard("first");
    session.setClipboard("second");
    guest.hello();
    await session.whenReady(1000);
    await settle();
    expect(guest.of("clipboard")).toEqual([{ type: "clipboard", text: "second" }]);
  });

  it("puts a PNG on the clipboard of an agent that takes images, and reports the guest's", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    guest.hello({ capabilities: ["clipboard", "clipboard.png"] });
    await session.whenReady(1000);
    const png = noisePng(8, 8);
    expect(session.setClipboardImage(png)).toBe(true);
    await settle();
    expect(guest.of("clipboard")).toEqual([{ type: "clipboard", mime: "image/png", data: png }]);
    const images: Uint8Array[] = [];
    session.onClipboardImage((image) => images.push(image));
    guest.send({ type: "clipboard", mime: "image/png", data: png });
    await settle();
    expect(images).toEqual([png]);
  });

  it("sends no image to an agent without clipboard.png, and refuses bytes that are not a PNG", async () => {
    const { guest, session } = await connected();
    expect(session.setClipboardImage(noisePng(8, 8))).toBe(false);
    await settle();
    expect(guest.of("clipboard")).toEqual([]);
    expect(() => session.setClipboardImage(new TextEncoder().encode("GIF89a"))).toThrow(/not a PNG/);
    expect(() => session.setClipboardImage(new Uint8Array(LIMITS.clipboardImageBytes + 1))).toThrow(/8388609 bytes; the guest agent takes at most 8388608/);
  });

  it("drops a clipboard that lies about being a PNG, says why, and keeps the session", async () => {
    const { guest, session } = await connected();
    const dropped: string[] = [];
    const images: Uint8Array[] = [];
    session.onDropped((reason) => dropped.push(reason));
    session.onClipboardImage((image) => images.push(image));
    const mime = [...new TextEncoder().encode("image/png")];
    const fake = [...new TextEncoder().encode("<svg>not a png</svg>")];
    const field = (tag: number, value: number[]): number[] => [tag, value.length, 0, 0, 0, ...value];
    guest.emit(encodeFrame(new Uint8Array([1, 6, 0, 0, 0, 0, ...field(2, mime), ...field(3, fake)])));
    guest.emit(encodeFrame(new Uint8Array([1, 6, 0, 0, 0, 0, ...field(2, [...new TextEncoder().encode("image/gif")]), ...field(3, fake)])));
    await settle();
    expect(images).toEqual([]);
    expect(dropped).toEqual([
      "dropped the guest's clipboard: clipboard: the image/png data does not start with the PNG signature",
      'dropped the guest\'s clipboard: clipboard: MIME type "image/gif" is neither text/plain;charset=utf-8 nor image/png',
    ]);
    expect(session.state).toBe("ready");
    await expect(session.ping(1000)).resolves.toBeGreaterThanOrEqual(0);
  });

  it("reports the display when it changes", async () => {
    const { guest, session } = await connected();
    const seen: string[] = [];
    session.onDisplay((d) => seen.push(`${d.mode} ${d.width}x${d.height}`));
    guest.send({ type: "display", mode: "text", width: 80, height: 25 });
    guest.send({ type: "display", mode: "text", width: 80, height: 25 });
    guest.send({ type: "display", mode: "graphics", width: 1024, height: 768 });
    await settle();
    expect(seen).toEqual(["text 80x25", "graphics 1024x768"]);
    expect(session.display).toMatchObject({ mode: "graphics", width: 1024, height: 768 });
  });
});

describe("AgentSession with a misbehaving guest", () => {
  it("disconnects on text where frames belong, failing pending requests with the reason", async () => {
    const { guest, session } = await connected();
    guest.onMessage = () => {};
    const pending = session.ping(1000);
    const reason = disconnection(session);
    guest.emit(new TextEncoder().encode("login: "));
    expect(await reason).toMatch(/the agent's stream is not agent frames: expected a frame \(magic "UM"\) at byte \d+, got "login: "/);
    await expect(pending).rejects.toThrow(/agent disconnected: the agent's stream is not agent frames/);
    expect(session.state).toBe("disconnected");
    expect(session.reason).toBe(await reason);
    expect(guest.listenerCount, "the session stops listening").toBe(0);
    await expect(session.ping()).rejects.toThrow(/agent disconnected/);
    expect(() => session.setClipboard("x")).not.toThrow();
  });

  it("disconnects on an oversized frame", async () => {
    const { guest, session } = await connected();
    const reason = disconnection(session);
    guest.emit(new Uint8Array([0x55, 0x4d, 0xff, 0xff, 0xff, 0x7f]));
    expect(await reason).toMatch(/announces 2147483647 bytes, more than the limit/);
  });

  it("disconnects on a malformed message", async () => {
    const { guest, session } = await connected();
    const reason = disconnection(session);
    guest.emit(encodeFrame(new Uint8Array([1, 8, 1, 0, 0, 0, 1, 2, 0, 0, 0, 0xc3, 0x28])));
    expect(await reason).toBe("malformed message from the agent: error: field message is not valid UTF-8");
  });

  it("disconnects on a frame in another protocol version than agreed", async () => {
    const { guest, session } = await connected();
    const reason = disconnection(session);
    guest.send({ type: "clipboard", text: "x" }, 2);
    expect(await reason).toMatch(/sent a clipboard message in protocol version 2, but version 1 was agreed/);
  });

  it("disconnects on a reply of the wrong kind", async () => {
    const { guest, session } = await connected();
    guest.onMessage = (message) => {
      if (message.type === "ping") guest.send({ type: "execResult", id: message.id, status: 0, signal: 0, timedOut: false, truncated: false, output: new Uint8Array() });
    };
    await expect(session.ping(1000)).rejects.toThrow(/the agent answered ping request \d+ with execResult/);
  });

  it("disconnects, without throwing, when the port cannot be written", async () => {
    const guest = new FakeGuest();
    const transport: AgentTransport = {
      send: () => {
        throw new Error("port gone");
      },
      onData: (listener) => guest.transport.onData(listener),
    };
    const session = new AgentSession(transport);
    const reason = disconnection(session);
    guest.hello();
    expect(await reason).toBe("cannot write to the agent's port: port gone");
  });

  it("fires onDisconnect once, and ignores everything after", async () => {
    const { guest, session } = await connected({ sync: true });
    const reasons: string[] = [];
    session.onDisconnect((reason) => reasons.push(reason));
    guest.emit(new Uint8Array([0, 0, 0]));
    guest.emit(new Uint8Array([1, 2, 3]));
    guest.send({ type: "clipboard", text: "late" });
    session.disconnect("again");
    expect(reasons).toHaveLength(1);
  });
});

describe("AgentSession plumbing", () => {
  it("works when replies come back synchronously, in order", async () => {
    const { guest, session } = await connected({ sync: true });
    const results = await Promise.all([session.ping(1000), session.ping(1000), session.ping(1000)]);
    expect(results).toHaveLength(3);
    const ids = guest.of("ping").map((p) => p.id);
    expect(ids).toEqual([ids[0], ids[0]! + 1, ids[0]! + 2]);
  });

  it("takes the guest's bytes in any chunking", async () => {
    const guest = new FakeGuest();
    const session = new AgentSession(guest.transport);
    const clips: string[] = [];
    session.onClipboard((text) => clips.push(text));
    const bytes = [
      ...encodeFrame(encodeMessage(GUEST_HELLO)),
      ...encodeFrame(encodeMessage({ type: "clipboard", text: "one" })),
      ...encodeFrame(encodeMessage({ type: "clipboard", text: "two" })),
    ];
    for (const byte of bytes) guest.emit(new Uint8Array([byte]));
    await session.whenReady(1000);
    await settle();
    expect(clips).toEqual(["one", "two"]);
  });

  it("runs over a FramePipe carrying the agent's bytes", async () => {
    const [host, far] = createPipePair();
    const decoder = new FrameDecoder();
    far.onFrame((bytes) => {
      for (const payload of decoder.feed(bytes).frames) {
        const message = decodeOrFail(payload);
        if (message.type === "ping") far.send(encodeFrame(encodeMessage({ type: "pong", id: message.id })));
      }
    });
    const session = new AgentSession(pipeTransport(host));
    far.send(encodeFrame(encodeMessage(GUEST_HELLO)));
    await session.whenReady(1000);
    await expect(session.ping(1000)).resolves.toBeGreaterThanOrEqual(0);
    session.dispose();
  });

  it("dispose fails pending requests, stops listening and is idempotent", async () => {
    const { guest, session } = await connected();
    guest.onMessage = () => {};
    const pending = session.exec("sleep 1");
    session.dispose();
    session.dispose();
    await expect(pending).rejects.toThrow(/agent disconnected: the agent session was closed/);
    expect(guest.listenerCount).toBe(0);
  });
});
