// Whether a URL is the app's own page (unmachine://app/...). Node's URL gives custom schemes
// the origin "null", so the scheme and host are compared instead of the origin.

export const SCHEME = "unmachine";
export const APP_ORIGIN = `${SCHEME}://app`;

export function isAppUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === `${SCHEME}:` && u.host === "app";
  } catch {
    return false;
  }
}
