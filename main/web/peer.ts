// Who is at the other end of a loopback connection: Linux lists every TCP socket with its
// owner's uid in /proc/net/tcp, so the web shell serves only the user who started it. Another
// local user who read a one-time code in a process list, or replays a cookie a browser sent to
// their own port on 127.0.0.1, still gets nothing. Where there is no such table: unknown.

import { readFileSync } from "node:fs";
import type { Socket } from "node:net";

const LOOPBACK = "0100007F"; // 127.0.0.1 as /proc/net/tcp writes it (host byte order, x86 and arm)

/**
 * The uid owning the client socket 127.0.0.1:`clientPort` connected to 127.0.0.1:`serverPort`;
 * null when the table does not list it, undefined when there is no table to read.
 */
export function loopbackPeerUid(serverPort: number, clientPort: number, table = "/proc/net/tcp"): number | null | undefined {
  let text: string;
  try {
    // Read at once, in the connection's first request: a client that half-closes right after
    // sending must still get its answer (the table is small, one line a socket).
    text = readFileSync(table, "utf8");
  } catch {
    return undefined;
  }
  const local = `${LOOPBACK}:${clientPort.toString(16).toUpperCase().padStart(4, "0")}`;
  const remote = `${LOOPBACK}:${serverPort.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[2] === remote) {
      const uid = Number(fields[7]);
      return Number.isSafeInteger(uid) ? uid : null;
    }
  }
  return null;
}

/** Whether `socket` comes from this process's own user (or this host cannot tell), asked once a socket. */
export function ownUserPeer(options: { uid?: number; table?: string } = {}): (socket: Socket) => boolean {
  const uid = options.uid ?? process.getuid?.();
  const asked = new WeakMap<Socket, boolean>();
  return (socket) => {
    let answer = asked.get(socket);
    if (answer === undefined) {
      if (uid === undefined) answer = true;
      else if (socket.localPort === undefined || socket.remotePort === undefined) answer = false;
      else {
        const peer = loopbackPeerUid(socket.localPort, socket.remotePort, options.table);
        answer = peer === undefined || peer === uid;
      }
      asked.set(socket, answer);
    }
    return answer;
  };
}
