// An X client that owns the CLIPBOARD selection and answers each request for it when a test
// says: at once, late, or never (a busy or hung application, as the guest agent meets them).
// It speaks the X11 wire protocol over the display's Unix socket with nothing but the requests
// it needs (CreateWindow, InternAtom, SetSelectionOwner, ChangeProperty, SendEvent); no npm X11
// client is kept up, and these six requests are the whole of what this needs.

import { connect, type Socket } from "node:net";

/**
 * How the owner answers the n-th request for the selection (0-based): after `delay` ms (with
 * `text` in place of the owner's own, as an application whose copy changed meanwhile), or never.
 */
export type AnswerPlan = (n: number) => { delay: number; text?: string } | "never";

export interface SelectionOwner {
  /** The requests for the selection so far, each with its target's name. */
  readonly requests: string[];
  /** What went wrong on the connection (an X error, a refused setup), if anything. */
  readonly errors: string[];
  close(): void;
}

const XA_ATOM = 4;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Owns CLIPBOARD on the display at `socketPath`, holding `text` as UTF8_STRING. */
export async function ownClipboard(socketPath: string, text: string, plan: AnswerPlan): Promise<SelectionOwner> {
  const socket: Socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let buffer = Buffer.alloc(0);
  let waiting: ((packet: Buffer) => void) | undefined;
  let onEvent: (event: Buffer) => void = () => {};
  let setup: ((reply: Buffer) => void) | undefined;
  const errors: string[] = [];
  socket.on("error", (error) => errors.push(error.message));
  socket.on("data", (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    for (;;) {
      if (setup) {
        if (buffer.length < 8) return;
        const size = 8 + buffer.readUInt16LE(6) * 4;
        if (buffer.length < size) return;
        const reply = buffer.subarray(0, size);
        buffer = buffer.subarray(size);
        const done = setup;
        setup = undefined;
        done(reply);
        continue;
      }
      if (buffer.length < 32) return;
      const size = buffer[0] === 1 ? 32 + buffer.readUInt32LE(4) * 4 : 32;
      if (buffer.length < size) return;
      const packet = buffer.subarray(0, size);
      buffer = buffer.subarray(size);
      if (packet[0] === 0) errors.push(`the X server sent error ${packet[1]} for request ${packet[10]}`);
      else if (packet[0] === 1) waiting?.(packet);
      else onEvent(packet);
    }
  });
  const send = (bytes: Buffer): void => void socket.write(bytes);
  const reply = (): Promise<Buffer> => new Promise((resolve) => (waiting = resolve));

  // Connection setup: little-endian, protocol 11.0, no authorization (the server runs with -ac).
  const setupReply = new Promise<Buffer>((resolve) => (setup = resolve));
  send(Buffer.from([0x6c, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  const s = await setupReply;
  if (s[0] !== 1) throw new Error(`the X server refused the connection: ${s.subarray(8, 8 + s[1]!).toString()}`);
  const idBase = s.readUInt32LE(12);
  const vendorLength = s.readUInt16LE(24);
  const formats = s[29]!;
  const root = s.readUInt32LE(40 + pad4(vendorLength) + formats * 8);

  const window = idBase | 1;
  const create = Buffer.alloc(32);
  create.writeUInt8(1, 0); // CreateWindow, depth 0 (CopyFromParent)
  create.writeUInt16LE(8, 2);
  create.writeUInt32LE(window, 4);
  create.writeUInt32LE(root, 8);
  create.writeUInt16LE(1, 16); // width
  create.writeUInt16LE(1, 18); // height
  create.writeUInt16LE(2, 22); // InputOnly; visual 0 (CopyFromParent), no values
  send(create);

  const intern = async (name: string): Promise<number> => {
    const bytes = Buffer.from(name, "latin1");
    const request = Buffer.alloc(8 + pad4(bytes.length));
    request.writeUInt8(16, 0); // InternAtom, only-if-exists false
    request.writeUInt16LE(request.length / 4, 2);
    request.writeUInt16LE(bytes.length, 4);
    bytes.copy(request, 8);
    const answer = reply();
    send(request);
    return (await answer).readUInt32LE(8);
  };
  const clipboard = await intern("CLIPBOARD");
  const targets = await intern("TARGETS");
  const utf8 = await intern("UTF8_STRING");
  const names = new Map([
    [targets, "TARGETS"],
    [utf8, "UTF8_STRING"],
  ]);

  const answer = (requestor: number, target: number, property: number, content: string): void => {
    const data = target === targets ? Buffer.alloc(8) : target === utf8 ? Buffer.from(content, "utf8") : undefined;
    if (data && target === targets) {
      data.writeUInt32LE(targets, 0);
      data.writeUInt32LE(utf8, 4);
    }
    if (data && property !== 0) {
      const change = Buffer.alloc(24 + pad4(data.length));
      change.writeUInt8(18, 0); // ChangeProperty, mode Replace
      change.writeUInt16LE(change.length / 4, 2);
      change.writeUInt32LE(requestor, 4);
      change.writeUInt32LE(property, 8);
      change.writeUInt32LE(target === targets ? XA_ATOM : utf8, 12);
      change.writeUInt8(target === targets ? 32 : 8, 16);
      change.writeUInt32LE(target === targets ? 2 : data.length, 20);
      data.copy(change, 24);
      send(change);
    }
    const notify = Buffer.alloc(44);
    notify.writeUInt8(25, 0); // SendEvent, no propagation
    notify.writeUInt16LE(11, 2);
    notify.writeUInt32LE(requestor, 4); // event mask 0: to the requestor's client
    notify.writeUInt8(31, 12); // SelectionNotify, time CurrentTime
    notify.writeUInt32LE(requestor, 20);
    notify.writeUInt32LE(clipboard, 24);
    notify.writeUInt32LE(target, 28);
    notify.writeUInt32LE(data && property !== 0 ? property : 0, 32);
    send(notify);
  };

  const requests: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  onEvent = (event) => {
    if ((event[0]! & 0x7f) !== 30) return; // SelectionRequest
    const requestor = event.readUInt32LE(12);
    const target = event.readUInt32LE(20);
    const property = event.readUInt32LE(24) || target;
    const how = plan(requests.length);
    requests.push(names.get(target) ?? `atom ${target}`);
    if (how === "never") return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer(requestor, target, property, how.text ?? text);
    }, how.delay);
    timers.add(timer);
  };

  const own = Buffer.alloc(16);
  own.writeUInt8(22, 0); // SetSelectionOwner, time CurrentTime
  own.writeUInt16LE(4, 2);
  own.writeUInt32LE(window, 4);
  own.writeUInt32LE(clipboard, 8);
  send(own);
  // A round trip, so the ownership is in place when this returns.
  await intern("CLIPBOARD");

  return {
    requests,
    errors,
    close: () => {
      for (const timer of timers) clearTimeout(timer);
      socket.destroy();
    },
  };
}
