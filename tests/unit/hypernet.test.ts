import { describe, expect, it } from 'vitest';
import { Hypernet, HypernetError, parseHypernetConfig, type HypernetConfig } from '../../src/core/hypernet.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';

const config: HypernetConfig = {
  format: 'chord-hypernet',
  version: 1,
  method: 'chord',
  zDim: 2,
  hidden: 2,
  rank: 1,
  levelTable: [2, 4, 6, 8],
  beta: 0.25,
  lambda: { up: 1, down: 1 },
  layers: [
    { name: 'a', outChannels: 4, rowLength: 2 },
    { name: 'b', outChannels: 4, rowLength: 3 },
  ],
};

const t = (shape: number[], values: number[]) => ({ shape, data: Float32Array.from(values) });

// Identity trunk: h = tanh(z). F heads and E heads chosen so the arithmetic is checkable by hand.
function tensors(): TensorMap {
  return new Map([
    ['hyper.trunk.w', t([2, 2], [1, 0, 0, 1])],
    ['hyper.trunk.b', t([2], [0, 0])],
    ['hyper.F.a.w', t([4, 2], [1, 0, 0, 0, 0, 1, 0, 0])],
    ['hyper.F.a.b', t([4], [0, 0, 0, 0])],
    ['hyper.F.b.w', t([4, 2], [0, 0, 0, 0, 0, 0, 0, 0])],
    ['hyper.F.b.b', t([4], [0, 0, 0, 0])],
    ['hyper.E.a.u', t([4, 2], [0, 0, 0, 0, 0, 0, 0, 0])],
    ['hyper.E.a.ub', t([4], [1, 1, 1, 1])],
    ['hyper.E.a.v', t([2, 2], [0, 0, 0, 0])],
    ['hyper.E.a.vb', t([2], [1, -2])],
    ['hyper.E.b.u', t([4, 2], [0, 0, 0, 0, 0, 0, 0, 0])],
    ['hyper.E.b.ub', t([4], [1, 2, 3, 4])],
    ['hyper.E.b.v', t([3, 2], [0, 0, 0, 0, 0, 0])],
    ['hyper.E.b.vb', t([3], [1, 1, 1])],
    ['hyper.L.w', t([2, 2], [1, 0, -1, 0])],
    ['hyper.L.b', t([2], [0, 0])],
  ]);
}

describe('Hypernet', () => {
  it('computes α_F, factorised α_E and α_L as documented', () => {
    const net = new Hypernet(config, tensors());
    const s = net.sensitivities(Float32Array.from([1, 0.5]));
    expect(s.alphaF[0]![0]).toBeCloseTo(Math.tanh(1), 6);
    expect(s.alphaF[0]![2]).toBeCloseTo(Math.tanh(0.5), 6);
    // α_E[a] = u vᵀ with u = 1s, v = [1, -2].
    expect(Array.from(s.alphaE[0]!.subarray(0, 2))).toEqual([1, -2]);
    expect(Array.from(s.alphaE[1]!.subarray(9, 12))).toEqual([4, 4, 4]);
    expect(s.alphaL[0]).toBeCloseTo(Math.tanh(1), 6);
    expect(s.alphaL[1]).toBeCloseTo(-Math.tanh(1), 6);
  });

  it('turns sensitivities into a strategy through Γ and Λ', () => {
    const strategy = new Hypernet(config, tensors()).strategy(Float32Array.from([1, 0.5]));
    // Layer a: scores ∝ softmax(α_F) (S equal) -> channel 0 top (8 bit tier), channel 2 next (4 bit tier).
    // Layer a is the most sensitive (α_L > 0): tiers [2,0,1,0] sit on levels [3,0,1,0]; up one, clamped -> [3,1,2,1].
    expect(Array.from(strategy.layers[0]!.levels)).toEqual([3, 1, 2, 1]);
    // Layer b: α_F equal, S = [3,6,9,12] -> channel 3 top, channel 2 next; levels [0,0,1,3], down one -> [0,0,0,2].
    expect(Array.from(strategy.layers[1]!.levels)).toEqual([0, 0, 0, 2]);
  });

  it('rejects wrong z length, non-finite z, and missing or misshapen tensors', () => {
    const net = new Hypernet(config, tensors());
    expect(() => net.sensitivities(new Float32Array(3))).toThrow(HypernetError);
    expect(() => net.sensitivities(new Float32Array(3))).toThrow(expect.objectContaining({ code: 'HYPERNET_INVALID' }));
    expect(() => net.sensitivities(Float32Array.from([NaN, 0]))).toThrow(/not finite/);
    const missing = tensors();
    missing.delete('hyper.L.w');
    expect(() => new Hypernet(config, missing)).toThrow(/missing tensor hyper.L.w/);
    const bad = tensors();
    bad.set('hyper.F.a.w', t([2, 2], [0, 0, 0, 0]));
    expect(() => new Hypernet(config, bad)).toThrow(/expected \[4,2\]/);
  });

  it('validates configs field by field', () => {
    expect(parseHypernetConfig(JSON.parse(JSON.stringify(config)))).toEqual(config);
    expect(() => parseHypernetConfig({ ...config, method: 'x' })).toThrow(/method/);
    expect(() => parseHypernetConfig({ ...config, levelTable: [2, 4, 4, 8] })).toThrow(/level table/);
    expect(() => parseHypernetConfig({ ...config, levelTable: [2, 0, 4, 8] })).toThrow(/level table/);
    expect(parseHypernetConfig({ ...config, levelTable: [0, 3, 4, 5] }).levelTable).toEqual([0, 3, 4, 5]);
    expect(() => parseHypernetConfig({ ...config, lambda: { up: 2, down: 1 } })).toThrow(/exceeds/);
    expect(() => parseHypernetConfig({ ...config, layers: [{ name: 'a', outChannels: 0, rowLength: 1 }] })).toThrow(/layers\[0\]/);
  });
});
