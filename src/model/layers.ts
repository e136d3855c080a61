/**
 * The hook through which a backbone forward (sasrec.ts, caser.ts) applies its quantizable layers.
 * There is one forward per backbone; what a layer's weights are is the caller's business:
 * - Base (and any WeightMap caller): `weightLayers`, plain fp32 products with the map's tensors;
 * - CHORD: the frozen weights fake-quantized at each user's strategy (chord/weights.ts), computed
 *   as one shared matmul against every level's copy and a per-channel selection. Running the
 *   forward on per-user WeightMaps instead would use per-example batched matmuls, ~10x slower per
 *   FLOP in tfjs-wasm than one shared matmul (measured: 307 ms vs 28 ms for
 *   [128x50x64]·[64x256]).
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerSpec } from '../core/backbones.ts';
import { ChordError } from '../core/errors.ts';
import { mm } from './nn.ts';
import { need, type WeightMap } from './params.ts';

/**
 * x [..., in] -> x · W_nameᵀ [..., out] for quantizable layer `name` (no bias: the forward adds
 * it). `in` is the layer's row length: conv weights [out, in, kh, kw] act on flattened windows.
 */
export type LayerFn = (name: string, x: tf.Tensor) => tf.Tensor;

/** A weight map whose tensor does not fit its layer. */
export class LayerWeightsError extends ChordError<'LayerWeightsError'> {
  override readonly name = 'LayerWeightsError';
  constructor(message: string) {
    super('MODEL_BAD_WEIGHTS', message);
  }
}

/**
 * The fp32 LayerFn over `weights` for the layers `specs`. A layer's tensor is either shared, of
 * the layer's shape, or per example, [B, ...shape] with x [B, ..., in] (example b uses W[b]).
 */
export function weightLayers(weights: WeightMap, specs: readonly LayerSpec[]): LayerFn {
  const byName = new Map(specs.map((s) => [s.name, s]));
  return (name, x) => {
    const spec = byName.get(name);
    if (!spec) throw new LayerWeightsError(`unknown layer '${name}'`);
    const w = need(weights, name);
    const out = spec.outChannels;
    const inDim = spec.rowLength;
    const lead = x.shape.slice(0, -1);
    let y: tf.Tensor;
    if (w.rank === spec.shape.length) {
      y = mm(x.reshape([-1, inDim]), w.reshape([out, inDim]), false, true);
    } else if (w.rank === spec.shape.length + 1) {
      const batch = w.shape[0]!;
      y = mm(x.reshape([batch, -1, inDim]), w.reshape([batch, out, inDim]), false, true);
    } else {
      throw new LayerWeightsError(`weights of ${name} have shape [${w.shape}], expected [${spec.shape}] or [B, ${spec.shape}]`);
    }
    return y.reshape([...lead, out]);
  };
}
