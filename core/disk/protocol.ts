// The "disk" pipe's frames: the page or worker asks the host for a hard disk's blocks and
// sends it the blocks the guest writes (core/disk/served-disk.ts); the host answers each
// request by id (main/host/disk-service.ts). One frame is one request or one reply. Decoding
// checks every length: a short or lying frame is a DiskProtocolError, never a crash.

import type { DiskRole } from "../guest/launch-plan.js";

export const DISK_ROLES = ["hda", "hdb"] as const satisfies readonly DiskRole[];

export const DISK_OP = { read: 1, write: 2, flush: 3 } as const;
export type DiskOp = keyof typeof DISK_OP;

/** The most bytes one request reads or writes; larger guest requests are split by the sender. */
export const MAX_DISK_IO = 1024 * 1024;

/** op u8, id u32, disk u8, offset u64 (two u32: low, high), length u32; a write's data follows. */
export const REQUEST_HEADER = 18;
/** op|0x80 u8, id u32, status u8; a read's data or an error's UTF-8 message follows. */
export const REPLY_HEADER = 6;
const REPLY_FLAG = 0x80;

export type DiskRequest =
  | { op: "read"; id: number; disk: DiskRole; offset: number; length: number }
  | { op: "write"; id: number; disk: DiskRole; offset: number; data: Uint8Array }
  | { op: "flush"; id: number; disk: DiskRole };

export type DiskReply = { op: DiskOp; id: number; ok: true; data: Uint8Array } | { op: DiskOp; id: number; ok: false; message: string };

export class DiskProtocolError extends Error {
  override name = "DiskProtocolError";
}

const OPS = Object.entries(DISK_OP) as [DiskOp, number][];
const opName = (code: number): DiskOp | undefined => OPS.find(([, value]) => value === code)?.[0];

export function encodeRequest(request: DiskRequest): Uint8Array {
  const data = request.op === "write" ? request.data : undefined;
  const frame = new Uint8Array(REQUEST_HEADER + (data?.length ?? 0));
  const view = new DataView(frame.buffer);
  const offset = request.op === "flush" ? 0 : request.offset;
  view.setUint8(0, DISK_OP[request.op]);
  view.setUint32(1, request.id >>> 0, true);
  view.setUint8(5, DISK_ROLES.indexOf(request.disk));
  view.setUint32(6, offset % 2 ** 32, true);
  view.setUint32(10, Math.floor(offset / 2 ** 32), true);
  view.setUint32(14, request.op === "read" ? request.length : (data?.length ?? 0), true);
  if (data) frame.set(data, REQUEST_HEADER);
  return frame;
}

export function decodeRequest(frame: Uint8Array): DiskRequest {
  if (frame.length < REQUEST_HEADER) throw new DiskProtocolError(`a disk request of ${frame.length} bytes is shorter than its header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const op = opName(view.getUint8(0));
  if (!op) throw new DiskProtocolError(`unknown disk request ${view.getUint8(0)}`);
  const id = view.getUint32(1, true);
  const disk = DISK_ROLES[view.getUint8(5)];
  if (!disk) throw new DiskProtocolError(`unknown disk ${view.getUint8(5)}`);
  const offset = view.getUint32(6, true) + view.getUint32(10, true) * 2 ** 32;
  const length = view.getUint32(14, true);
  if (length > MAX_DISK_IO) throw new DiskProtocolError(`a disk request of ${length} bytes is over the ${MAX_DISK_IO}-byte limit`);
  if (op === "read") {
    if (frame.length !== REQUEST_HEADER) throw new DiskProtocolError("a read request carries no data");
    return { op, id, disk, offset, length };
  }
  if (op === "write") {
    if (frame.length !== REQUEST_HEADER + length) throw new DiskProtocolError(`a write request says ${length} bytes but carries ${frame.length - REQUEST_HEADER}`);
    return { op, id, disk, offset, data: frame.subarray(REQUEST_HEADER) };
  }
  return { op, id, disk };
}

export function encodeReply(reply: DiskReply): Uint8Array {
  const body = reply.ok ? reply.data : new TextEncoder().encode(reply.message.slice(0, 1000));
  const frame = new Uint8Array(REPLY_HEADER + body.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, DISK_OP[reply.op] | REPLY_FLAG);
  view.setUint32(1, reply.id >>> 0, true);
  view.setUint8(5, reply.ok ? 0 : 1);
  frame.set(body, REPLY_HEADER);
  return frame;
}

export function decodeReply(frame: Uint8Array): DiskReply {
  if (frame.length < REPLY_HEADER) throw new DiskProtocolError(`a disk reply of ${frame.length} bytes is shorter than its header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const code = view.getUint8(0);
  const op = code & REPLY_FLAG ? opName(code & ~REPLY_FLAG) : undefined;
  if (!op) throw new DiskProtocolError(`unknown disk reply ${code}`);
  const id = view.getUint32(1, true);
  const body = frame.subarray(REPLY_HEADER);
  if (view.getUint8(5) === 0) return { op, id, ok: true, data: body };
  return { op, id, ok: false, message: new TextDecoder().decode(body) };
}
