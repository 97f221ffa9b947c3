// Descriptor-relative access to a host folder for the 9P backend: every name is looked up in a
// folder the server holds open, never through a path string. A held folder's `/proc/self/fd/N/name`
// is openat(N, name) for one component (the kernel jumps straight to the folder N refers to), so
// a folder swapped for a symlink between two operations is never followed. Host descriptors the
// guests' file servers hold come out of one process-wide budget that leaves the host a reserve.

import { constants, readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { Errno, P9Error } from "../../core/p9/errno.js";

/** Linux's O_PATH (x86 and arm): a descriptor that only names a file; Node has no constant for it. */
export const O_PATH = 0o10000000;
const { O_DIRECTORY, O_NOFOLLOW } = constants;
const PROC_FD = "/proc/self/fd";

/** Host descriptors the file servers of every guest may hold at once. */
export class DescriptorBudget {
  readonly limit: number;
  #held = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get held(): number {
    return this.#held;
  }

  acquire(what: string): void {
    if (this.#held >= this.limit) {
      throw new P9Error(Errno.ENFILE, `${what}: the guests' shares hold ${this.#held} host file descriptors, their limit; the rest is kept for the host`);
    }
    this.#held++;
  }

  release(): void {
    if (this.#held > 0) this.#held--;
  }
}

/** The process's soft limit on open files (Node raises it to the hard limit at start). */
export function openFileLimit(limits = "/proc/self/limits"): number {
  try {
    const line = readFileSync(limits, "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.trim().split(/\s+/)[3]);
    if (Number.isSafeInteger(soft) && soft > 0) return soft;
  } catch {
    // Not Linux, or /proc hidden: assume the common default.
  }
  return 1024;
}

/** Guests get three quarters of the limit, the host keeps the rest (at least 256). */
export function guestDescriptorShare(limit: number): number {
  return Math.max(16, limit - Math.max(256, Math.floor(limit / 4)));
}

export const hostDescriptors = new DescriptorBudget(guestDescriptorShare(openFileLimit()));

/** A host descriptor taken from a budget, given back exactly once when closed. */
export class Held {
  readonly handle: FileHandle;
  readonly #budget: DescriptorBudget;
  #closed = false;

  private constructor(handle: FileHandle, budget: DescriptorBudget) {
    this.handle = handle;
    this.#budget = budget;
  }

  static async open(budget: DescriptorBudget, path: string, flags: number, mode?: number): Promise<Held> {
    budget.acquire("open");
    try {
      return new Held(await fsp.open(path, flags, mode), budget);
    } catch (error) {
      budget.release();
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#budget.release();
    await this.handle.close();
  }
}

/** A folder held open by descriptor (O_PATH): names inside it are resolved from it alone. */
export class HeldDir {
  readonly held: Held;

  constructor(held: Held) {
    this.held = held;
  }

  /** The path that is openat(this folder, name): `name` must be one checked component. */
  at(name: string): string {
    return `${PROC_FD}/${this.held.handle.fd}/${name}`;
  }

  /** The folder itself (follows the descriptor, never a path). */
  get self(): string {
    return `${PROC_FD}/${this.held.handle.fd}`;
  }

  /** The real folder `name` inside this one; a symlink or a file there is ENOTDIR. */
  async child(budget: DescriptorBudget, name: string): Promise<HeldDir> {
    return new HeldDir(await Held.open(budget, this.at(name), O_PATH | O_DIRECTORY | O_NOFOLLOW));
  }

  /**
   * The real folder at the absolute `path`, opened from "/" one name at a time without following
   * any symbolic link: a share's folder was recorded with its links resolved, so a link on the way
   * now means a folder was moved or replaced since (ENOTDIR, naming the part).
   */
  static async open(budget: DescriptorBudget, path: string): Promise<HeldDir> {
    let dir = new HeldDir(await Held.open(budget, "/", O_PATH | O_DIRECTORY | O_NOFOLLOW));
    for (const part of path.split("/").filter((p) => p !== "")) {
      let next: HeldDir;
      try {
        next = await dir.child(budget, part);
      } catch (error) {
        await dir.close();
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOTDIR" || code === "ELOOP") throw new P9Error(Errno.ENOTDIR, `${path}: "${part}" is not a folder (a symbolic link or a file); choose the folder again`);
        throw error;
      }
      await dir.close();
      dir = next;
    }
    return dir;
  }

  close(): Promise<void> {
    return this.held.close();
  }
}

/** Whether this host resolves `/proc/self/fd/N/name` (Linux with /proc mounted). */
export async function descriptorPathsWork(dir: HeldDir): Promise<boolean> {
  try {
    await fsp.stat(dir.self);
    return true;
  } catch {
    return false;
  }
}
