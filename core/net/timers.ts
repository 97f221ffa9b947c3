// Time for the protocol code, injected: core has no setTimeout of its own. The host passes
// Node's timers; tests pass a manual clock so retransmission and idle timeouts are exact.

export interface TimerHandle {
  cancel(): void;
}

export interface Timers {
  /** Milliseconds, monotonic. */
  now(): number;
  set(callback: () => void, ms: number): TimerHandle;
}
