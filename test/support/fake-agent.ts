// A guest agent for unit tests of AgentSession: it says hello with the given capabilities (at
// once, or when told), the test sends its messages as frames, and reads what the host asked.
// Request ids count from 1 as the test sees them, both ways: a session's own start anywhere
// (core/agent/session.ts).
import { encodeFrame } from "../../core/agent/frame.js";
import { decodeMessage, encodeMessage, type AgentMessage } from "../../core/agent/messages.js";
import { AgentSession, type AgentTransport } from "../../core/agent/session.js";
import { toDisposable } from "../../core/disposable.js";

export interface FakeAgent {
  session: AgentSession;
  /** A message from the guest. */
  send(message: AgentMessage): void;
  /** Raw bytes from the guest (a malformed frame). */
  emit(bytes: Uint8Array): void;
  /** What the host has sent the guest, decoded (its hello left out). */
  requests: AgentMessage[];
  /** The agent's hello, when it was held back. */
  hello(): void;
}

export function helloAgent(capabilities: string[], options: { hello?: boolean } = {}): FakeAgent {
  const listeners = new Set<(bytes: Uint8Array) => void>();
  const requests: AgentMessage[] = [];
  const emit = (bytes: Uint8Array): void => {
    for (const listener of listeners) listener(bytes);
  };
  /** The session's first request id, less one. */
  let base: number | undefined;
  const send = (message: AgentMessage): void => {
    const sent = "id" in message && typeof message.id === "number" && base !== undefined ? { ...message, id: message.id + base } : message;
    emit(encodeFrame(encodeMessage(sent as AgentMessage)));
  };
  const transport: AgentTransport = {
    send: (bytes) => {
      const decoded = decodeMessage(bytes.subarray(6));
      if (!decoded.ok || decoded.message.type === "hello" || decoded.message.type === "unknown") return;
      const message = decoded.message;
      if ("id" in message && typeof message.id === "number") {
        base ??= message.id - 1;
        requests.push({ ...message, id: message.id - base } as AgentMessage);
      } else requests.push(message);
    },
    onData: (listener) => {
      listeners.add(listener);
      return toDisposable(() => listeners.delete(listener));
    },
  };
  const session = new AgentSession(transport);
  const hello = (): void => send({ type: "hello", minVersion: 1, maxVersion: 1, software: "umagent 1.0.0", capabilities });
  if (options.hello !== false) hello();
  return { session, send, emit, requests, hello };
}
