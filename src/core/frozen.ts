/**
 * The frozen backbone weights: every linear/conv matrix regenerated from (seed, layer name) with
 * the layer's init scheme, identical on every device and in the cloud. Their SHA-256 pins that
 * identity in the manifest.
 */
import { backboneLayers } from './backbones.ts';
import type { BackboneConfig, LayerSpec } from './backbones.ts';
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
 * SHA-256 (lower-case hex) of the concatenation, in layer order, of each layer's weights as
 * little-endian float32 bytes.
 */
export async function hashFrozenWeights(layers: readonly FrozenLayer[]): Promise<string> {
  return sha256Hex(float32LeBytes(layers.map((l) => l.weights)));
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
