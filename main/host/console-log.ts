// A guest session's console log on disk (<logs>/<guest>-<id>.log, 0600), fed by the console
// pipe in sessions.ts. At 4 MiB the file moves to <name>.1 (replacing the one before) and a new
// one starts, so a session never takes more than two files' worth. Writes wait in a queue of at
// most 1 MiB: when the disk falls behind the guest, newer bytes are dropped until it catches up,
// and one line in the log says how many, so memory never grows with the guest's output.

import { constants, readdirSync, statSync, unlinkSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import type { Disposable } from "../../core/disposable.js";
import { PRIVATE_FILE_MODE } from "../private-files.js";

const MiB = 1024 * 1024;
export const LOG_FILE_LIMIT = 4 * MiB;
export const LOG_QUEUE_LIMIT = 1 * MiB;
/** Logs of ended sessions kept per guest; older ones are removed when a new session starts. */
export const LOGS_KEPT = 4;

const OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | (constants.O_NOFOLLOW ?? 0);

export interface ConsoleLogOptions {
  fileLimit?: number;
  queueLimit?: number;
}

export class ConsoleLog implements Disposable {
  readonly #path: string;
  readonly #fileLimit: number;
  readonly #queueLimit: number;
  #queue: Uint8Array[] = [];
  /** Bytes queued or being written. */
  #queued = 0;
  /** Bytes dropped since the queue filled; nothing more is queued until it has drained. */
  #dropped = 0;
  #file: fsp.FileHandle | undefined;
  #size = 0;
  #draining: Promise<void> | undefined;
  #closed = false;
  #failed = false;

  constructor(path: string, options: ConsoleLogOptions = {}) {
    this.#path = path;
    this.#fileLimit = options.fileLimit ?? LOG_FILE_LIMIT;
    this.#queueLimit = options.queueLimit ?? LOG_QUEUE_LIMIT;
  }

  /** Bytes held in memory for the log right now (never more than the queue limit). */
  get queuedBytes(): number {
    return this.#queued;
  }

  write(bytes: Uint8Array): void {
    if (this.#closed || this.#failed || bytes.length === 0) return;
    if (this.#dropped > 0 || this.#queued + bytes.length > this.#queueLimit) {
      this.#dropped += bytes.length;
    } else {
      this.#queue.push(bytes);
      this.#queued += bytes.length;
    }
    this.#draining ??= this.#drain();
  }

  /** Writes what is queued, then closes the file. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#draining;
    const file = this.#file;
    this.#file = undefined;
    await file?.close().catch(() => undefined);
  }

  dispose(): void {
    void this.close();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 || this.#dropped > 0) {
        if (this.#queue.length > 0) {
          const batch = Buffer.concat(this.#queue);
          this.#queue = [];
          await this.#writeOut(batch);
          this.#queued -= batch.length;
        } else {
          const dropped = this.#dropped;
          this.#dropped = 0;
          await this.#writeOut(Buffer.from(`\r\n[unmachine: ${dropped} bytes of console output were not logged: the disk fell behind]\r\n`));
        }
      }
    } catch {
      // A log that cannot be written is given up; the guest runs on.
      this.#failed = true;
      this.#queue = [];
      this.#queued = 0;
      this.#dropped = 0;
    } finally {
      this.#draining = undefined;
    }
  }

  async #open(truncate: boolean): Promise<fsp.FileHandle> {
    const file = await fsp.open(this.#path, OPEN_FLAGS | (truncate ? constants.O_TRUNC : 0), PRIVATE_FILE_MODE);
    try {
      await file.chmod(PRIVATE_FILE_MODE); // a file that was there before keeps its mode otherwise
      this.#size = (await file.stat()).size;
    } catch (error) {
      await file.close();
      throw error;
    }
    return file;
  }

  async #writeOut(data: Uint8Array): Promise<void> {
    this.#file ??= await this.#open(false);
    for (let at = 0; at < data.length; ) {
      if (this.#size >= this.#fileLimit) await this.#rotate();
      const piece = data.subarray(at, at + (this.#fileLimit - this.#size));
      const { bytesWritten } = await this.#file.write(piece, 0, piece.length);
      at += bytesWritten;
      this.#size += bytesWritten;
    }
  }

  async #rotate(): Promise<void> {
    await this.#file?.close();
    this.#file = undefined;
    await fsp.rename(this.#path, `${this.#path}.1`);
    this.#file = await this.#open(true);
  }
}

/** The log file of a session of `guest` (by the first 8 hex digits of its id). */
export function logFileName(guest: string, id: string): string {
  return `${guest}-${id.slice(0, 8)}.log`;
}

/**
 * Removes the logs (and their `.1` files) of all but the newest `keep` ended sessions of
 * `guest`; the logs of sessions named in `live` are left alone.
 */
export function pruneLogs(dir: string, guest: string, live: ReadonlySet<string>, keep = LOGS_KEPT): void {
  const pattern = new RegExp(`^${guest}-([0-9a-f]{8})\\.log(?:\\.1)?$`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const sessions = new Map<string, { files: string[]; newest: number }>();
  for (const name of names) {
    const id = pattern.exec(name)?.[1];
    if (id === undefined || live.has(logFileName(guest, id))) continue;
    let mtime = 0;
    try {
      mtime = statSync(join(dir, name)).mtimeMs;
    } catch {
      continue;
    }
    const entry = sessions.get(id) ?? { files: [], newest: 0 };
    entry.files.push(name);
    entry.newest = Math.max(entry.newest, mtime);
    sessions.set(id, entry);
  }
  const oldestFirst = [...sessions.values()].sort((a, b) => a.newest - b.newest);
  for (const { files } of oldestFirst.slice(0, Math.max(0, oldestFirst.length - keep))) {
    for (const name of files) {
      try {
        unlinkSync(join(dir, name));
      } catch {
        // gone already
      }
    }
  }
}
