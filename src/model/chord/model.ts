/**
 * A CHORD-family model on a frozen backbone: the backbone's trained parameters (embeddings,
 * norms, biases), the profiler GRU, the hypernets, and per-layer stacks of the frozen weights
 * fake-quantized at each level width. Methods (one code path):
 *   quant     every channel at `uniformBits` (shared weights, no GRU/hypernet in the loss)
 *   custom    H_F only (α_E ≡ 1, no Λ)
 *   weighted  H_F + H_E (no Λ)
 *   chord     H_F + H_E + H_L (Γ then Λ)
 * The backbone's own functional forward (src/model/sasrec.ts, caser.ts) runs with CHORD's
 * quantized layers as its layer hook (src/model/layers.ts), so CHORD and Base share every line of
 * model arithmetic.
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerSpec } from '../../core/backbones.ts';
import type { HypernetLayer } from '../../core/hypernet.ts';
import type { ChordMethod } from '../../core/methods.ts';
import type { LevelTable } from '../../core/strategy.ts';
import type { BatchTensors, ForwardCtx } from '../backbone.ts';
import type { createCaser } from '../caser.ts';
import { weightLayers, type LayerFn } from '../layers.ts';
import { createParams, need, type ParamMap } from '../params.ts';
import type { createSasrec } from '../sasrec.ts';
import { Rng } from '../../core/rng.ts';
import { ChordTrainError } from './errors.ts';
import { createGruParams, gruBatchForward } from './gru.ts';
import { createHypernetParams, hypernetForward, type HypernetShape } from './hypernet.ts';
import { allocateBatch, softLevels, type AllocationSettings, type BatchAllocation } from './levels.ts';
import { disposeLevelStack, levelStack, quantLinear, type LevelStack } from './weights.ts';

/** A backbone built by createSasrec / createCaser (their configs drive the forwards). */
export type ChordBackbone = ReturnType<typeof createSasrec> | ReturnType<typeof createCaser>;


export interface ChordOptions {
  readonly method: ChordMethod;
  readonly levelTable: LevelTable;
  readonly beta: number;
  /** Λ layer counts (chord only). */
  readonly lambda: { readonly up: number; readonly down: number };
  /** τ0 of the soft relaxation (levels.ts). */
  readonly temperature: number;
  /** Bits of every channel for 'quant'. */
  readonly uniformBits: number;
  /** z length = GRU hidden size = manifest userDim. */
  readonly zDim: number;
  readonly hyperHidden: number;
  readonly rank: number;
  /** N: clicks the GRU sees. */
  readonly gruWindow: number;
  /** SASRec: how many of a training window's last targets its z conditions (data.ts chordExamples). */
  readonly zTargets: number;
  /**
   * Weight of the strategy-contrast term (0 = off): each example's loss under its own strategy is
   * pushed below its loss under another example's strategy (the batch rolled by one) by at least
   * `contrastMargin` nats, as a hinge on the batch means. Costs a second forward and backward.
   */
  readonly contrast: number;
  readonly contrastMargin: number;
  /** Activation fake-quantization bits at matmul inputs (w3a3: 3); undefined = off. */
  readonly activationBits?: number;
  /** Standardize z before the hypernet trunk (hypernet.ts); false = off. */
  readonly zNorm?: boolean;
  readonly seed: number;
}

export const CHORD_DEFAULTS = {
  levelTable: [2, 4, 6, 8] as LevelTable,
  beta: 0.125,
  lambda: { up: 1, down: 1 },
  temperature: 0.5,
  uniformBits: 3,
  zDim: 32,
  hyperHidden: 64,
  rank: 2,
  gruWindow: 20,
  zTargets: 10,
  contrast: 0,
  contrastMargin: 0.02,
} as const;

/** A training or evaluation batch: the backbone's tensors plus each example's GRU window. */
export interface ChordBatch extends BatchTensors {
  /** int32 [B, gruWindow]: the last clicks before the (last) target, left-padded with 0. */
  readonly gru: tf.Tensor2D;
}

export interface ChordModel {
  readonly backbone: ChordBackbone;
  readonly options: ChordOptions;
  readonly layers: readonly LayerSpec[];
  readonly hypernetShape: HypernetShape | undefined;
  readonly allocation: AllocationSettings | undefined;
  /** Backbone parameters (embeddings, norms, biases). */
  readonly params: ParamMap;
  readonly gru: ParamMap;
  readonly hyper: ParamMap;
  /** What the optimizer trains and checkpoints store ('quant': the backbone parameters only). */
  readonly variables: ParamMap;
  loss(batch: ChordBatch, ctx: ForwardCtx): tf.Scalar;
  /** Inference scores [B, numItems] (column j = item j + 1), each user at their hard strategy. */
  scores(seq: tf.Tensor2D, gru: tf.Tensor2D, users: tf.Tensor1D): tf.Tensor2D;
  /** Hard strategies (core Γ/Λ) for GRU windows [B, N]; undefined for 'quant'. */
  allocate(gru: tf.Tensor2D): BatchAllocation | undefined;
  dispose(): void;
}

function validate(o: ChordOptions): void {
  const bad = (msg: string) => new ChordTrainError('CHORD_BAD_OPTION', msg);
  if (!(o.beta >= 0 && o.beta <= 0.5)) throw bad(`beta ${o.beta} outside [0, 0.5]`);
  if (!(o.temperature > 0)) throw bad(`temperature ${o.temperature} must be > 0`);
  if (!Number.isInteger(o.uniformBits) || o.uniformBits < 1 || o.uniformBits > 8) throw bad(`uniform bits ${o.uniformBits}`);
  if (!(o.contrast >= 0) || !(o.contrastMargin >= 0)) throw bad(`contrast ${o.contrast} / margin ${o.contrastMargin} must be >= 0`);
  for (const [k, v] of [['zDim', o.zDim], ['hyperHidden', o.hyperHidden], ['rank', o.rank], ['gruWindow', o.gruWindow], ['zTargets', o.zTargets]] as const) {
    if (!Number.isInteger(v) || v < 1) throw bad(`${k} ${v} must be a positive integer`);
  }
  if (![o.lambda.up, o.lambda.down].every((n) => Number.isInteger(n) && n >= 0)) {
    throw bad(`lambda ${o.lambda.up}/${o.lambda.down} must be non-negative layer counts`);
  }
}

/** RMS of a tensor's values (host side; used once at construction). */
function rms(t: tf.Tensor): number {
  const d = t.dataSync();
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i]! * d[i]!;
  return Math.sqrt(s / Math.max(1, d.length));
}

/**
 * Builds the model. `frozen` holds each layer's frozen weights (the seed's random ones from
 * core/frozen.ts, or a pretrained backbone's); `initParams`, when given, replaces the random
 * initial backbone parameters (e.g. those of the pretrained Base run).
 */
export function createChordModel(
  backbone: ChordBackbone,
  frozen: ReadonlyMap<string, Float32Array>,
  options: ChordOptions,
  initParams?: ReadonlyMap<string, Float32Array>,
): ChordModel {
  validate(options);
  const o = options;
  const layers = backbone.layers();
  const params = createParams(backbone.paramSpecs(), new Rng(o.seed ^ 0x5eed));
  if (initParams) {
    for (const [name, v] of Object.entries(params)) {
      const init = initParams.get(name);
      if (init) tf.tidy(() => v.assign(tf.tensor(init, v.shape, 'float32')));
    }
  }
  const frozenOf = (spec: LayerSpec) => {
    const w = frozen.get(spec.name);
    if (!w || w.length !== spec.outChannels * spec.rowLength) {
      throw new ChordTrainError('CHORD_BAD_DATA', `frozen weights of ${spec.name} missing or of the wrong size`);
    }
    return w;
  };
  const itemEmb = need(params, 'item_emb');
  const gru = createGruParams(itemEmb.shape[1]!, o.zDim, o.seed, rms(itemEmb));

  const aBits = o.activationBits;
  const lossWith = (layer: LayerFn, batch: BatchTensors, ctx: ForwardCtx): tf.Scalar =>
    backbone.lossWith(params, layer, batch, ctx, aBits);
  const scoresWith = (layer: LayerFn, seq: tf.Tensor2D, users: tf.Tensor1D): tf.Tensor2D =>
    backbone.scoresWith(params, layer, seq, users, aBits);

  if (o.method === 'quant') {
    const shared: Record<string, tf.Tensor> = {};
    for (const spec of layers) {
      const stack = levelStack(spec, frozenOf(spec), [o.uniformBits]);
      shared[spec.name] = stack.flat.reshape([...spec.shape]);
      disposeLevelStack(stack);
    }
    const layer = weightLayers(shared, layers);
    return {
      backbone,
      options: o,
      layers,
      hypernetShape: undefined,
      allocation: undefined,
      params,
      gru,
      hyper: {},
      variables: { ...params },
      loss: (batch, ctx) => lossWith(layer, batch, ctx),
      scores: (seq, _gru, users) => tf.tidy(() => scoresWith(layer, seq, users)),
      allocate: () => undefined,
      dispose: () => tf.dispose([...Object.values(shared), ...Object.values(params), ...Object.values(gru)]),
    };
  }

  const hyperLayers: HypernetLayer[] = layers.map((l) => ({ name: l.name, outChannels: l.outChannels, rowLength: l.rowLength }));
  const shape: HypernetShape = { method: o.method, zDim: o.zDim, hidden: o.hyperHidden, rank: o.rank, layers: hyperLayers, ...(o.zNorm ? { zNorm: true } : {}) };
  const hyper = createHypernetParams(shape, o.seed);
  const chord = o.method === 'chord';
  const lambda = chord ? { up: o.lambda.up, down: o.lambda.down } : { up: 0, down: 0 };
  if (lambda.up + lambda.down > layers.length) {
    throw new ChordTrainError('CHORD_BAD_OPTION', `lambda up + down exceeds ${layers.length} layers`);
  }
  const allocation: AllocationSettings = {
    layers: hyperLayers,
    beta: o.beta,
    levelTable: o.levelTable,
    lambda,
    temperature: o.temperature,
  };
  const stacks: LevelStack[] = layers.map((spec) => levelStack(spec, frozenOf(spec), o.levelTable));

  const sensitivities = (windows: tf.Tensor2D, training = false) =>
    hypernetForward(shape, hyper, gruBatchForward(gru, itemEmb as tf.Tensor2D, windows), training);
  const hostAllocation = (out: ReturnType<typeof sensitivities>, batch: number) =>
    allocateBatch(
      allocation,
      batch,
      out.scores.map((s) => s.dataSync() as Float32Array),
      out.alphaL.dataSync() as Float32Array,
    );

  const layerIndex = new Map(layers.map((spec, l) => [spec.name, l]));
  const indexOf = (name: string) => {
    const l = layerIndex.get(name);
    if (l === undefined) throw new ChordTrainError('CHORD_BAD_DATA', `unknown layer ${name}`);
    return l;
  };
  /** The layers at this batch's strategies, with the soft path for gradients. */
  const trainingLayers = (windows: tf.Tensor2D): LayerFn => {
    const batch = windows.shape[0];
    const out = sensitivities(windows, true);
    const alloc = hostAllocation(out, batch);
    const q = layers.map((_, l) =>
      softLevels(
        out.scores[l]!,
        alloc.tiers[l]!,
        chord ? (out.alphaL.slice([0, l], [batch, 1]) as tf.Tensor2D) : null,
        chord ? alloc.shift : null,
      ),
    );
    return (name, x) => {
      const l = indexOf(name);
      return quantLinear(stacks[l]!, alloc.levels[l]!, x, q[l]!);
    };
  };
  const hardLayers = (alloc: BatchAllocation): LayerFn => (name, x) => {
    const l = indexOf(name);
    return quantLinear(stacks[l]!, alloc.levels[l]!, x);
  };

  const allocate = (windows: tf.Tensor2D): BatchAllocation => {
    let alloc: BatchAllocation | undefined;
    tf.tidy(() => {
      alloc = hostAllocation(sensitivities(windows), windows.shape[0]);
    });
    return alloc!;
  };

  return {
    backbone,
    options: o,
    layers,
    hypernetShape: shape,
    allocation,
    params,
    gru,
    hyper,
    variables: { ...params, ...gru, ...hyper },
    loss: (batch, ctx) => {
      if (o.contrast === 0) return lossWith(trainingLayers(batch.gru), batch, ctx);
      // Both forwards draw the same dropout masks, so only the strategy differs between them.
      const seeds: number[] = [];
      const recording: ForwardCtx = {
        ...ctx,
        seed: () => {
          const s = ctx.seed();
          seeds.push(s);
          return s;
        },
      };
      const own = lossWith(trainingLayers(batch.gru), batch, recording);
      let replay = 0;
      const others = tf.concat([batch.gru.slice([1, 0]), batch.gru.slice([0, 0], [1, -1])]) as tf.Tensor2D;
      const other = lossWith(trainingLayers(others), batch, { ...ctx, seed: () => seeds[replay++] ?? ctx.seed() });
      return tf.add(own, tf.mul(o.contrast, tf.relu(tf.add(tf.sub(own, other), o.contrastMargin)))) as tf.Scalar;
    },
    scores: (seq, windows, users) => {
      const alloc = allocate(windows);
      return tf.tidy(() => scoresWith(hardLayers(alloc), seq, users));
    },
    allocate,
    dispose: () => {
      stacks.forEach(disposeLevelStack);
      tf.dispose([...Object.values(params), ...Object.values(gru), ...Object.values(hyper)]);
    },
  };
}
