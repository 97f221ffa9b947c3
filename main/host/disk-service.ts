// The host end of the "disk" pipe: serves a launch plan's hard disks (services.disks) block
// by block from their base image and copy-on-write overlay (main/disk/overlay.ts), for the page
// or a headless worker (core/disk/served-disk.ts). What the far side sends is checked (the
// disk exists, offset and length within it): a bad request gets an error reply, an undecodable
// frame closes the pipe with one logged line. The overlays are flushed and closed with the pipe;
// a temporary (one-off) overlay is removed then. A FAT drive (a host folder, read-only) is built
// from its folder when the pipe opens (main/fat/fat-drive.ts) and served the same way.

import { rmSync } from "node:fs";
import { DisposableStore, toDisposable, type Disposable } from "../../core/disposable.js";
import type { FramePipe } from "../../core/pipe/frame-pipe.js";
import type { DiskRole, LaunchServices, ServedDisk } from "../../core/guest/launch-plan.js";
import { decodeRequest, encodeReply, type DiskRequest } from "../../core/disk/protocol.js";
import { OverlayDisk } from "../disk/overlay.js";
import { ServedFatDrive } from "../fat/fat-drive.js";

export function serveDisks(served: Pick<LaunchServices, "disks" | "fatDrives">, pipe: FramePipe, onError: (message: string) => void): Disposable {
  const disks: Partial<Record<DiskRole, ServedDisk>> = served.disks ?? {};
  const store = new DisposableStore();
  const open: Partial<Record<DiskRole, OverlayDisk>> = {};
  const drives: Partial<Record<DiskRole, ServedFatDrive>> = {};
  const close = (): void => {
    for (const [role, drive] of Object.entries(drives) as [DiskRole, ServedFatDrive][]) {
      drive.close();
      delete drives[role];
    }
    for (const [role, disk] of Object.entries(open) as [DiskRole, OverlayDisk][]) {
      try {
        disk.close({ compact: !disks[role]?.temporary }); // a one-off's overlay is removed next
      } catch (error) {
        onError(`${disk.overlayPath}: could not be closed cleanly: ${(error as Error).message}`);
      }
      if (disks[role]?.temporary) rmSync(disk.overlayPath, { force: true });
      delete open[role];
    }
  };
  store.add(toDisposable(close));
  try {
    for (const [role, disk] of Object.entries(disks) as [DiskRole, ServedDisk][]) {
      // An overlay has one writer at a time, in any process (OverlayDisk's lock): a second session is refused.
      open[role] = new OverlayDisk(disk.base, disk.overlay, { size: disk.size, onRecover: onError });
    }
    for (const [role, drive] of Object.entries(served.fatDrives ?? {})) drives[role as DiskRole] = new ServedFatDrive(drive);
  } catch (error) {
    close();
    onError((error as Error).message);
    pipe.dispose();
    return store;
  }

  const answer = (request: DiskRequest): void => {
    const disk = open[request.disk] ?? drives[request.disk];
    try {
      if (!disk) throw new Error(`this guest has no served ${request.disk}`);
      if (request.op === "read") {
        const data = new Uint8Array(request.length);
        disk.read(request.offset, data);
        pipe.send(encodeReply({ op: "read", id: request.id, ok: true, data }));
      } else if (request.op === "write") {
        disk.write(request.offset, request.data);
        pipe.send(encodeReply({ op: "write", id: request.id, ok: true, data: new Uint8Array(0) }));
      } else {
        disk.flush();
        pipe.send(encodeReply({ op: "flush", id: request.id, ok: true, data: new Uint8Array(0) }));
      }
    } catch (error) {
      pipe.send(encodeReply({ op: request.op, id: request.id, ok: false, message: (error as Error).message }));
    }
  };
  store.add(
    pipe.onFrame((frame) => {
      let request: DiskRequest;
      try {
        request = decodeRequest(frame);
      } catch (error) {
        onError(`disk pipe closed: ${(error as Error).message}`);
        pipe.dispose();
        return;
      }
      answer(request);
    }),
  );
  store.add(pipe.onClose(close));
  return store;
}
