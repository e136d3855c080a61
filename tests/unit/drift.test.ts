import { describe, expect, it } from 'vitest';
import { DriftDetector, DriftError, cosineDistance, l2Distance } from '../../src/core/drift.ts';
import type { DriftDecision, DriftOptions } from '../../src/core/drift.ts';
import { evaluateDrift, scoreDetections, untrainedDriftModel } from '../../tools/drift/drift-eval.ts';
import { generateCatalogue, generateDriftStream } from '../../src/data/synthetic.ts';

/** A unit vector at `deg` degrees in the plane: cosine distance to (1, 0) is 1 - cos(deg). */
const at = (deg: number): number[] => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
// 1 - cos: 0° -> 0, 30° -> 0.134, 60° -> 0.5, 70° -> 0.658, 90° -> 1
const BASE = at(0);

function detector(extra: Partial<DriftOptions> = {}, clock = { t: 0 }): DriftDetector {
  return new DriftDetector({
    high: 0.4,
    low: 0.2,
    confirmClicks: 1,
    minIntervalClicks: 3,
    minIntervalMs: 0,
    warmupClicks: 1,
    now: () => clock.t,
    ...extra,
  });
}

function applied(d: DriftDetector, z = BASE): DriftDetector {
  const first = d.observe(z);
  expect(first).toMatchObject({ request: true, reason: 'initial' });
  d.markApplied(z);
  return d;
}

const reasons = (ds: DriftDecision[]): string[] => ds.map((d) => (d.request ? `REQ:${d.reason}` : d.reason));

describe('distances', () => {
  it('cosine and L2', () => {
    expect(cosineDistance([1, 0], [0, 3])).toBeCloseTo(1, 12);
    expect(cosineDistance([1, 1], [2, 2])).toBeCloseTo(0, 12);
    expect(cosineDistance([1, 0], [-1, 0])).toBe(2);
    expect(cosineDistance(at(0), at(60))).toBeCloseTo(0.5, 12);
    expect(cosineDistance([0, 0], [0, 0])).toBe(0);
    expect(cosineDistance([0, 0], [1, 0])).toBe(1);
    expect(l2Distance([1, 0], [0, 1])).toBeCloseTo(Math.SQRT2, 12);
    expect(() => cosineDistance([1], [1, 2])).toThrow(DriftError);
  });
});

describe('DriftDetector', () => {
  it('initial request after warm-up, then nothing while pending', () => {
    const d = detector({ warmupClicks: 3 });
    expect(reasons([d.observe(BASE), d.observe(BASE), d.observe(BASE), d.observe(at(90))])).toEqual([
      'warmup',
      'warmup',
      'REQ:initial',
      'pending',
    ]);
    expect(d.snapshot()).toMatchObject({ pending: true, requests: 1, hasReference: false });
  });

  it('one drift -> exactly one request until markApplied', () => {
    const d = applied(detector({ minIntervalClicks: 0 }));
    const seq = [at(10), at(70), at(80), at(90), at(90), at(100)].map((z) => d.observe(z));
    expect(reasons(seq)).toEqual(['stable', 'REQ:drift', 'pending', 'pending', 'pending', 'pending']);
    expect(seq[1]!.distance).toBeCloseTo(1 - Math.cos((70 * Math.PI) / 180), 9);
    d.markApplied(at(90));
    // Distances are now relative to 90°: 100° is close, 180° is a new drift.
    expect(reasons([d.observe(at(100)), d.observe(at(180))])).toEqual(['stable', 'REQ:drift']);
    expect(d.snapshot().requests).toBe(3);
  });

  it('hysteresis: a latched drift survives until below low; hovering around high does not burst', () => {
    const d = applied(detector({ minIntervalClicks: 4 }));
    // Click 1 was the initial request. Latch at click 2 (too soon), hover in (low, high), fire at 5.
    const seq = [at(70), at(50), at(45), at(50)].map((z) => d.observe(z));
    expect(reasons(seq)).toEqual(['cooldown', 'cooldown', 'cooldown', 'REQ:drift']);
    d.markFailed();
    // After a failure the drift stays latched and is retried after the interval...
    expect(reasons([4, 5, 6, 7].map(() => d.observe(at(50))))).toEqual(['cooldown', 'cooldown', 'cooldown', 'REQ:drift']);
    d.markFailed();
    // ...unless the distance falls below low first: then it is forgotten.
    expect(reasons([d.observe(at(20)), d.observe(at(50)), d.observe(at(50)), d.observe(at(50)), d.observe(at(50))])).toEqual([
      'stable',
      'stable',
      'stable',
      'stable',
      'stable',
    ]);
  });

  it('a transient spike during cooldown that returns below low is dropped', () => {
    const d = applied(detector({ minIntervalClicks: 5 }));
    expect(reasons([at(80), at(10), at(10), at(10), at(10), at(10)].map((z) => d.observe(z)))).toEqual(
      Array(6).fill('stable').map((s, i) => (i === 0 ? 'cooldown' : s)),
    );
  });

  it('confirmClicks ignores a single off-theme click', () => {
    const d = applied(detector({ confirmClicks: 2, minIntervalClicks: 0 }));
    expect(reasons([at(80), at(5), at(80), at(85)].map((z) => d.observe(z)))).toEqual([
      'stable',
      'stable',
      'stable',
      'REQ:drift',
    ]);
  });

  it('minimum interval in ms uses the injected clock', () => {
    const clock = { t: 0 };
    const d = applied(detector({ minIntervalClicks: 0, minIntervalMs: 1000 }, clock), BASE);
    clock.t = 999;
    expect(d.observe(at(90)).reason).toBe('cooldown');
    clock.t = 1000;
    expect(d.observe(at(90))).toMatchObject({ request: true, reason: 'drift' });
  });

  it('a pending request that never resolves times out and the drift is retried', () => {
    const clock = { t: 0 };
    const d = applied(detector({ minIntervalClicks: 0, pendingTimeoutMs: 5000 }, clock));
    clock.t = 10;
    expect(d.observe(at(90)).request).toBe(true);
    clock.t = 4000;
    expect(d.observe(at(90)).reason).toBe('pending');
    clock.t = 5010;
    expect(d.observe(at(90))).toMatchObject({ request: true, reason: 'drift' });
  });

  it('validates options and inputs', () => {
    expect(() => new DriftDetector({ high: 0.2, low: 0.3 })).toThrow(/low/);
    expect(() => new DriftDetector({ confirmClicks: 0 })).toThrow(DriftError);
    const d = applied(detector());
    expect(() => d.observe([1, 0, 0])).toThrow(/3 values/);
    expect(() => d.observe([NaN, 0])).toThrow(/not finite/);
  });
});

describe('scoreDetections', () => {
  it('matches the first request in each window; others are false triggers', () => {
    // shifts at 50 and 100, tolerance 10: 53 detects 50, 55 is a second (false), 80 is outside,
    // 108 detects 100, 150 is false.
    const s = scoreDetections([20, 53, 55, 80, 108, 150], [50, 100], 200, 10);
    expect(s).toEqual({ shifts: 2, detected: 2, delays: [3, 8], falseTriggers: 4 });
    // A window ends at the next shift: 59 cannot detect 50 when the next shift is at 55.
    expect(scoreDetections([59], [50, 55], 100, 10)).toEqual({ shifts: 2, detected: 1, delays: [4], falseTriggers: 0 });
    expect(scoreDetections([], [10], 50, 5)).toEqual({ shifts: 1, detected: 0, delays: [], falseTriggers: 0 });
  });
});

describe('evaluateDrift (untrained stand-in GRU, synthetic drift streams)', () => {
  const catalogue = generateCatalogue({ seed: 3 });
  const streams = Array.from({ length: 8 }, (_, i) =>
    generateDriftStream({ seed: 100 + i, catalogue, length: 200, numShifts: 3 }),
  );
  const model = untrainedDriftModel({ catalogue });

  it('finds the shifts with few false triggers at the default thresholds', () => {
    const r = evaluateDrift({ profiler: model.profiler, itemIndex: model.itemIndex, streams, detector: {} });
    expect(r.streams).toBe(8);
    expect(r.clicks).toBe(1600);
    expect(r.shifts).toBe(24);
    expect(r.detectionRate).toBeGreaterThanOrEqual(0.9);
    expect(r.meanDelay).toBeGreaterThanOrEqual(2); // confirmClicks = 3 costs at least 2 clicks
    expect(r.meanDelay).toBeLessThan(6);
    expect(r.falseTriggersPer1000Clicks).toBeLessThan(10);
    expect(r.requests).toBe(8 + r.detected + r.falseTriggers);
    // Deterministic: rerunning gives the same numbers.
    expect(evaluateDrift({ profiler: model.profiler, itemIndex: model.itemIndex, streams, detector: {} })).toEqual(r);
  });

  it('is sensitive to the thresholds (a hair trigger fires on noise)', () => {
    const hair = evaluateDrift({
      profiler: model.profiler,
      itemIndex: model.itemIndex,
      streams,
      detector: { high: 0.1, low: 0.05, confirmClicks: 1 },
    });
    expect(hair.falseTriggersPer1000Clicks).toBeGreaterThan(50);
  });

  it('with no drift in the stream, only the initial request is made', () => {
    const calm = [generateDriftStream({ seed: 9, catalogue, length: 150, shifts: [], focus: 1 })];
    const r = evaluateDrift({ profiler: model.profiler, itemIndex: model.itemIndex, streams: calm, detector: {} });
    expect(r.shifts).toBe(0);
    expect(r.requests).toBeLessThanOrEqual(2);
  });
});
