// The mapped attribute store of a host-folder share (QEMU's security_model=mapped idea): the
// guest's owners, modes and device numbers, kept per file (by inode, checked against its birth
// time so a reused inode never inherits them), never applied to host files with chown. It is an
// append-only log at the share's root, one JSON record a line: a change costs one appended line,
// a torn last line after a crash is skipped, and the log is compacted (written aside, synced,
// renamed) once most of it is superseded. Other servers on the same folder append to it too: new
// lines are read before lookups, and a compaction by another server is noticed (nlink 0).

import { constants } from "node:fs";
import { randomUUID } from "node:crypto";
import * as fsp from "node:fs/promises";
import { Errno, P9Error } from "../../core/p9/errno.js";
import { DescriptorBudget, Held, HeldDir, O_PATH } from "./host-dir.js";

/** The store's file in the share root; this name and `<name>.*` are hidden from the guest. */
export const ATTRS_FILE = ".unmachine-attrs";
/** The log itself (ATTRS_FILE alone is the name an older per-folder store used). */
export const ATTRS_LOG = `${ATTRS_FILE}.log`;

/** What the store keeps for one file: the guest's view, where it differs from the host's. */
export interface MappedAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  rdev?: number;
}

/** A host file as the store knows it: its inode (with the device where it is not the share's)
 * and its birth time in nanoseconds ("0" where the file system keeps none). */
export interface FileId {
  readonly key: string;
  readonly birth: string;
}

interface Entry {
  readonly birth: string;
  readonly attr: MappedAttr;
}

const { O_RDONLY, O_RDWR, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;
const FIELDS = ["mode", "uid", "gid", "rdev"] as const;
const COMPACT_MIN_LINES = 1024;
const REFRESH_MS = 200;
const SYNC_DELAY_MS = 1000;
const MAX_LOG_BYTES = 256 * 1024 * 1024;

function parseAttr(raw: Record<string, unknown>): MappedAttr {
  const attr: MappedAttr = {};
  for (const field of FIELDS) {
    const value = raw[field];
    if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffffffff) attr[field] = value;
  }
  return attr;
}

function line(id: FileId, attr: MappedAttr | undefined): string {
  return `${JSON.stringify(attr === undefined ? { f: id.key, b: id.birth, gone: 1 } : { f: id.key, b: id.birth, ...attr })}\n`;
}

/** One store per folder in this process (by device and inode), shared by every server of it. */
const open = new Map<string, { store: AttrStore; users: number }>();

export class AttrStore {
  readonly #root: HeldDir;
  readonly #key: string;
  readonly #budget: DescriptorBudget;
  readonly #entries = new Map<string, Entry>();
  /** The log, open for appending and reading; absent until it exists. */
  #log: Held | undefined;
  /** Where the next unread line of the log starts (this server's own lines are read back too). */
  #readPos = 0;
  /** The log's size as last seen or grown by this server. */
  #size = 0;
  #lines = 0;
  #checked = 0;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(root: HeldDir, key: string, budget: DescriptorBudget) {
    this.#root = root;
    this.#key = key;
    this.#budget = budget;
  }

  /** The store of the folder `root` holds, shared with every other server of that folder in this
   * process; each `open` is matched by one `release`. */
  static async open(root: HeldDir, budget: DescriptorBudget): Promise<AttrStore> {
    const st = await root.held.handle.stat({ bigint: true });
    const key = `${st.dev}:${st.ino}`;
    const shared = open.get(key);
    if (shared) {
      shared.users++;
      return shared.store;
    }
    // Its own descriptor of the folder: the store outlives whichever server opened it first.
    const own = new HeldDir(await Held.open(budget, root.self, O_PATH | O_DIRECTORY));
    const store = new AttrStore(own, key, budget);
    try {
      await store.#reopen(false);
    } catch (error) {
      await own.close();
      throw error;
    }
    open.set(key, { store, users: 1 });
    return store;
  }

  /** One server is done with the store; the last one makes it durable and closes it. */
  async release(): Promise<void> {
    const shared = open.get(this.#key);
    if (shared && --shared.users > 0) return;
    open.delete(this.#key);
    await this.sync().catch(() => undefined);
    await this.#log?.close();
    this.#log = undefined;
    await this.#root.close();
  }

  /** Bytes the store takes on the host (its share of the quota). */
  get bytes(): number {
    return this.#size;
  }

  async get(id: FileId): Promise<MappedAttr | undefined> {
    await this.#refresh();
    const entry = this.#entries.get(id.key);
    return entry && entry.birth === id.birth ? entry.attr : undefined;
  }

  /** Sets (or with undefined, forgets) the guest's view of one file: one line appended. */
  set(id: FileId, attr: MappedAttr | undefined): Promise<void> {
    const run = this.#queue.then(() => this.#set(id, attr));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #set(id: FileId, attr: MappedAttr | undefined): Promise<void> {
    await this.#refresh();
    if (attr === undefined && !this.#entries.has(id.key)) return;
    if (!this.#log) await this.#reopen(true);
    if (!this.#log) throw new P9Error(Errno.EIO, `the share's attribute store ${ATTRS_LOG} is not a plain file: move it out of the shared folder`);
    const text = Buffer.from(line(id, attr));
    // Forgetting a file always fits; before refusing a change, superseded lines are dropped.
    if (attr !== undefined && this.#size + text.length > MAX_LOG_BYTES) {
      await this.#compact();
      if (this.#size + text.length > MAX_LOG_BYTES) throw new P9Error(Errno.ENOSPC, "the share's attribute store is full");
    }
    await this.#log!.handle.write(text, 0, text.length, null);
    this.#size += text.length;
    if (attr === undefined) this.#entries.delete(id.key);
    else this.#entries.set(id.key, { birth: id.birth, attr });
    if (this.#lines > COMPACT_MIN_LINES && this.#lines > 2 * this.#entries.size) await this.#compact();
    this.#scheduleSync();
  }

  /** Makes every change so far durable. */
  sync(): Promise<void> {
    const run = this.#queue.then(async () => {
      clearTimeout(this.#syncTimer);
      this.#syncTimer = undefined;
      await this.#log?.handle.datasync();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #scheduleSync(): void {
    if (this.#syncTimer) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined;
      void this.sync().catch(() => undefined);
    }, SYNC_DELAY_MS);
    this.#syncTimer.unref?.();
  }

  /** Opens the log (creating it if asked) and reads it whole. */
  async #reopen(create: boolean): Promise<void> {
    await this.#log?.close();
    this.#log = undefined;
    this.#entries.clear();
    this.#readPos = 0;
    this.#size = 0;
    this.#lines = 0;
    try {
      this.#log = await Held.open(this.#budget, this.#root.at(ATTRS_LOG), O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0), 0o600);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Missing, or not a plain file (a host-made symlink is never followed): nothing mapped.
      if (code === "ENOENT" || code === "ELOOP" || code === "ENXIO" || code === "EISDIR") return;
      throw error;
    }
    const st = await this.#log.handle.stat();
    if (!st.isFile()) {
      await this.#log.close();
      this.#log = undefined;
      return;
    }
    await this.#readFrom(0);
    // A torn last line (a crash mid-append) is ended, so the next record starts on a line of its own.
    if (this.#size > this.#readPos) {
      await this.#log.handle.write(Buffer.from("\n"), 0, 1, null);
      this.#size++;
      this.#readPos = this.#size;
    }
  }

  /** Reads the log from `offset` to its end, applying whole lines. */
  async #readFrom(offset: number): Promise<void> {
    const log = this.#log!;
    const size = (await log.handle.stat()).size;
    if (size > MAX_LOG_BYTES) throw new P9Error(Errno.EFBIG, "the share's attribute store is over 256 MiB");
    const buffer = Buffer.alloc(size - offset);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await log.handle.read(buffer, filled, buffer.length - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const end = buffer.subarray(0, filled).lastIndexOf(0x0a) + 1;
    for (const raw of buffer.subarray(0, end).toString("utf8").split("\n")) this.#apply(raw);
    this.#readPos = offset + end;
    this.#size = Math.max(this.#size, offset + filled);
  }

  #apply(raw: string): void {
    if (raw === "") return;
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch {
      return; // A torn or damaged line: the records around it still count.
    }
    if (typeof record !== "object" || record === null) return;
    const { f, b, gone } = record as Record<string, unknown>;
    if (typeof f !== "string" || typeof b !== "string") return;
    this.#lines++;
    if (gone) this.#entries.delete(f);
    else this.#entries.set(f, { birth: b, attr: parseAttr(record as Record<string, unknown>) });
  }

  /** Reads what other servers appended; reloads when another server compacted the log away. */
  async #refresh(now = false): Promise<void> {
    const at = Date.now();
    if (!now && at - this.#checked < REFRESH_MS) return;
    this.#checked = at;
    if (!this.#log) {
      await this.#reopen(false);
      return;
    }
    const st = await this.#log.handle.stat();
    if (st.nlink === 0) await this.#reopen(false);
    else if (st.size > this.#readPos) await this.#readFrom(this.#readPos);
  }

  /** The open log (a method, so a check after an await is not narrowed away). */
  #current(): Held | undefined {
    return this.#log;
  }

  /** Writes the live entries to a new log beside the old one, syncs it, and renames it over. */
  async #compact(): Promise<void> {
    // Everything other servers wrote so far is kept: the new log is written from it all.
    await this.#refresh(true);
    const temp = `${ATTRS_LOG}.${process.pid}.${randomUUID()}.tmp`;
    const text = [...this.#entries].map(([key, e]) => line({ key, birth: e.birth }, e.attr)).join("");
    const out = await Held.open(this.#budget, this.#root.at(temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      await out.handle.writeFile(text, "utf8");
      await out.handle.sync();
    } catch (error) {
      await out.close();
      await fsp.unlink(this.#root.at(temp)).catch(() => undefined);
      throw error;
    }
    await out.close();
    await fsp.rename(this.#root.at(temp), this.#root.at(ATTRS_LOG));
    const dir = await Held.open(this.#budget, this.#root.self, O_RDONLY | O_DIRECTORY);
    try {
      await dir.handle.sync();
    } finally {
      await dir.close();
    }
    // Lines another process appended to the old log while this one was written go on in the new.
    const old = this.#log;
    const from = this.#readPos;
    this.#log = undefined;
    await this.#reopen(false);
    if (old) {
      try {
        const size = (await old.handle.stat()).size;
        if (size > from) {
          const late = Buffer.alloc(size - from);
          const { bytesRead } = await old.handle.read(late, 0, late.length, from);
          const end = late.subarray(0, bytesRead).lastIndexOf(0x0a) + 1;
          const log = this.#current();
          if (end > 0 && log) await log.handle.write(late, 0, end, null);
        }
      } finally {
        await old.close();
      }
    }
  }
}
