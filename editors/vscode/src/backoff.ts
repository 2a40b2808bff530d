/**
 * When to restart a server that crashed: exponential backoff, capped, forgiven after a stable run.
 *
 * A server that crashes at start (bad model path, out of memory) would otherwise be restarted in a
 * tight loop, each time loading a model for seconds; one that crashes once after hours of work
 * should come back at once.
 */

export interface BackoffPolicy {
  /** Delay before the first restart. */
  initialMs: number;
  /** Longest delay between restarts. */
  maxMs: number;
  /** A server that ran this long before crashing counts as healthy: the delay starts over. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000, stableMs: 60_000 };

export class RestartBackoff {
  private failures = 0;
  private startedAtMs: number | undefined;

  constructor(private readonly policy: BackoffPolicy = DEFAULT_BACKOFF) {}

  /** Record that the server (re)started at `nowMs`. */
  started(nowMs: number): void {
    this.startedAtMs = nowMs;
  }

  /** Record a crash at `nowMs` and return how long to wait before restarting (ms). */
  crashed(nowMs: number): number {
    if (this.startedAtMs !== undefined && nowMs - this.startedAtMs >= this.policy.stableMs) {
      this.failures = 0;
    }
    this.startedAtMs = undefined;
    const delay = Math.min(this.policy.initialMs * 2 ** this.failures, this.policy.maxMs);
    this.failures += 1;
    return delay;
  }

  /** Forget past crashes, e.g. when the user restarts the server or changes its settings. */
  reset(): void {
    this.failures = 0;
    this.startedAtMs = undefined;
  }
}
