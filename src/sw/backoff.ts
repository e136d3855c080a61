/**
 * Exponential backoff with "equal jitter": after the k-th consecutive failure the next attempt
 * waits cap/2 + U[0, cap/2) with cap = min(maxMs, baseMs * 2^(k-1)). Half the wait is fixed so
 * a failing server gets real relief; the random half spreads the retries of many shoppers.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number): number {
  if (failures <= 0) return 0;
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - 1, 52));
  return cap / 2 + random() * (cap / 2);
}

/** Consecutive-failure bookkeeping for one endpoint + model. */
export class Backoff {
  private failures = 0;
  private retryAt = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Earliest time (ms) the network may be tried again; 0 when not backing off. */
  get nextAttemptAt(): number {
    return this.retryAt;
  }

  canTry(now: number): boolean {
    return now >= this.retryAt;
  }

  /** Records a failure at `now`; returns the time of the next allowed attempt. */
  fail(now: number): number {
    this.failures++;
    this.retryAt = now + backoffDelay(this.failures, this.policy, this.random);
    return this.retryAt;
  }

  succeed(): void {
    this.failures = 0;
    this.retryAt = 0;
  }
}
