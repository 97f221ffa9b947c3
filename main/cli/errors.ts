// The CLI's error for bad input: reported as one line with exit status 2.

export class UsageError extends Error {
  override name = "UsageError";
}
