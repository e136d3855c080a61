/**
 * Decides when the shopper's interest has moved far enough from the z the current strategy was
 * computed for that a new strategy is worth a request.
 *
 * Distance: cosine distance 1 - cos(z, z_ref), in [0, 2]. Why cosine rather than L2: the GRU
 * state's norm mostly tracks how saturated the gates are (it grows over the first clicks and
 * with repeated clicks on one theme), while its direction tracks *which* theme; an L2 threshold
 * would fire on warm-up and confidence changes and would need re-tuning for every H and every
 * training run, whereas cosine thresholds are scale-free and transfer between models. L2 is
 * available (`metric: 'l2'`) for comparison in the drift evaluation.
 *
 * State machine (one call of `observe` per click; everything deterministic, clock injected):
 * - No strategy yet: after `warmupClicks` observations, one 'initial' request.
 * - Hysteresis: a distance above `high` for `confirmClicks` consecutive clicks latches a drift;
 *   the latch is released only when the distance falls below `low` (a transient excursion that
 *   returns is forgotten) or when the request is sent. A latched drift is sent as soon as the
 *   minimum interval since the previous request has passed (in clicks and in ms, both must
 *   hold), so a drift seen during the cooldown is not lost, and a distance hovering around
 *   `high` cannot cause a burst of requests.
 * - Pending: from a request until `markApplied(z)` (new reference z) or `markFailed()` nothing
 *   else is requested: one drift, exactly one request. A pending request older than
 *   `pendingTimeoutMs` counts as failed, so a lost reply cannot silence the detector forever.
 */
import { ChordError } from './errors.ts';

export type DriftMetric = 'cosine' | 'l2';

export interface DriftOptions {
  /** Latch a drift when the distance exceeds this (default 0.5). */
  readonly high?: number;
  /** Release a latched drift when the distance falls below this, low <= high (default 0.3). */
  readonly low?: number;
  /**
   * Consecutive observations above `high` needed to latch (default 1). 2 or 3 ignores a single
   * off-theme click, at the cost of as many clicks of delay.
   */
  readonly confirmClicks?: number;
  /** Clicks that must pass between two requests (default 5). */
  readonly minIntervalClicks?: number;
  /** Milliseconds that must pass between two requests (default 0). */
  readonly minIntervalMs?: number;
  /** Observations before the first ('initial') request when no strategy is applied (default 1). */
  readonly warmupClicks?: number;
  /** A request with no markApplied/markFailed after this long is treated as failed (default 30 s). */
  readonly pendingTimeoutMs?: number;
  readonly metric?: DriftMetric;
  /** Milliseconds clock (default Date.now); inject for tests and simulations. */
  readonly now?: () => number;
}

/**
 * Defaults sized with tools/drift/drift-eval.ts on synthetic drift streams with an UNTRAINED GRU
 * (PyTorch default init, category-clustered embeddings): 100% of shifts found, ~3 clicks delay,
 * ~4 false triggers per 1000 clicks. Re-tune them with the trained GRU.
 */
export const DEFAULT_DRIFT_OPTIONS = {
  high: 0.5,
  low: 0.3,
  confirmClicks: 3,
  minIntervalClicks: 5,
  minIntervalMs: 0,
  warmupClicks: 1,
  pendingTimeoutMs: 30_000,
  metric: 'cosine',
} as const satisfies DriftOptions;

export type DriftReason =
  /** No strategy applied and still warming up. */
  | 'warmup'
  /** No strategy applied yet: request the first one. */
  | 'initial'
  /** Distance above the latch: request. */
  | 'drift'
  /** A request is in flight. */
  | 'pending'
  /** Drift latched, waiting for the minimum interval. */
  | 'cooldown'
  /** Nothing to do. */
  | 'stable';

export interface DriftDecision {
  /** True exactly when the caller should request a strategy for this z now. */
  readonly request: boolean;
  readonly reason: DriftReason;
  /** Distance to the reference z; NaN while there is none. */
  readonly distance: number;
}

export class DriftError extends ChordError<'DriftError'> {
  override readonly name = 'DriftError';
  constructor(message: string) {
    super('DRIFT_BAD_INPUT', message);
  }
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/**
 * 1 - cos(a, b). A zero vector has no direction: two zero vectors are at distance 0, a zero and
 * a non-zero vector at distance 1 (as if orthogonal).
 */
export function cosineDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new DriftError(`vectors of length ${a.length} and ${b.length}`);
  const na = norm(a);
  const nb = norm(b);
  if (na === 0 || nb === 0) return na === nb ? 0 : 1;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return Math.min(2, Math.max(0, 1 - dot / (na * nb)));
}

export function l2Distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new DriftError(`vectors of length ${a.length} and ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}

export function zDistance(metric: DriftMetric, a: ArrayLike<number>, b: ArrayLike<number>): number {
  return metric === 'cosine' ? cosineDistance(a, b) : l2Distance(a, b);
}

function checkNonNegative(name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) throw new DriftError(`${name} must be a finite number >= 0, got ${v}`);
}

export interface DriftSnapshot {
  readonly hasReference: boolean;
  readonly pending: boolean;
  readonly latched: boolean;
  readonly clicks: number;
  readonly requests: number;
}

export class DriftDetector {
  private readonly high: number;
  private readonly low: number;
  private readonly confirmClicks: number;
  private readonly minIntervalClicks: number;
  private readonly minIntervalMs: number;
  private readonly warmupClicks: number;
  private readonly pendingTimeoutMs: number;
  private readonly metric: DriftMetric;
  private readonly now: () => number;

  private reference: Float32Array | null = null;
  private pending = false;
  private pendingSince = 0;
  private latched = false;
  /** Consecutive observations above `high`. */
  private above = 0;
  private clicks = 0;
  private requests = 0;
  private lastRequestClick = -Infinity;
  private lastRequestMs = -Infinity;

  constructor(options: DriftOptions = {}) {
    const o = { ...DEFAULT_DRIFT_OPTIONS, ...options };
    checkNonNegative('high', o.high);
    checkNonNegative('low', o.low);
    if (o.low > o.high) throw new DriftError(`low (${o.low}) must not exceed high (${o.high})`);
    if (!Number.isInteger(o.confirmClicks) || o.confirmClicks < 1) {
      throw new DriftError(`confirmClicks must be an integer >= 1, got ${o.confirmClicks}`);
    }
    checkNonNegative('minIntervalClicks', o.minIntervalClicks);
    checkNonNegative('minIntervalMs', o.minIntervalMs);
    checkNonNegative('warmupClicks', o.warmupClicks);
    checkNonNegative('pendingTimeoutMs', o.pendingTimeoutMs);
    if (o.metric !== 'cosine' && o.metric !== 'l2') throw new DriftError(`unknown metric ${String(o.metric)}`);
    this.high = o.high;
    this.low = o.low;
    this.confirmClicks = o.confirmClicks;
    this.minIntervalClicks = o.minIntervalClicks;
    this.minIntervalMs = o.minIntervalMs;
    this.warmupClicks = o.warmupClicks;
    this.pendingTimeoutMs = o.pendingTimeoutMs;
    this.metric = o.metric;
    this.now = options.now ?? Date.now;
  }

  snapshot(): DriftSnapshot {
    return {
      hasReference: this.reference !== null,
      pending: this.pending,
      latched: this.latched,
      clicks: this.clicks,
      requests: this.requests,
    };
  }

  /** Distance of z to the reference z (NaN when no strategy is applied yet). */
  distanceTo(z: ArrayLike<number>): number {
    return this.reference ? zDistance(this.metric, z, this.reference) : NaN;
  }

  /** Call once per click with the new z. */
  observe(z: ArrayLike<number>): DriftDecision {
    for (let i = 0; i < z.length; i++) {
      if (!Number.isFinite(z[i]!)) throw new DriftError(`z[${i}] is not finite`);
    }
    if (this.reference && z.length !== this.reference.length) {
      throw new DriftError(`z has ${z.length} values, the reference has ${this.reference.length}`);
    }
    this.clicks++;
    const t = this.now();
    if (this.pending && t - this.pendingSince >= this.pendingTimeoutMs) this.markFailed();
    const distance = this.distanceTo(z);

    if (!this.reference) {
      if (this.pending) return { request: false, reason: 'pending', distance };
      if (this.clicks < this.warmupClicks) return { request: false, reason: 'warmup', distance };
      if (!this.intervalElapsed(t)) return { request: false, reason: 'cooldown', distance };
      this.startRequest(t);
      return { request: true, reason: 'initial', distance };
    }

    this.above = distance > this.high ? this.above + 1 : 0;
    if (this.above >= this.confirmClicks) this.latched = true;
    else if (distance < this.low) this.latched = false;
    if (this.pending) return { request: false, reason: 'pending', distance };
    if (!this.latched) return { request: false, reason: 'stable', distance };
    if (!this.intervalElapsed(t)) return { request: false, reason: 'cooldown', distance };
    this.latched = false;
    this.startRequest(t);
    return { request: true, reason: 'drift', distance };
  }

  /** The strategy computed for `z` is now in use: z becomes the reference. */
  markApplied(z: ArrayLike<number>): void {
    if (this.reference && z.length !== this.reference.length) {
      throw new DriftError(`z has ${z.length} values, the reference has ${this.reference.length}`);
    }
    this.reference = Float32Array.from(z);
    this.pending = false;
    this.latched = false;
    this.above = 0;
  }

  /**
   * The request failed (the caller keeps its old strategy). The drift stays latched, so it is
   * requested again once the minimum interval has passed, unless the distance drops below `low`.
   */
  markFailed(): void {
    if (!this.pending) return;
    this.pending = false;
    if (this.reference) this.latched = true;
  }

  private intervalElapsed(t: number): boolean {
    return this.clicks - this.lastRequestClick >= this.minIntervalClicks && t - this.lastRequestMs >= this.minIntervalMs;
  }

  private startRequest(t: number): void {
    this.pending = true;
    this.pendingSince = t;
    this.requests++;
    this.lastRequestClick = this.clicks;
    this.lastRequestMs = t;
  }
}
