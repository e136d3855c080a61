/**
 * The candidate rule's bound (src/core/forward/candidates.ts): the model-derived L1 bound on the
 * representation holds for random histories under random strategies (SASRec and Caser, with and
 * without activation quantization), and a candidate at the bound cannot overflow a float32 dot
 * product summed one term at a time, as the WebGPU kernel does.
 */
import { describe, expect, it } from 'vitest';
import { backboneLayers, type BackboneConfig, type LayerSpec } from '../../src/core/backbones.ts';
import {
  candidateBound,
  CheckedCandidates,
  createForward,
  F32_MAX,
  representationDim,
  representationL1Bound,
} from '../../src/core/forward/index.ts';
import { frozenWeightsByName, generateFrozenWeights } from '../../src/core/frozen.ts';
import { dequantizeChannels, quantizeChannels } from '../../src/core/quantize.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { codeOf } from '../fixtures/forward-error-code.ts';
import { mulberry32 } from '../fixtures/mulberry32.ts';
import { randomTensors } from '../fixtures/random-tensors.ts';

const NUM_ITEMS = 30;

function biasShapes(layers: readonly LayerSpec[]): Record<string, number[]> {
  return Object.fromEntries(layers.map((l) => [`${l.name}.bias`, [l.outChannels]]));
}

function tensorsFor(config: BackboneConfig, seed: number, scale: number): TensorMap {
  const layers = backboneLayers(config);
  if (config.backbone === 'sasrec') {
    const { hidden: d, blocks, maxLen } = config.dims;
    const shapes: Record<string, number[]> = { item_emb: [NUM_ITEMS + 1, d], pos_emb: [maxLen, d], 'final_ln.gamma': [d], 'final_ln.beta': [d], ...biasShapes(layers) };
    const offsets: Record<string, number> = { 'final_ln.gamma': scale };
    for (let b = 0; b < blocks; b++) {
      for (const ln of ['ln_attn', 'ln_ffn']) {
        shapes[`block${b}.${ln}.gamma`] = [d];
        shapes[`block${b}.${ln}.beta`] = [d];
        offsets[`block${b}.${ln}.gamma`] = 1;
      }
    }
    return randomTensors(shapes, seed, offsets);
  }
  const { d } = config.dims;
  const t = randomTensors({ item_emb: [NUM_ITEMS + 1, d], user_emb: [4, d], out_emb: [NUM_ITEMS + 1, 2 * d], out_bias: [NUM_ITEMS + 1], ...biasShapes(layers) }, seed);
  const emb = t.get('item_emb')!.data;
  for (let i = 0; i < emb.length; i++) emb[i]! *= scale;
  return t;
}

const CONFIGS: readonly BackboneConfig[] = [
  { backbone: 'sasrec', dims: { hidden: 8, heads: 2, blocks: 2, ffn: 12, maxLen: 6 } },
  { backbone: 'caser', dims: { d: 6, L: 3, nv: 2, nh: 2, maxLen: 3 } },
];

describe('representationL1Bound', () => {
  it('bounds ||rep||_1 for random histories under random strategies (both backbones, with and without activation bits)', () => {
    const failures: string[] = [];
    let cases = 0;
    for (const config of CONFIGS) {
      for (const [seed, scale] of [[1, 1], [2, 30], [3, 0.01]] as const) {
        const layers = backboneLayers(config);
        const frozen = generateFrozenWeights({ seed: 100 + seed, layers });
        const tensors = tensorsFor(config, seed, scale);
        const bound = representationL1Bound(config, tensors, frozenWeightsByName(frozen));
        const rand = mulberry32(seed);
        for (let s = 0; s < 6; s++) {
          const weights = new Map(
            frozen.map(({ spec, weights }) => {
              const bits = Uint8Array.from({ length: spec.outChannels }, () => [1, 2, 4, 8][Math.floor(rand() * 4)]!);
              return [spec.name, dequantizeChannels(quantizeChannels(weights, spec, bits))];
            }),
          );
          for (const activationBits of [undefined, 2]) {
            const forward = createForward(config, tensors, weights, activationBits === undefined ? {} : { activationBits });
            for (let h = 0; h < 8; h++) {
              const history = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => 1 + Math.floor(rand() * NUM_ITEMS));
              const rep = forward.represent(history);
              const l1 = rep.reduce((a, v) => a + Math.abs(v), 0);
              cases++;
              if (!(l1 <= bound)) failures.push(`${config.backbone} seed ${seed}: ||rep||_1 = ${l1} > bound ${bound}`);
            }
          }
        }
      }
    }
    console.log(`representation bound: ${cases} cases, ${failures.length} failures`);
    expect(failures).toEqual([]);
  });
});

describe('candidate bound', () => {
  it('keeps a worst-case float32 dot product (one term at a time) finite at the bound', () => {
    for (const l1 of [1e-3, 1, 123.4, 1e6, 1e30]) {
      const { maxAbsEmbedding, maxAbsBias } = candidateBound(l1);
      for (const dim of [1, 16, 64]) {
        // The rep's L1 mass spread evenly, the candidate at the bound with the same signs.
        let s = 0;
        for (let c = 0; c < dim; c++) s = Math.fround(s + Math.fround(Math.fround(l1 / dim) * Math.fround(maxAbsEmbedding)));
        s = Math.fround(s + Math.fround(maxAbsBias));
        expect(Number.isFinite(s), `l1 ${l1} dim ${dim}`).toBe(true);
        expect(Math.abs(s)).toBeLessThanOrEqual(F32_MAX);
      }
    }
    expect(candidateBound(0).maxAbsEmbedding).toBe(F32_MAX);
    expect(codeOf(() => candidateBound(Infinity))).toBe('FORWARD_BAD_OPTION');
  });

  it('rounds to float32 once and flushes magnitudes below 2^-126 to 0', () => {
    const bound = candidateBound(1);
    const checked = CheckedCandidates.check([{ id: 'x', embedding: [0.1, 1e-40, -1e-39, -0], bias: 2 ** -127 }], 4, bound);
    expect(Array.from(checked.embeddings)).toEqual([Math.fround(0.1), 0, 0, 0]);
    expect(Object.is(checked.embeddings[3], 0)).toBe(true);
    expect(Array.from(checked.bias)).toEqual([0]);
    expect(representationDim(CONFIGS[1]!)).toBe(12);
  });
});
