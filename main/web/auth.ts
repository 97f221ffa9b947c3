// Who may use the web shell (main/web/server.ts): the holder of the full token, which is
// printed for the user only; a browser this process launched, with a one-time code (single
// use, expiring within CODE_TTL_MS) so no lasting key ever sits in a command line; and the
// page, by the HttpOnly, SameSite=Strict session cookie that either one is exchanged for.
// Codes and sessions are kept as SHA-256 digests and looked up by digest (no timing to learn).

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** How long a one-time code can be exchanged, in ms. */
export const CODE_TTL_MS = 60_000;
/** At most this many codes wait at once, and this many sessions live (the oldest go first). */
const MAX_CODES = 16;
const MAX_SESSIONS = 256;

const digest = (secret: string): string => createHash("sha256").update(secret).digest("hex");

export class WebAuth {
  readonly token = randomBytes(24).toString("hex");
  /** A name of this server's own: browsers do not tell cookies apart by port, and two shells
   *  on 127.0.0.1 must not replace each other's. */
  readonly cookieName = `unmachine-${randomBytes(6).toString("hex")}`;
  readonly #now: () => number;
  readonly #tokenBytes = Buffer.from(this.token);
  /** Digest of each unspent code, to the time it expires. */
  readonly #codes = new Map<string, number>();
  readonly #sessions = new Set<string>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  tokenOk(candidate: string | null): boolean {
    if (candidate === null) return false;
    const bytes = Buffer.from(candidate);
    return bytes.length === this.#tokenBytes.length && timingSafeEqual(bytes, this.#tokenBytes);
  }

  /** A new one-time code, good for one exchange within CODE_TTL_MS. */
  issueCode(): string {
    const now = this.#now();
    for (const [key, expires] of this.#codes) if (expires <= now) this.#codes.delete(key);
    while (this.#codes.size >= MAX_CODES) this.#codes.delete(this.#codes.keys().next().value!);
    const code = randomBytes(24).toString("base64url");
    this.#codes.set(digest(code), now + CODE_TTL_MS);
    return code;
  }

  /**
   * Spends the `code` or checks the `token` of an address; the Set-Cookie header value of a
   * new session when one of them is good, undefined otherwise. A code works once, even when late.
   */
  exchange(params: URLSearchParams): string | undefined {
    const code = params.get("code");
    let good = false;
    if (code !== null) {
      const key = digest(code);
      const expires = this.#codes.get(key);
      this.#codes.delete(key);
      good = expires !== undefined && this.#now() < expires;
    } else {
      good = this.tokenOk(params.get("token"));
    }
    if (!good) return undefined;
    const session = randomBytes(32).toString("base64url");
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.values().next().value!);
    this.#sessions.add(digest(session));
    return `${this.cookieName}=${session}; HttpOnly; SameSite=Strict; Path=/`;
  }

  /** Whether a request's Cookie header carries a live session of this server. */
  hasSession(cookieHeader: string | undefined): boolean {
    if (!cookieHeader) return false;
    for (const pair of cookieHeader.split(";")) {
      const at = pair.indexOf("=");
      if (at < 0 || pair.slice(0, at).trim() !== this.cookieName) continue;
      if (this.#sessions.has(digest(pair.slice(at + 1).trim()))) return true;
    }
    return false;
  }
}
