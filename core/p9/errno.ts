// Linux errno numbers as the 9P2000.L Rlerror carries them (ecode[4], x86 Linux values), and
// P9Error, the one error a backend throws. The server turns a P9Error into Rlerror(errno) and
// anything else into Rlerror(EIO): the guest sees a Linux errno, never a host stack trace.

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EOVERFLOW: 75,
  EILSEQ: 84,
  EMSGSIZE: 90,
  ENOTSUP: 95,
  EDQUOT: 122,
} as const;

export type ErrnoName = keyof typeof Errno;

const NAMES = new Map<number, string>(Object.entries(Errno).map(([name, value]) => [value, name]));

/** "ENOENT" for 2; "errno 1234" for a number this table does not name. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `errno ${errno}`;
}

/** What a backend throws: a Linux errno for the guest, and a message for the host's logs. */
export class P9Error extends Error {
  readonly errno: number;

  constructor(errno: number, message: string) {
    super(`${errnoName(errno)}: ${message}`);
    this.name = "P9Error";
    this.errno = errno;
  }
}
