/**
 * Weight initialisers for the frozen layers, following PyTorch's torch.nn.init formulas so the
 * frozen backbone has the same scale as one a PyTorch user would get, but drawn from the
 * seedable Philox stream of prng.ts instead of PyTorch's generator.
 */
import { fillNormal, fillUniform, streamId } from './prng.ts';

export type FanMode = 'fan_in' | 'fan_out';
export type Nonlinearity = 'linear' | 'relu' | 'leaky_relu';

/**
 * How a layer's weights are drawn. Every parameter is explicit (no defaults) so that a scheme
 * written into a manifest means exactly one distribution.
 */
export type InitScheme =
  | { readonly kind: 'uniform'; readonly bound: number }
  | { readonly kind: 'normal'; readonly std: number }
  | { readonly kind: 'xavier_uniform'; readonly gain: number }
  | { readonly kind: 'xavier_normal'; readonly gain: number }
  | {
      readonly kind: 'kaiming_uniform';
      /** Negative slope; only used when nonlinearity is 'leaky_relu' (as in PyTorch). */
      readonly a: number;
      readonly mode: FanMode;
      readonly nonlinearity: Nonlinearity;
    }
  | {
      readonly kind: 'kaiming_normal';
      readonly a: number;
      readonly mode: FanMode;
      readonly nonlinearity: Nonlinearity;
    };

export type InitKind = InitScheme['kind'];

/** The distribution a scheme resolves to for a given shape. */
export type ResolvedInit =
  | { readonly kind: 'uniform'; readonly bound: number }
  | { readonly kind: 'normal'; readonly std: number };

/** Number of elements of a shape; every dimension must be a positive integer. */
export function shapeSize(shape: readonly number[]): number {
  if (shape.length === 0) throw new RangeError('shape must have at least one dimension');
  let size = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 1) {
      throw new RangeError(`shape dimensions must be positive integers, got [${shape.join(', ')}]`);
    }
    size *= dim;
  }
  if (!Number.isSafeInteger(size)) throw new RangeError(`shape [${shape.join(', ')}] is too large`);
  return size;
}

/**
 * PyTorch's `_calculate_fan_in_and_fan_out`: for [out, in, ...kernel],
 * fan_in = in * receptive, fan_out = out * receptive, receptive = product of kernel dims.
 */
export function computeFans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  shapeSize(shape);
  if (shape.length < 2) {
    throw new RangeError(`fan in/out needs at least 2 dimensions, got [${shape.join(', ')}]`);
  }
  let receptive = 1;
  for (let d = 2; d < shape.length; d++) receptive *= shape[d]!;
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

/** PyTorch's `calculate_gain` for the nonlinearities kaiming_* accepts here. */
export function calculateGain(nonlinearity: Nonlinearity, a: number): number {
  switch (nonlinearity) {
    case 'linear':
      return 1;
    case 'relu':
      return Math.sqrt(2);
    case 'leaky_relu':
      return Math.sqrt(2 / (1 + a * a));
  }
}

function requireFinite(value: number, what: string, min: number): void {
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(`${what} must be a finite number >= ${min}, got ${value}`);
  }
}

/** Resolves a scheme for a shape to a plain uniform bound or normal std. */
export function resolveInit(shape: readonly number[], scheme: InitScheme): ResolvedInit {
  switch (scheme.kind) {
    case 'uniform':
      shapeSize(shape);
      requireFinite(scheme.bound, 'uniform bound', 0);
      return { kind: 'uniform', bound: scheme.bound };
    case 'normal':
      shapeSize(shape);
      requireFinite(scheme.std, 'normal std', 0);
      return { kind: 'normal', std: scheme.std };
    case 'xavier_uniform': {
      requireFinite(scheme.gain, 'gain', 0);
      const { fanIn, fanOut } = computeFans(shape);
      return { kind: 'uniform', bound: scheme.gain * Math.sqrt(6 / (fanIn + fanOut)) };
    }
    case 'xavier_normal': {
      requireFinite(scheme.gain, 'gain', 0);
      const { fanIn, fanOut } = computeFans(shape);
      return { kind: 'normal', std: scheme.gain * Math.sqrt(2 / (fanIn + fanOut)) };
    }
    case 'kaiming_uniform':
    case 'kaiming_normal': {
      requireFinite(scheme.a, 'kaiming a', 0);
      const fans = computeFans(shape);
      const fan = scheme.mode === 'fan_in' ? fans.fanIn : fans.fanOut;
      const std = calculateGain(scheme.nonlinearity, scheme.a) / Math.sqrt(fan);
      return scheme.kind === 'kaiming_uniform'
        ? { kind: 'uniform', bound: Math.sqrt(3) * std }
        : { kind: 'normal', std };
    }
  }
}

/**
 * Elements [start, start + count) of the row-major tensor `layerName` of `shape` drawn under
 * `scheme` with `seed`. Equal to the same range of `initWeights(...)`, computed on its own.
 */
export function initSlice(
  seed: number,
  layerName: string,
  shape: readonly number[],
  scheme: InitScheme,
  start: number,
  count: number,
): Float32Array<ArrayBuffer> {
  const size = shapeSize(shape);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 ||
      start + count > size) {
    throw new RangeError(`slice [${start}, ${start + count}) is outside a tensor of ${size}`);
  }
  const resolved = resolveInit(shape, scheme);
  const out = new Float32Array(count);
  const stream = streamId(layerName);
  return resolved.kind === 'uniform'
    ? fillUniform(out, seed, stream, -resolved.bound, resolved.bound, start)
    : fillNormal(out, seed, stream, 0, resolved.std, start);
}

/** The whole tensor `layerName` of `shape`, row-major, drawn under `scheme` with `seed`. */
export function initWeights(
  seed: number,
  layerName: string,
  shape: readonly number[],
  scheme: InitScheme,
): Float32Array<ArrayBuffer> {
  return initSlice(seed, layerName, shape, scheme, 0, shapeSize(shape));
}
