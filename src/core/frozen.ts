/**
 * The frozen backbone weights: every linear/conv matrix regenerated from (seed, layer name) with
 * the layer's init scheme, identical on every device and in the cloud. Their SHA-256 pins that
 * identity in the manifest.
 *
 * A frozen-pretrained model (or a Base one) has no seed that regenerates its weights: they ship
 * in the artifact's backbone tensors under the layer names (shippedFrozenWeights), and the
 * manifest's hash covers those instead (src/core/manifest.ts, `frozenWeights: 'shipped'`).
 */
import { backboneLayers } from './backbones.ts';
import type { BackboneConfig, LayerSpec } from './backbones.ts';
import { ChordError } from './errors.ts';
import { float32LeBytes, sha256Hex } from './hash.ts';
import { initSlice, initWeights } from './init.ts';
import type { InitScheme } from './init.ts';

/** What determines the frozen weights: a seed and the ordered layers (a ModelManifest is one). */
export interface FrozenSource {
  readonly seed: number;
  readonly layers: readonly LayerSpec[];
}

export interface FrozenLayer {
  readonly spec: LayerSpec;
  /** Row-major, spec.outChannels rows of spec.rowLength. */
  readonly weights: Float32Array<ArrayBuffer>;
}

/** One layer's frozen weights. */
export function generateLayerWeights(seed: number, spec: LayerSpec): Float32Array<ArrayBuffer> {
  return initWeights(seed, spec.name, spec.shape, spec.init);
}

/** Output channel `channel` (row `channel`) of a layer, without generating the rest. */
export function generateChannelWeights(seed: number, spec: LayerSpec, channel: number): Float32Array<ArrayBuffer> {
  if (!Number.isInteger(channel) || channel < 0 || channel >= spec.outChannels) {
    throw new RangeError(`channel ${channel} out of range for ${spec.name} (${spec.outChannels})`);
  }
  return initSlice(seed, spec.name, spec.shape, spec.init, channel * spec.rowLength, spec.rowLength);
}

/** All frozen layers, in layer order. */
export function generateFrozenWeights(source: FrozenSource): FrozenLayer[] {
  return source.layers.map((spec) => ({ spec, weights: generateLayerWeights(source.seed, spec) }));
}

/** Frozen weights by layer name (a view over the same arrays). */
export function frozenWeightsByName(layers: readonly FrozenLayer[]): Map<string, Float32Array<ArrayBuffer>> {
  return new Map(layers.map((l) => [l.spec.name, l.weights]));
}

/**
 * The bytes hashFrozenWeights hashes: each layer's weights, in layer order, as little-endian
 * float32. Exported so a synchronous SHA-256 (node:crypto, when writing an artifact) hashes
 * exactly the same bytes.
 */
export function frozenWeightsBytes(layers: readonly FrozenLayer[]): Uint8Array<ArrayBuffer> {
  return float32LeBytes(layers.map((l) => l.weights));
}

/** SHA-256 (lower-case hex) of frozenWeightsBytes(layers). */
export async function hashFrozenWeights(layers: readonly FrozenLayer[]): Promise<string> {
  return sha256Hex(frozenWeightsBytes(layers));
}

/** Layer weights shipped in a tensor map are incomplete or have the wrong shape. */
export class ShippedWeightsError extends ChordError<'ShippedWeightsError'> {
  override readonly name = 'ShippedWeightsError';
  /** The layer at fault (absent when the set as a whole is wrong). */
  readonly layer: string | undefined;
  constructor(message: string, layer?: string) {
    super('SHIPPED_WEIGHTS_INVALID', message);
    this.layer = layer;
  }
}

/** What shippedFrozenWeights reads: a TensorMap or anything shaped like one. */
export type LayerTensors = ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;

/**
 * The layer weights shipped in `tensors` under the layers' names, in layer order (views over the
 * same arrays, no copy); undefined when none is there (the seed's weights apply). All or nothing:
 * a partial set, or a tensor whose shape is not the layer's, throws ShippedWeightsError — running
 * half pretrained and half random weights would be a model nobody trained.
 */
export function shippedFrozenWeights(layers: readonly LayerSpec[], tensors: LayerTensors): FrozenLayer[] | undefined {
  const missing = layers.filter((l) => !tensors.has(l.name));
  if (missing.length === layers.length) return undefined;
  if (missing.length > 0) {
    throw new ShippedWeightsError(
      `backbone ships ${layers.length - missing.length} of ${layers.length} layer weights (missing ${missing.map((l) => l.name).join(', ')})`,
      missing[0]!.name,
    );
  }
  return layers.map((spec) => {
    const t = tensors.get(spec.name)!;
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new ShippedWeightsError(`${spec.name} has shape [${t.shape.join(', ')}], the layer is [${spec.shape.join(', ')}]`, spec.name);
    }
    if (t.data.length !== spec.outChannels * spec.rowLength) {
      throw new ShippedWeightsError(`${spec.name} has ${t.data.length} values, the layer ${spec.outChannels * spec.rowLength}`, spec.name);
    }
    // A NaN or infinity would poison every channel range the quantizer derives from it.
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new ShippedWeightsError(`${spec.name}[${bad}] is ${t.data[bad]}, not a finite number`, spec.name);
    // Backends upload these to the GPU, which wants plain-ArrayBuffer memory; decoded tensor
    // files already are, so this copies only views of a SharedArrayBuffer.
    const weights = t.data.buffer instanceof ArrayBuffer ? (t.data as Float32Array<ArrayBuffer>) : new Float32Array(t.data);
    return { spec, weights };
  });
}

/** Generates and hashes in one go: the value a manifest's frozenWeightsHash must hold. */
export async function computeFrozenWeightsHash(source: FrozenSource): Promise<string> {
  return hashFrozenWeights(generateFrozenWeights(source));
}

// ---- Pinned test vectors (tests/fixtures/frozen-vectors.json), shared by Node and browser tests.

export interface FrozenVectorCase {
  readonly seed: number;
  readonly name: string;
  readonly shape: readonly number[];
  readonly scheme: InitScheme;
  /** First element index of the 8 values (default 0). */
  readonly offset?: number;
}

export type FrozenVectorModel = BackboneConfig & { readonly seed: number };

export interface FrozenVectorsInput {
  readonly cases: readonly FrozenVectorCase[];
  readonly models: readonly FrozenVectorModel[];
}

export interface FrozenVectorsResult {
  /** Per case: 8 float32 values as 8-digit lower-case hex of their bit patterns. */
  readonly cases: readonly (FrozenVectorCase & { readonly first8: readonly string[] })[];
  /** Per model: hash of all its frozen weights. */
  readonly models: readonly (FrozenVectorModel & { readonly sha256: string })[];
}

export const FROZEN_VECTOR_COUNT = 8;

/** Bit patterns of float32 values as 8-digit hex (exact, unlike decimal printing). */
export function float32BitsHex(values: Float32Array): string[] {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  return Array.from(bits, (b) => b.toString(16).padStart(8, '0'));
}

/**
 * Recomputes the pinned vectors from their inputs (expected values in `input`, if any, are
 * ignored), so one environment's output can be compared with the fixture or with another's.
 */
export async function computeFrozenVectors(input: FrozenVectorsInput): Promise<FrozenVectorsResult> {
  const cases = input.cases.map((c) => {
    const offset = c.offset ?? 0;
    const values = initSlice(c.seed, c.name, c.shape, c.scheme, offset, FROZEN_VECTOR_COUNT);
    const base: FrozenVectorCase = { seed: c.seed, name: c.name, shape: c.shape, scheme: c.scheme };
    return { ...base, ...(c.offset === undefined ? {} : { offset }), first8: float32BitsHex(values) };
  });
  const models = [];
  for (const m of input.models) {
    const config: BackboneConfig =
      m.backbone === 'sasrec' ? { backbone: 'sasrec', dims: m.dims } : { backbone: 'caser', dims: m.dims };
    const sha256 = await computeFrozenWeightsHash({ seed: m.seed, layers: backboneLayers(config) });
    models.push({ ...config, seed: m.seed, sha256 });
  }
  return { cases, models };
}
