/** Lookup and validation of the trained tensors and layer weights a forward reads. */
import type { LayerSpec } from '../backbones.ts';
import type { TensorMap } from '../tensor-file.ts';
import { ForwardError } from './errors.ts';
import type { LayerWeights } from './types.ts';

/**
 * The tensor `name`, checked against `shape` (-1 = any positive size). Returns the data array
 * itself (no copy): a forward keeps views into the TensorMap it was built from.
 */
export function requireTensor(tensors: TensorMap, name: string, shape: readonly number[]): Float32Array {
  const t = tensors.get(name);
  if (!t) throw new ForwardError('FORWARD_MISSING_TENSOR', `tensor '${name}' is missing`);
  const ok =
    t.shape.length === shape.length &&
    shape.every((s, i) => (s === -1 ? t.shape[i]! > 0 : t.shape[i] === s)) &&
    t.data.length === t.shape.reduce((a, b) => a * b, 1);
  if (!ok) {
    throw new ForwardError(
      'FORWARD_BAD_SHAPE',
      `tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.map((s) => (s === -1 ? '*' : s)).join(', ')}]`,
    );
  }
  return t.data;
}

/** Every layer's weights, by name, checked against its spec. */
export function requireLayerWeights(
  weights: LayerWeights,
  layers: readonly LayerSpec[],
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const spec of layers) {
    const w = weights.get(spec.name);
    if (!w) throw new ForwardError('FORWARD_MISSING_TENSOR', `weights of layer '${spec.name}' are missing`);
    const expected = spec.outChannels * spec.rowLength;
    if (w.length !== expected) {
      throw new ForwardError(
        'FORWARD_BAD_SHAPE',
        `weights of layer '${spec.name}' have ${w.length} values, expected ${spec.outChannels} x ${spec.rowLength}`,
      );
    }
    out.set(spec.name, w);
  }
  return out;
}

/** Checks an item id of a history: an integer in 0..numItems (0 = padding). */
export function checkHistoryItem(id: number, numItems: number, index: number): void {
  if (!Number.isInteger(id) || id < 0 || id > numItems) {
    throw new ForwardError('FORWARD_BAD_ITEM', `history[${index}] = ${id} is not an item id in 0..${numItems}`);
  }
}

export function checkActivationBits(bits: number | undefined): void {
  if (bits !== undefined && (!Number.isInteger(bits) || bits < 1 || bits > 8)) {
    throw new ForwardError('FORWARD_BAD_OPTION', `activationBits ${bits} outside 1..8`);
  }
}
