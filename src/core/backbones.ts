/**
 * The quantizable (frozen) layers of each backbone, derived from its dimensions alone. Order
 * matters: it is the layer order of strategies, of the frozen-weights hash and of the manifest.
 *
 * Init choice: linear and attention projections use xavier_uniform (gain 1), the usual choice for
 * transformer projections (SASRec's reference code applies xavier to its weights); Caser's
 * convolutions use PyTorch's own Conv2d default, kaiming_uniform with a = sqrt(5), leaky_relu,
 * fan_in, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)). All schemes are uniform on purpose: a uniform
 * draw needs only integer math and one multiply-add, so the frozen weights are bit-identical in
 * every JavaScript engine, with no dependence on Math.log/cos.
 */
import { ChordError } from './errors.ts';
import type { InitScheme } from './init.ts';

/** The backbones, in the order the results list them. */
export const BACKBONE_KINDS = ['sasrec', 'caser'] as const;
export type BackboneKind = (typeof BACKBONE_KINDS)[number];

export interface SasrecDims {
  readonly hidden: number;
  readonly heads: number;
  readonly blocks: number;
  readonly ffn: number;
  readonly maxLen: number;
}

export interface CaserDims {
  /** Embedding size. */
  readonly d: number;
  /** Window length: the number of most recent items the convolutions see. */
  readonly L: number;
  /** Vertical filters. */
  readonly nv: number;
  /** Horizontal filters per height h = 1..L. */
  readonly nh: number;
  /** Input length; equals L because conv.v spans the whole window. */
  readonly maxLen: number;
}

export type BackboneConfig =
  | { readonly backbone: 'sasrec'; readonly dims: SasrecDims }
  | { readonly backbone: 'caser'; readonly dims: CaserDims };

export interface LayerSpec {
  readonly name: string;
  /** [out, in] for linear, [out, in, kh, kw] for conv. */
  readonly shape: readonly number[];
  /** shape[0]: one quantization channel per output channel. */
  readonly outChannels: number;
  /** Product of shape[1..]: the elements of one output channel. */
  readonly rowLength: number;
  readonly init: InitScheme;
}

export const DEFAULT_SASREC_DIMS: SasrecDims = { hidden: 64, heads: 2, blocks: 2, ffn: 256, maxLen: 50 };
export const DEFAULT_CASER_DIMS: CaserDims = { d: 64, L: 5, nv: 4, nh: 16, maxLen: 5 };

/** Largest value accepted for any single dimension. */
export const MAX_DIM = 65536;
/**
 * Largest total of frozen weights (32 Mi floats = 128 MiB as float32). Manifests arrive from the
 * network; this keeps a malformed one from making the page allocate without bound.
 */
export const MAX_FROZEN_PARAMS = 1 << 25;

/**
 * Dimensions that are not a valid backbone; `field` names the offending key of `dims`, or is
 * undefined when no single key is to blame (the total size).
 */
export class BackboneDimsError extends ChordError<'BackboneDimsError'> {
  override readonly name = 'BackboneDimsError';
  readonly field: string | undefined;
  constructor(field: string | undefined, message: string) {
    super('BACKBONE_DIMS_INVALID', `${field === undefined ? 'dims' : `dims.${field}`}: ${message}`);
    this.field = field;
  }
}

const LINEAR_INIT: InitScheme = { kind: 'xavier_uniform', gain: 1 };
const CONV_INIT: InitScheme = {
  kind: 'kaiming_uniform',
  a: Math.sqrt(5),
  mode: 'fan_in',
  nonlinearity: 'leaky_relu',
};

function layer(name: string, shape: readonly number[], init: InitScheme): LayerSpec {
  let rowLength = 1;
  for (let d = 1; d < shape.length; d++) rowLength *= shape[d]!;
  return { name, shape, outChannels: shape[0]!, rowLength, init };
}

function checkPositiveInts(dims: object, keys: readonly string[]): void {
  for (const key of keys) {
    const value: unknown = (dims as Record<string, unknown>)[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_DIM) {
      throw new BackboneDimsError(key, `must be an integer in [1, ${MAX_DIM}], got ${String(value)}`);
    }
  }
}

function unchecked(config: BackboneConfig): LayerSpec[] {
  if (config.backbone === 'sasrec') {
    const { hidden, blocks, ffn } = config.dims;
    const layers: LayerSpec[] = [];
    for (let b = 0; b < blocks; b++) {
      for (const proj of ['q', 'k', 'v', 'out']) {
        layers.push(layer(`block${b}.attn.${proj}`, [hidden, hidden], LINEAR_INIT));
      }
      layers.push(layer(`block${b}.ffn.in`, [ffn, hidden], LINEAR_INIT));
      layers.push(layer(`block${b}.ffn.out`, [hidden, ffn], LINEAR_INIT));
    }
    return layers;
  }
  const { d, L, nv, nh } = config.dims;
  const layers: LayerSpec[] = [layer('conv.v', [nv, 1, L, 1], CONV_INIT)];
  for (let h = 1; h <= L; h++) layers.push(layer(`conv.h${h}`, [nh, 1, h, d], CONV_INIT));
  layers.push(layer('fc1', [d, nv * d + nh * L], LINEAR_INIT));
  return layers;
}

/** Throws BackboneDimsError when `config.dims` does not describe a buildable backbone. */
export function validateDims(config: BackboneConfig): void {
  if (config.backbone === 'sasrec') {
    checkPositiveInts(config.dims, ['hidden', 'heads', 'blocks', 'ffn', 'maxLen']);
    if (config.dims.hidden % config.dims.heads !== 0) {
      throw new BackboneDimsError('heads', `must divide hidden (${config.dims.hidden})`);
    }
  } else {
    checkPositiveInts(config.dims, ['d', 'L', 'nv', 'nh', 'maxLen']);
    if (config.dims.maxLen !== config.dims.L) {
      // fc1's input width nv*d + nh*L assumes the vertical conv yields one row, i.e. input length L.
      throw new BackboneDimsError('maxLen', `must equal L (${config.dims.L})`);
    }
  }
  const total = frozenParamCount(unchecked(config));
  if (total > MAX_FROZEN_PARAMS) {
    throw new BackboneDimsError(undefined, `frozen weights would total ${total} > ${MAX_FROZEN_PARAMS}`);
  }
}

/** The ordered quantizable layers of a backbone. */
export function backboneLayers(config: BackboneConfig): LayerSpec[] {
  validateDims(config);
  return unchecked(config);
}

/** Total number of frozen weights over `layers`. */
export function frozenParamCount(layers: readonly LayerSpec[]): number {
  return layers.reduce((sum, l) => sum + l.outChannels * l.rowLength, 0);
}
