// A 9P session as saved with a suspended guest (P9Server.saveState, restored by
// P9Server.restore): the negotiated msize and, per fid, the names from the backend's root, the
// store they led into (P9Backend.scope) and how the fid was open. It travels in a state file, so
// parseSessionState treats it as untrusted: every field checked, counts and lengths capped.

export const SESSION_STATE_FORMAT = 1;
/** Linux's PATH_MAX (4096) holds at most 2048 one-byte names and their slashes. */
const MAX_PATH_NAMES = 2048;
const NAME_MAX_BYTES = 255;
const MAX_SCOPE_CHARS = 8192;
const NOFID = 0xffff_ffff;
const U32 = 0xffff_ffff;

export interface SavedFid {
  readonly fid: number;
  /** The Tattach user it descends from. */
  readonly uid: number;
  /** Names from the backend's root; null once its file was removed (it can never be found again). */
  readonly path: readonly string[] | null;
  /** How many of those names the Tattach's aname took (the client's root); 0 if absent. */
  readonly base?: number;
  /** The store the path led into when saved (P9Backend.scope); null if the backend named none. */
  readonly scope: string | null;
  /** The guest's Tlopen/Tlcreate flags if the fid was open. */
  readonly open?: number;
}

export interface SessionState {
  readonly format: typeof SESSION_STATE_FORMAT;
  readonly msize: number;
  readonly fids: readonly SavedFid[];
}

/** A saved session that cannot be taken back: says which field is wrong. */
export class SessionStateError extends Error {
  constructor(why: string) {
    super(`the saved 9P session cannot be used: ${why}`);
    this.name = "SessionStateError";
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function u32(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > U32) throw new SessionStateError(`${what} is not a 32-bit unsigned integer`);
  return value;
}

const utf8 = new TextEncoder();

/** One plain name, as the server's own checks would accept it for a walk. */
function name(value: unknown, what: string): string {
  if (typeof value !== "string") throw new SessionStateError(`${what} is not a string`);
  if (value === "" || value === "." || value === ".." || value.includes("/") || value.includes("\0")) {
    throw new SessionStateError(`${what} ${JSON.stringify(value.slice(0, 64))} is not one plain name`);
  }
  if (utf8.encode(value).length > NAME_MAX_BYTES) throw new SessionStateError(`${what} is over ${NAME_MAX_BYTES} bytes`);
  return value;
}

function savedFid(value: unknown, at: number): SavedFid {
  const what = `fid entry ${at}`;
  if (!isRecord(value)) throw new SessionStateError(`${what} is not an object`);
  const fid = u32(value.fid, `${what}: fid`);
  if (fid === NOFID) throw new SessionStateError(`${what}: fid is NOFID`);
  const uid = u32(value.uid, `${what}: uid`);
  let path: string[] | null = null;
  if (value.path !== null) {
    if (!Array.isArray(value.path)) throw new SessionStateError(`${what}: path is not a list of names`);
    if (value.path.length > MAX_PATH_NAMES) throw new SessionStateError(`${what}: path has over ${MAX_PATH_NAMES} names`);
    path = value.path.map((n: unknown, i) => name(n, `${what}: name ${i}`));
  }
  let scope: string | null = null;
  if (value.scope !== null) {
    if (typeof value.scope !== "string" || value.scope.length > MAX_SCOPE_CHARS) throw new SessionStateError(`${what}: scope is not a string of at most ${MAX_SCOPE_CHARS} characters`);
    scope = value.scope;
  }
  const base = value.base === undefined ? 0 : u32(value.base, `${what}: base`);
  if (base > (path?.length ?? 0)) throw new SessionStateError(`${what}: base ${base} is past its path`);
  if (value.open === undefined) return { fid, uid, path, base, scope };
  return { fid, uid, path, base, scope, open: u32(value.open, `${what}: open flags`) };
}

/**
 * Checks a saved session against the limits of the server taking it back: at most `maxFids`
 * fids (each once), `maxOpenFiles` open, an msize it could have granted.
 */
export function parseSessionState(value: unknown, limits: { maxFids: number; maxOpenFiles: number; minMsize: number; maxMsize: number }): SessionState {
  if (!isRecord(value)) throw new SessionStateError("it is not an object");
  if (value.format !== SESSION_STATE_FORMAT) throw new SessionStateError(`format ${JSON.stringify(value.format)} is not ${SESSION_STATE_FORMAT}`);
  const msize = u32(value.msize, "msize");
  if (msize !== 0 && (msize < limits.minMsize || msize > limits.maxMsize)) {
    throw new SessionStateError(`msize ${msize} is outside ${limits.minMsize}..${limits.maxMsize}`);
  }
  if (!Array.isArray(value.fids)) throw new SessionStateError("fids is not a list");
  if (value.fids.length > limits.maxFids) throw new SessionStateError(`it holds ${value.fids.length} fids, over the ${limits.maxFids} a session may`);
  if (msize === 0 && value.fids.length > 0) throw new SessionStateError("it holds fids but no version was agreed");
  const fids = value.fids.map((f: unknown, i) => savedFid(f, i));
  const seen = new Set<number>();
  let open = 0;
  for (const f of fids) {
    if (seen.has(f.fid)) throw new SessionStateError(`fid ${f.fid} is listed twice`);
    seen.add(f.fid);
    if (f.open !== undefined) open++;
  }
  if (open > limits.maxOpenFiles) throw new SessionStateError(`it holds ${open} open files, over the ${limits.maxOpenFiles} a session may`);
  return { format: SESSION_STATE_FORMAT, msize, fids };
}
