// A page download of a user guest's hard disk (the web shell's export: the browser saves the file
// where its user chooses). GET /library/export/NAME from the page itself (checked by server.ts)
// streams the disk as the guest sees it, image plus changes, as one flat image, a chunk at a time
// and never whole; the image and the overlay are only read. A running guest is refused.
// Counterpart: the CLI's `unmachine export` and Electron's save dialog (main/guests/library-edit.ts).

import { Readable } from "node:stream";
import type { IncomingMessage, ServerResponse } from "node:http";
import { OverlayDisk } from "../disk/overlay.js";
import type { GuestLibrary } from "../guests/library.js";
import type { HostSessions } from "../host/sessions.js";
import { checkExportable } from "../host/host-api.js";

const CHUNK = 1024 * 1024;

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(`${body}\n`);
}

/** The disk read from its first byte to its last, one chunk per read; the disk is closed at the end. */
function diskStream(disk: OverlayDisk): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= disk.size) {
        this.push(null);
        return;
      }
      const chunk = new Uint8Array(Math.min(CHUNK, disk.size - at));
      try {
        disk.read(at, chunk);
      } catch (error) {
        this.destroy(error as Error);
        return;
      }
      at += chunk.length;
      this.push(chunk);
    },
    destroy(error, done) {
      disk.close();
      done(error);
    },
  });
}

export function sendExport(req: IncomingMessage, res: ServerResponse, library: GuestLibrary, sessions: HostSessions, guest: string): void {
  if (!library.has(guest)) return answer(res, 404, `no guest named "${guest.slice(0, 64)}"`);
  let disk: OverlayDisk;
  try {
    checkExportable(library, sessions, guest);
    const disks = library.resolve(guest).disks;
    const served = (disks.hda ?? disks.hdb)!;
    disk = new OverlayDisk(served.base, served.overlay, { size: served.size, readOnly: true });
  } catch (error) {
    return answer(res, 409, (error as Error).message);
  }
  res.writeHead(200, {
    "content-type": "application/octet-stream",
    "content-length": disk.size,
    "content-disposition": `attachment; filename="${guest}.img"`,
    "cache-control": "no-store",
  });
  if (req.method === "HEAD") {
    disk.close();
    res.end();
    return;
  }
  const stream = diskStream(disk);
  stream.on("error", () => res.destroy());
  res.on("close", () => stream.destroy());
  stream.pipe(res);
}
