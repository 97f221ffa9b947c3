// The guest's screen following the page's view (outside seamless mode): the size of the area
// the guest's screen has, observed and debounced (a window drag gives one request, not fifty),
// is asked of the guest ("agent:display"; its agent sets it with xrandr and v86 then draws the
// new size). A request the host could not pass on (no agent yet: the guest is booting) is
// tried again a while; the same size is never asked twice in a row.

export interface DisplayFollowOptions {
  /** Asks the guest for this size; whether its agent was asked. */
  request(width: number, height: number): Promise<boolean>;
  /** Pixels the screen's own frame takes around the guest's picture (its borders). */
  chrome?: number;
  debounceMs?: number;
  retryMs?: number;
  retries?: number;
}

/** Follows `area`'s size until the returned function is called. */
export function followDisplaySize(area: HTMLElement, options: DisplayFollowOptions): () => void {
  const chrome = options.chrome ?? 0;
  const debounceMs = options.debounceMs ?? 300;
  const retryMs = options.retryMs ?? 3000;
  const retries = options.retries ?? 60;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let asked = "";
  let tries = 0;
  let stopped = false;

  const ask = async (): Promise<void> => {
    timer = undefined;
    const width = Math.floor(area.clientWidth - chrome);
    const height = Math.floor(area.clientHeight - chrome);
    // A hidden tab's area has no size: nothing to follow until it shows.
    if (width <= 0 || height <= 0) return;
    const key = `${width}x${height}`;
    if (key === asked) return;
    const sent = await options.request(width, height).catch(() => false);
    if (stopped) return;
    if (sent) {
      asked = key;
      tries = 0;
    } else if (++tries < retries && timer === undefined) {
      timer = setTimeout(() => void ask(), retryMs);
    }
  };
  const later = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => void ask(), debounceMs);
  };
  const observer = new ResizeObserver(later);
  observer.observe(area);
  later();
  return () => {
    stopped = true;
    clearTimeout(timer);
    observer.disconnect();
  };
}
