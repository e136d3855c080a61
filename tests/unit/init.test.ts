import { describe, expect, it } from 'vitest';
import {
  calculateGain,
  computeFans,
  initSlice,
  initWeights,
  resolveInit,
  shapeSize,
} from '../../src/core/init.ts';
import type { InitScheme } from '../../src/core/init.ts';
import { fillNormal, fillUniform, streamId } from '../../src/core/prng.ts';

function stats(values: Float32Array): { mean: number; std: number; maxAbs: number } {
  let sum = 0;
  let maxAbs = 0;
  for (const v of values) {
    sum += v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, std: Math.sqrt(sq / (values.length - 1)), maxAbs };
}

const KAIMING_DEFAULT: InitScheme = {
  kind: 'kaiming_uniform',
  a: Math.sqrt(5),
  mode: 'fan_in',
  nonlinearity: 'leaky_relu',
};

describe('fans and gains (PyTorch formulas)', () => {
  it('computes fan_in/fan_out for linear and conv shapes', () => {
    expect(computeFans([256, 64])).toEqual({ fanIn: 64, fanOut: 256 });
    expect(computeFans([16, 1, 3, 64])).toEqual({ fanIn: 192, fanOut: 3072 });
    expect(computeFans([4, 1, 5, 1])).toEqual({ fanIn: 5, fanOut: 20 });
    expect(() => computeFans([10])).toThrow(RangeError);
  });

  it('computes calculate_gain', () => {
    expect(calculateGain('linear', 0)).toBe(1);
    expect(calculateGain('relu', 0)).toBe(Math.SQRT2);
    expect(calculateGain('leaky_relu', 0.01)).toBeCloseTo(Math.sqrt(2 / 1.0001), 15);
    expect(calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 15);
  });

  it('validates shapes', () => {
    expect(shapeSize([3, 4, 5])).toBe(60);
    expect(() => shapeSize([])).toThrow(RangeError);
    expect(() => shapeSize([3, 0])).toThrow(RangeError);
    expect(() => shapeSize([2.5])).toThrow(RangeError);
  });
});

describe('resolveInit', () => {
  it('resolves each scheme to the PyTorch bound or std', () => {
    expect(resolveInit([8], { kind: 'uniform', bound: 0.1 })).toEqual({ kind: 'uniform', bound: 0.1 });
    expect(resolveInit([8], { kind: 'normal', std: 0.02 })).toEqual({ kind: 'normal', std: 0.02 });
    expect(resolveInit([256, 64], { kind: 'xavier_uniform', gain: 1 })).toEqual({
      kind: 'uniform',
      bound: Math.sqrt(6 / 320),
    });
    expect(resolveInit([256, 64], { kind: 'xavier_uniform', gain: 2 })).toEqual({
      kind: 'uniform',
      bound: 2 * Math.sqrt(6 / 320),
    });
    expect(resolveInit([256, 64], { kind: 'xavier_normal', gain: 1 })).toEqual({
      kind: 'normal',
      std: Math.sqrt(2 / 320),
    });
    // Conv2d's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    const conv = resolveInit([16, 1, 3, 64], KAIMING_DEFAULT);
    expect(conv.kind).toBe('uniform');
    expect(conv.kind === 'uniform' && conv.bound).toBeCloseTo(1 / Math.sqrt(192), 15);
    const he = resolveInit([64, 336], { kind: 'kaiming_normal', a: 0, mode: 'fan_out', nonlinearity: 'relu' });
    expect(he).toEqual({ kind: 'normal', std: Math.SQRT2 / Math.sqrt(64) });
    const heIn = resolveInit([64, 336], { kind: 'kaiming_uniform', a: 0, mode: 'fan_in', nonlinearity: 'relu' });
    expect(heIn.kind === 'uniform' && heIn.bound).toBeCloseTo(Math.sqrt(6 / 336), 15);
  });

  it('rejects negative or non-finite parameters', () => {
    expect(() => resolveInit([4], { kind: 'uniform', bound: -1 })).toThrow(RangeError);
    expect(() => resolveInit([4], { kind: 'normal', std: Number.NaN })).toThrow(RangeError);
    expect(() => resolveInit([4, 4], { kind: 'xavier_uniform', gain: Infinity })).toThrow(RangeError);
    expect(() => resolveInit([4], { kind: 'xavier_uniform', gain: 1 })).toThrow(RangeError);
  });
});

describe('initWeights', () => {
  const uniformSchemes: [string, readonly number[], InitScheme][] = [
    ['uniform', [64, 64], { kind: 'uniform', bound: 0.05 }],
    ['xavier_uniform', [256, 64], { kind: 'xavier_uniform', gain: 1 }],
    ['kaiming_uniform', [16, 1, 3, 64], KAIMING_DEFAULT],
  ];
  for (const [label, shape, scheme] of uniformSchemes) {
    it(`${label}: stays within the bound, reaches it, with variance bound^2/3`, () => {
      const resolved = resolveInit(shape, scheme);
      if (resolved.kind !== 'uniform') throw new Error('expected a uniform scheme');
      const w = initWeights(3, `layer.${label}`, shape, scheme);
      expect(w.length).toBe(shapeSize(shape));
      const { mean, std, maxAbs } = stats(w);
      expect(maxAbs).toBeLessThanOrEqual(Math.fround(resolved.bound));
      expect(maxAbs).toBeGreaterThan(0.99 * resolved.bound);
      const expectedStd = resolved.bound / Math.sqrt(3);
      expect(Math.abs(mean)).toBeLessThan((5 * expectedStd) / Math.sqrt(w.length));
      expect(Math.abs(std / expectedStd - 1)).toBeLessThan(0.05);
    });
  }

  const normalSchemes: [string, readonly number[], InitScheme][] = [
    ['normal', [64, 64], { kind: 'normal', std: 0.02 }],
    ['xavier_normal', [256, 64], { kind: 'xavier_normal', gain: 1 }],
    ['kaiming_normal', [64, 336], { kind: 'kaiming_normal', a: 0, mode: 'fan_in', nonlinearity: 'relu' }],
  ];
  for (const [label, shape, scheme] of normalSchemes) {
    it(`${label}: has mean 0 and the scheme's std`, () => {
      const resolved = resolveInit(shape, scheme);
      if (resolved.kind !== 'normal') throw new Error('expected a normal scheme');
      const w = initWeights(3, `layer.${label}`, shape, scheme);
      const { mean, std, maxAbs } = stats(w);
      expect(Math.abs(mean)).toBeLessThan((5 * resolved.std) / Math.sqrt(w.length));
      expect(Math.abs(std / resolved.std - 1)).toBeLessThan(0.05);
      // Unbounded, but with 53-bit uniforms nothing beyond ~8.6 sigma can occur.
      expect(maxAbs).toBeGreaterThan(2.5 * resolved.std);
      expect(maxAbs).toBeLessThan(8.6 * resolved.std);
    });
  }

  it('draws from the (seed, FNV(name)) stream of prng.ts', () => {
    const shape = [8, 4];
    const bound = Math.sqrt(6 / 12);
    const expectedU = fillUniform(new Float32Array(32), 11, streamId('block0.attn.v'), -bound, bound);
    expect(initWeights(11, 'block0.attn.v', shape, { kind: 'xavier_uniform', gain: 1 })).toEqual(expectedU);
    const expectedN = fillNormal(new Float32Array(32), 11, streamId('n'), 0, 0.5);
    expect(initWeights(11, 'n', shape, { kind: 'normal', std: 0.5 })).toEqual(expectedN);
  });

  it('depends on seed and layer name', () => {
    const scheme: InitScheme = { kind: 'xavier_uniform', gain: 1 };
    const base = initWeights(1, 'a', [4, 4], scheme);
    expect(initWeights(1, 'a', [4, 4], scheme)).toEqual(base);
    expect(initWeights(2, 'a', [4, 4], scheme)).not.toEqual(base);
    expect(initWeights(1, 'b', [4, 4], scheme)).not.toEqual(base);
  });

  it('initSlice equals the same range of the full tensor', () => {
    for (const scheme of [KAIMING_DEFAULT, { kind: 'xavier_normal', gain: 1 } as const]) {
      const shape = [16, 1, 3, 8];
      const full = initWeights(9, 'conv.h3', shape, scheme);
      for (const [start, count] of [[0, 24], [24, 24], [5, 3], [383, 1], [0, 384]] as const) {
        expect(initSlice(9, 'conv.h3', shape, scheme, start, count)).toEqual(full.subarray(start, start + count));
      }
      expect(() => initSlice(9, 'conv.h3', shape, scheme, 380, 5)).toThrow(RangeError);
    }
  });
});
