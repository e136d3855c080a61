import { describe, expect, it } from 'vitest';
import { gammaAllocate } from '../../src/core/allocation.ts';
import { Hypernet } from '../../src/core/hypernet.ts';
import type { HypernetConfig } from '../../src/core/hypernet.ts';
import type { HypernetMethod } from '../../src/core/methods.ts';
import type { Strategy } from '../../src/core/strategy.ts';
import { BatchedHypernet, elementMass, gammaTiers } from '../../src/cloud/batched-hypernet.ts';
import { snapZ } from '../../src/cloud/strategy-service.ts';
import { hypernetTensors } from '../fixtures/artifacts.ts';

function config(method: HypernetMethod, rank: number, zDim = 6): HypernetConfig {
  return {
    format: 'chord-hypernet',
    version: 1,
    method,
    zDim,
    hidden: 12,
    rank,
    levelTable: [2, 4, 6, 8],
    beta: 0.125,
    lambda: { up: 1, down: 1 },
    layers: [
      { name: 'a', outChannels: 16, rowLength: 9 },
      { name: 'b', outChannels: 7, rowLength: 20 },
      { name: 'c', outChannels: 33, rowLength: 5 },
      { name: 'd', outChannels: 3, rowLength: 2 },
    ],
  };
}

function randomZ(count: number, dim: number, seed: number): Float32Array {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return Float32Array.from({ length: count * dim }, next);
}

const levels = (s: Strategy) => s.layers.map((l) => Array.from(l.levels));

describe('BatchedHypernet', () => {
  it('uses the WebAssembly SIMD kernel by default in Node', () => {
    const cfg = config('chord', 2);
    expect(new BatchedHypernet(cfg, hypernetTensors(cfg, 1)).kernel).toBe('wasm');
    expect(new BatchedHypernet(cfg, hypernetTensors(cfg, 1), { kernel: 'js' }).kernel).toBe('js');
  });

  for (const kernel of ['wasm', 'js'] as const) {
    for (const method of ['chord', 'weighted', 'custom'] as const) {
      for (const rank of [1, 2, 3]) {
        it(`equals core's per-z strategy bit for bit (${kernel} kernel, ${method}, rank ${rank})`, () => {
          const cfg = config(method, rank);
          const tensors = hypernetTensors(cfg, 11 + rank);
          const core = new Hypernet(cfg, tensors);
          const batched = new BatchedHypernet(cfg, tensors, { kernel });
          // Odd sizes, sizes around the 8-wide blocks, and 70 > the 64-item wasm chunk.
          for (const n of [1, 3, 8, 19, 70]) {
            const zs = randomZ(n, cfg.zDim, n * 7 + rank);
            const results = batched.strategies(zs, n);
            expect(results).toHaveLength(n);
            results.forEach((r, i) => {
              if (!r.ok) throw r.error;
              const want = core.strategy(zs.subarray(i * cfg.zDim, (i + 1) * cfg.zDim));
              expect(levels(r.strategy)).toEqual(levels(want));
              expect(r.strategy.levelTable).toEqual(want.levelTable);
              expect(r.strategy.beta).toBe(want.beta);
              expect(r.strategy.layers.map((l) => l.name)).toEqual(['a', 'b', 'c', 'd']);
            });
          }
        });
      }
    }
  }

  it('gives different users different strategies (the test model is not degenerate)', () => {
    const cfg = config('chord', 2);
    const batched = new BatchedHypernet(cfg, hypernetTensors(cfg, 3));
    const rs = batched.strategies(randomZ(4, cfg.zDim, 99), 4).map((r) => (r.ok ? JSON.stringify(levels(r.strategy)) : 'err'));
    expect(new Set(rs).size).toBe(4);
  });

  it.each(['wasm', 'js'] as const)('fails a non-finite z alone and leaves the rest of the batch intact (%s)', (kernel) => {
    const cfg = config('chord', 2);
    const tensors = hypernetTensors(cfg, 5);
    const core = new Hypernet(cfg, tensors);
    const batched = new BatchedHypernet(cfg, tensors, { kernel });
    const zs = randomZ(5, cfg.zDim, 4);
    zs[2 * cfg.zDim + 3] = NaN;
    zs[4 * cfg.zDim] = Infinity;
    const results = batched.strategies(zs, 5);
    expect(results.map((r) => r.ok)).toEqual([true, true, false, true, false]);
    const bad = results[2]!;
    expect(!bad.ok && bad.error.message).toBe('z[3] is not finite');
    for (const i of [0, 1, 3]) {
      const r = results[i]!;
      expect(r.ok && levels(r.strategy)).toEqual(levels(core.strategy(zs.subarray(i * cfg.zDim, (i + 1) * cfg.zDim))));
    }
  });

  it('rejects a batch whose length is not count × zDim', () => {
    const cfg = config('chord', 2);
    const batched = new BatchedHypernet(cfg, hypernetTensors(cfg, 5));
    expect(() => batched.strategies(new Float32Array(7), 1)).toThrow(/expected 1 × 6/);
  });
});

describe('BatchedHypernet: computing S only where it can matter', () => {
  const layer = (name: string, outChannels: number, rowLength: number) => ({ name, outChannels, rowLength });
  /** Bigger layers than config() so that the bound really leaves channels out. */
  function wideConfig(rank = 2): HypernetConfig {
    return { ...config('chord', rank), layers: [layer('a', 64, 20), layer('b', 40, 64), layer('c', 3, 8), layer('d', 130, 9)] };
  }
  const coreLevels = (cfg: HypernetConfig, tensors: ReturnType<typeof hypernetTensors>, zs: Float32Array, i: number) =>
    levels(new Hypernet(cfg, tensors).strategy(zs.subarray(i * cfg.zDim, (i + 1) * cfg.zDim)));

  it('leaves most channels out, and still equals core', () => {
    for (const rank of [2, 1, 3]) {
      const cfg = wideConfig(rank);
      const tensors = hypernetTensors(cfg, 21 + rank);
      const batched = new BatchedHypernet(cfg, tensors);
      const zs = randomZ(30, cfg.zDim, 5 + rank);
      batched.strategies(zs, 30).forEach((r, i) => {
        if (!r.ok) throw r.error;
        expect(levels(r.strategy)).toEqual(coreLevels(cfg, tensors, zs, i));
      });
      const computed = batched.massesComputed.reduce((a, b) => a + b, 0);
      const channels = 30 * cfg.layers.reduce((a, l) => a + l.outChannels, 0);
      expect(computed).toBeLessThan(0.7 * channels);
      // Layer c has k = 0 (3 channels at beta 0.125): no S needed at all.
      expect(batched.massesComputed[2]).toBe(0);
    }
  });

  it('equals core when scores tie in blocks (uniform softmax, a few distinct masses)', () => {
    const cfg = wideConfig();
    const tensors = hypernetTensors(cfg, 31);
    for (const ly of cfg.layers) {
      // α_F = 0 everywhere: softmax is uniform, the score is S alone.
      tensors.set(`hyper.F.${ly.name}.w`, { shape: [ly.outChannels, cfg.hidden], data: new Float32Array(ly.outChannels * cfg.hidden) });
      tensors.set(`hyper.F.${ly.name}.b`, { shape: [ly.outChannels], data: new Float32Array(ly.outChannels) });
      // U rows from three constant patterns, independent of z: S takes three values per layer.
      tensors.set(`hyper.E.${ly.name}.u`, { shape: [ly.outChannels * 2, cfg.hidden], data: new Float32Array(ly.outChannels * 2 * cfg.hidden) });
      tensors.set(`hyper.E.${ly.name}.ub`, {
        shape: [ly.outChannels * 2],
        data: Float32Array.from({ length: ly.outChannels * 2 }, (_, r) => [0.5, -0.25, 1][Math.floor(r / 2) % 3]! * (r % 2 ? 1 : -1)),
      });
    }
    for (const kernel of ['wasm', 'js'] as const) {
      const batched = new BatchedHypernet(cfg, tensors, { kernel });
      const zs = randomZ(6, cfg.zDim, 77);
      batched.strategies(zs, 6).forEach((r, i) => {
        if (!r.ok) throw r.error;
        expect(levels(r.strategy)).toEqual(coreLevels(cfg, tensors, zs, i));
      });
    }
  });

  it('still fails a z whose α_E overflows float32, also in a channel the bound would leave out and in a layer with k = 0', () => {
    for (const target of ['a', 'c']) {
      const cfg = wideConfig();
      const tensors = hypernetTensors(cfg, 41);
      const ly = cfg.layers.find((l) => l.name === target)!;
      // Channel 1's U is ~3e38 and V ~2 (its softmax weight is tiny: α_F bias -30), so U·V
      // overflows float32 and core throws on the infinite α_E.
      const ub = tensors.get(`hyper.E.${target}.ub`)!.data.slice();
      ub[2] = 3e38;
      ub[3] = 3e38;
      tensors.set(`hyper.E.${target}.ub`, { shape: [ly.outChannels * 2], data: ub });
      tensors.set(`hyper.E.${target}.vb`, { shape: [ly.rowLength * 2], data: new Float32Array(ly.rowLength * 2).fill(2) });
      const fb = tensors.get(`hyper.F.${target}.b`)!.data.slice();
      fb[1] = -30;
      tensors.set(`hyper.F.${target}.b`, { shape: [ly.outChannels], data: fb });
      for (const kernel of ['wasm', 'js'] as const) {
        const zs = randomZ(3, cfg.zDim, 9);
        const results = new BatchedHypernet(cfg, tensors, { kernel }).strategies(zs, 3);
        results.forEach((r, i) => {
          expect(() => new Hypernet(cfg, tensors).strategy(zs.subarray(i * cfg.zDim, (i + 1) * cfg.zDim))).toThrow(/alphaE/);
          expect(r.ok).toBe(false);
          expect(!r.ok && r.error.message).toMatch(/alphaE mass of channel 1 is Infinity/);
        });
      }
    }
  });
});

describe('elementMass', () => {
  it('is Σ_k |float32(Σ_r u·v)| in k order', () => {
    const u = Float32Array.from([1, 2, -1, 0.5, 3, -3]); // C = 3, rank 2
    const v = Float32Array.from([1, 1, -2, 0.25]); // R = 2
    // channel 0: |1+2| + |-2+0.5| = 4.5; channel 1: |-1+0.5| + |2+0.125| = 2.625; channel 2: |3-3| + |-6-0.75| = 6.75
    expect(Array.from(elementMass(u, v, 3, 2, 2))).toEqual([4.5, 2.625, 6.75]);
    expect(Array.from(elementMass(Float32Array.from([2, -1]), Float32Array.from([3, -4, 0.5]), 2, 3, 1))).toEqual([15, 7.5]);
  });
});

describe('gammaTiers', () => {
  it("equals core's gammaAllocate, ties (+0/-0 included) going to the lower index", () => {
    const cases: number[][] = [
      [0.5, 0.1, 0.5, 0.9, 0.1, 0.5, 0.5, 0.2],
      [0, -0, 0, 1e-30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      [3, 2, 1],
      [Infinity, 1, Infinity, 2, 0, 0, 0, 0],
      [-1, -5, 2, -0.5, -3, 7, 7, -2],
    ];
    let s = 1;
    for (let t = 0; t < 40; t++) {
      const n = 1 + (t * 37) % 300;
      // Few distinct values, so ties are common.
      cases.push(Array.from({ length: n }, () => ((s = (Math.imul(s, 69069) + 1) >>> 0) % 7) / 3));
    }
    for (const c of cases) {
      const scores = Float32Array.from(c);
      for (const beta of [0, 0.125, 0.3, 0.5]) {
        expect(Array.from(gammaTiers(scores, beta))).toEqual(Array.from(gammaAllocate(scores, beta)));
      }
    }
  });

  it('equals core on long random layers with many ties (beyond the initial scratch size)', () => {
    let s = 7;
    for (const n of [255, 256, 257, 600, 1031]) {
      const scores = Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 69069) + 1) >>> 0) % 50) / 7);
      for (const beta of [0.01, 0.125, 0.5]) expect(Array.from(gammaTiers(scores, beta))).toEqual(Array.from(gammaAllocate(scores, beta)));
    }
  });

  it('leaves NaN and bad beta to core, which throws', () => {
    expect(() => gammaTiers(Float32Array.from([1, NaN]), 0.125)).toThrow(/NaN/);
    expect(() => gammaTiers(Float32Array.from([1, 2]), 0.7)).toThrow(/beta/);
  });
});

describe('snapZ', () => {
  it('rounds to multiples of 2^-bits symmetrically and maps -0 to +0', () => {
    const z = Float32Array.from([0.3, -0.3, 1 / 8 + 1 / 32, -(1 / 8 + 1 / 32), 1 / 16 + 1 / 32, -0, 1e-9, 1 / 16, -1 / 16]);
    const q = snapZ(z, 3);
    // Halfway (±1/16 = ±0.5 steps) rounds away from zero on both sides.
    expect(Array.from(q)).toEqual([0.25, -0.25, 0.125, -0.125, 0.125, 0, 0, 0.125, -0.125]);
    expect(Object.is(q[5], 0)).toBe(true);
    // On-grid values are fixed points.
    const onGrid = Float32Array.from([0.5, -0.75, 3 / 65536]);
    expect(Array.from(snapZ(onGrid, 16))).toEqual(Array.from(onGrid));
  });
});
