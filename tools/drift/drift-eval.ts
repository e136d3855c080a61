/**
 * Offline evaluation of the drift loop (GRU profiler + DriftDetector) on click streams with
 * known interest shifts, e.g. src/data/synthetic.ts's generateDriftStream. Pure and
 * deterministic, so the lead can rerun it with trained weights:
 *
 *   const profiler = GruProfiler.fromTensors(gruTensors, backboneTensors);
 *   evaluateDrift({ profiler, itemIndex, streams, detector: { high, low } });
 *
 * `untrainedDriftModel` builds the stand-in used until a trained GRU exists: a GRU with
 * PyTorch's default (untrained) init and item embeddings clustered by category. It is for tests
 * and for sizing the thresholds only; numbers obtained with it say nothing about a trained model.
 */
import { fillNormal, fillUniform, streamId } from '../../src/core/prng.ts';
import { DriftDetector } from '../../src/core/drift.ts';
import type { DriftOptions } from '../../src/core/drift.ts';
import { GruProfiler } from '../../src/core/gru.ts';
import type { GruProfilerOptions, GruWeights, ItemEmbeddings } from '../../src/core/gru.ts';
import type { Catalogue } from '../../src/data/synthetic.ts';

/** The part of a click stream the evaluation reads (a DriftStream fits). */
export interface LabelledStream {
  readonly clicks: readonly { readonly item: string }[];
  /** Click index where each new interest segment starts, increasing. */
  readonly shifts: readonly number[];
}

/** What the evaluation drives: a GruProfiler fits. */
export interface ClickProfiler {
  reset(): void;
  click(item: number): Float32Array;
}

export interface DriftEvalOptions {
  readonly profiler: ClickProfiler;
  /** Maps a click's item id to its embedding row (1..numItems). */
  readonly itemIndex: (itemId: string) => number;
  readonly streams: readonly LabelledStream[];
  readonly detector: Omit<DriftOptions, 'now'>;
  /** A request counts as detecting shift s if it is in [s, min(s + tolerance, next shift)) (default 15). */
  readonly toleranceClicks?: number;
  /** Clicks between a request and markApplied, i.e. the strategy round-trip (default 1). */
  readonly applyLatencyClicks?: number;
  /** Milliseconds between clicks on the simulated clock (default 1000). */
  readonly msPerClick?: number;
}

export interface StreamScore {
  readonly shifts: number;
  readonly detected: number;
  /** Per detected shift, request click index minus shift index. */
  readonly delays: number[];
  /** 'drift' requests that detect no shift (outside every tolerance window, or a second one in it). */
  readonly falseTriggers: number;
}

export interface DriftEvalResult extends Omit<StreamScore, 'delays'> {
  readonly streams: number;
  readonly clicks: number;
  /** All requests, including the one initial request per stream. */
  readonly requests: number;
  readonly detectionRate: number;
  /** Mean delay in clicks over detected shifts (NaN if none). */
  readonly meanDelay: number;
  readonly falseTriggersPer1000Clicks: number;
  readonly delays: number[];
}

/**
 * Scores the click indices of 'drift' requests against ground-truth shifts. Each shift is
 * matched to the first request in its window; every other request is a false trigger.
 */
export function scoreDetections(
  requestsAt: readonly number[],
  shifts: readonly number[],
  length: number,
  toleranceClicks: number,
): StreamScore {
  const matched = new Set<number>();
  const delays: number[] = [];
  shifts.forEach((s, i) => {
    const end = Math.min(s + toleranceClicks, shifts[i + 1] ?? length, length);
    const hit = requestsAt.findIndex((t, k) => !matched.has(k) && t >= s && t < end);
    if (hit >= 0) {
      matched.add(hit);
      delays.push(requestsAt[hit]! - s);
    }
  });
  return { shifts: shifts.length, detected: delays.length, delays, falseTriggers: requestsAt.length - matched.size };
}

/** Runs profiler + detector over every stream (each from a fresh state) and aggregates the scores. */
export function evaluateDrift(options: DriftEvalOptions): DriftEvalResult {
  const tolerance = options.toleranceClicks ?? 15;
  const latency = options.applyLatencyClicks ?? 1;
  const msPerClick = options.msPerClick ?? 1000;
  let shifts = 0;
  let detected = 0;
  let falseTriggers = 0;
  let clicks = 0;
  let requests = 0;
  const delays: number[] = [];
  for (const stream of options.streams) {
    let clock = 0;
    const detector = new DriftDetector({ ...options.detector, now: () => clock });
    options.profiler.reset();
    const driftAt: number[] = [];
    let inFlight: { z: Float32Array; applyAt: number } | null = null;
    stream.clicks.forEach((c, t) => {
      clock = t * msPerClick;
      const z = options.profiler.click(options.itemIndex(c.item));
      if (inFlight && t >= inFlight.applyAt) {
        detector.markApplied(inFlight.z);
        inFlight = null;
      }
      const decision = detector.observe(z);
      if (!decision.request) return;
      requests++;
      if (decision.reason === 'drift') driftAt.push(t);
      inFlight = { z, applyAt: t + latency };
    });
    const score = scoreDetections(driftAt, stream.shifts, stream.clicks.length, tolerance);
    shifts += score.shifts;
    detected += score.detected;
    falseTriggers += score.falseTriggers;
    delays.push(...score.delays);
    clicks += stream.clicks.length;
  }
  return {
    streams: options.streams.length,
    clicks,
    requests,
    shifts,
    detected,
    falseTriggers,
    detectionRate: shifts === 0 ? NaN : detected / shifts,
    meanDelay: delays.length === 0 ? NaN : delays.reduce((a, b) => a + b, 0) / delays.length,
    falseTriggersPer1000Clicks: clicks === 0 ? NaN : (1000 * falseTriggers) / clicks,
    delays,
  };
}

export interface UntrainedDriftModelOptions {
  readonly catalogue: Catalogue;
  readonly seed?: number;
  readonly inputDim?: number;
  readonly hiddenDim?: number;
  /** Spread of an item's embedding around its category centre, relative to the centre's (default 0.5). */
  readonly itemNoise?: number;
  readonly profiler?: GruProfilerOptions;
}

export interface UntrainedDriftModel {
  readonly weights: GruWeights;
  readonly embeddings: ItemEmbeddings;
  readonly profiler: GruProfiler;
  readonly itemIndex: (itemId: string) => number;
}

/**
 * TEST-ONLY stand-in for a trained GRU + item embeddings. The GRU gets PyTorch's default init,
 * U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias; each item embedding is its category's
 * random centre plus noise, mimicking the category clustering that trained embeddings show.
 */
export function untrainedDriftModel(options: UntrainedDriftModelOptions): UntrainedDriftModel {
  const seed = options.seed ?? 7;
  const D = options.inputDim ?? 64;
  const H = options.hiddenDim ?? 32;
  const noise = options.itemNoise ?? 0.5;
  const bound = 1 / Math.sqrt(H);
  const uniform = (name: string, n: number): Float32Array =>
    fillUniform(new Float32Array(n), seed, streamId(`drift-eval.${name}`), -bound, bound);
  const weights: GruWeights = {
    inputDim: D,
    hiddenDim: H,
    weightIh: uniform('weight_ih', 3 * H * D),
    weightHh: uniform('weight_hh', 3 * H * H),
    biasIh: uniform('bias_ih', 3 * H),
    biasHh: uniform('bias_hh', 3 * H),
  };
  const { items, categories } = options.catalogue;
  const centres = fillNormal(new Float32Array(categories.length * D), seed, streamId('drift-eval.centres'), 0, 1);
  const jitter = fillNormal(new Float32Array(items.length * D), seed, streamId('drift-eval.items'), 0, noise);
  const data = new Float32Array((items.length + 1) * D); // row 0: padding, zeros
  const index = new Map<string, number>();
  items.forEach((item, i) => {
    index.set(item.id, i + 1);
    for (let k = 0; k < D; k++) data[(i + 1) * D + k] = centres[item.category * D + k]! + jitter[i * D + k]!;
  });
  const embeddings: ItemEmbeddings = { numItems: items.length, dim: D, data };
  const itemIndex = (id: string): number => {
    const i = index.get(id);
    if (i === undefined) throw new RangeError(`item ${id} is not in the catalogue`);
    return i;
  };
  return { weights, embeddings, profiler: new GruProfiler(weights, embeddings, options.profiler), itemIndex };
}
