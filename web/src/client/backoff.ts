/**
 * Exponential backoff with full jitter: the n-th wait is uniform in [0, min(cap, base * 2^n)].
 * Full jitter spreads a crowd of clients that lost the same node over the whole window instead of
 * making them retry in lock-step.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Injected for tests; must return a number in [0, 1). */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    this.random = options.random ?? Math.random;
  }

  /** The ceiling of the next wait, before jitter. */
  ceiling(): number {
    // 2 ** attempt overflows to Infinity eventually, which Math.min turns into the cap.
    return Math.min(this.options.capMs, this.options.baseMs * 2 ** this.attempt);
  }

  /** The next wait in ms; each call widens the window until the cap. */
  next(): number {
    const delay = Math.floor(this.random() * this.ceiling());
    this.attempt += 1;
    return delay;
  }

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Normal failures: quick first retries, at most ~30 s apart. */
export const NETWORK_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 30_000 };
/** Refused tokens: retrying fast only multiplies load, so start at seconds and cap at 5 min. */
export const AUTH_BACKOFF: BackoffOptions = { baseMs: 5_000, capMs: 300_000 };
/** Hidden tabs wait at least this long between attempts. */
export const HIDDEN_MIN_DELAY_MS = 10_000;
