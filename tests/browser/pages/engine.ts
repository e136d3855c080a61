// GPU rerank engine checks run in the page: `await page.evaluate(() => window.chordEngine.<name>(...))`.
// Every function builds its inputs from a seed, runs kernels or the engine, compares against the
// pure-TS reference of src/core (CPU) here, and returns counts and worst errors for the spec.
import {
  backboneLayers,
  type BackboneConfig,
  type CaserDims,
  DEFAULT_CASER_DIMS,
  type LayerSpec,
  type SasrecDims,
} from '../../../src/core/backbones.ts';
import { ChordError } from '../../../src/core/errors.ts';
import {
  type CandidateEmbedding,
  createForward,
  dequantizeLayers,
  rerank as cpuRerank,
  scoreCandidates,
  scoreCandidatesWithEmbeddings,
  topK,
} from '../../../src/core/forward/index.ts';
import { layerNormRows, quantizeActivationRows } from '../../../src/core/forward/ops.ts';
import { generateFrozenWeights } from '../../../src/core/frozen.ts';
import { dequantizeItemTable, quantizeItemTable } from '../../../src/core/item-table.ts';
import { dequantizePacked, packLayer, type PackedLayer } from '../../../src/core/packing.ts';
import { channelScale } from '../../../src/core/quantize.ts';
import type { Strategy } from '../../../src/core/strategy.ts';
import type { TensorMap } from '../../../src/core/tensor-file.ts';
import { attentionParams, attentionProgram } from '../../../src/gpu/attention-program.ts';
import { createBufferFrom, readBuffers, storageUsage } from '../../../src/gpu/buffers.ts';
import { caserConvHProgram, planCaserConvH } from '../../../src/gpu/caser-conv-h-program.ts';
import { caserConvVGrid, caserConvVParams, caserConvVProgram } from '../../../src/gpu/caser-conv-v-program.ts';
import { acquireGpu } from '../../../src/gpu/device.ts';
import { embedParams, embedProgram } from '../../../src/gpu/embed-program.ts';
import { createEngineBindGroup, type EngineProgram, runUniform } from '../../../src/gpu/engine-bindings.ts';
import { GpuRerankEngine } from '../../../src/gpu/engine.ts';
import { layerNormParams, layerNormProgram } from '../../../src/gpu/layer-norm-program.ts';
import { fusedMatmulGrid, fusedMatmulProgram, type MatmulJob, planFusedMatmul } from '../../../src/gpu/matmul-fused-program.ts';
import { packedLayerRef } from '../../../src/gpu/packed-layer-ref.ts';
import { getPipeline } from '../../../src/gpu/pipeline-cache.ts';
import { quantizeRowsParams, quantizeRowsProgram } from '../../../src/gpu/quantize-rows-program.ts';
import { QuantizedModelWeights } from '../../../src/gpu/quantized-weights.ts';
import { scoreParams, scoreProgram } from '../../../src/gpu/score-program.ts';
import { ROWS_ALL, ROWS_FIXED, ROWS_LAST } from '../../../src/gpu/shader-constants.ts';
import { topkChunksGrid, topkChunksParams, topkChunksProgram, topkSurvivorWords } from '../../../src/gpu/topk-chunks-program.ts';
import { topkMergeGrid, topkMergeParams, topkMergeProgram } from '../../../src/gpu/topk-merge-program.ts';
import { mulberry32 } from '../../fixtures/mulberry32.ts';
import { randomTensors } from '../../fixtures/random-tensors.ts';
import { readPacked } from './weights-probes.ts';

// ---- Inputs ----

type Rand = () => number;

function randomArray(rand: Rand, n: number, lo = -0.5, hi = 0.5): Float32Array<ArrayBuffer> {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

let shared: Promise<GPUDevice> | undefined;
function sharedDevice(): Promise<GPUDevice> {
  shared ??= acquireGpu().then((g) => g.device);
  return shared;
}

// ---- Running one kernel on buffers of the test's own ----

interface KernelInputs {
  act: Float32Array<ArrayBuffer>;
  model?: Float32Array<ArrayBuffer>;
  ids?: Uint32Array<ArrayBuffer>;
  cand?: Float32Array<ArrayBuffer>;
  outWords?: number;
  /** Initial contents of `out` (else zeros of outWords). */
  outInit?: Uint32Array<ArrayBuffer>;
  items?: Uint8Array<ArrayBuffer>;
  run?: readonly [number, number, number, number];
  weights?: QuantizedModelWeights;
}

async function runKernel(
  device: GPUDevice,
  program: EngineProgram,
  params: Uint32Array<ArrayBuffer>,
  grid: readonly [number, number],
  inputs: KernelInputs,
): Promise<{ act: Float32Array; out: Uint32Array }> {
  const usage = storageUsage();
  const padded = new Uint32Array(Math.ceil(params.length / 4) * 4);
  padded.set(params);
  const made: GPUBuffer[] = [];
  const make = (data: ArrayBufferView, u: number, label: string) => {
    const b = createBufferFrom(device, data, u, label);
    made.push(b);
    return b;
  };
  try {
    const paramsBuf = make(padded, GPUBufferUsage.UNIFORM, 'params');
    const run = make(runUniform(...(inputs.run ?? [0, 0, 0, 0])), GPUBufferUsage.UNIFORM, 'run');
    const act = make(inputs.act, usage, 'act');
    const model = make(inputs.model ?? new Float32Array(4), usage, 'model');
    const ids = make(inputs.ids ?? new Uint32Array(4), usage, 'ids');
    const cand = make(inputs.cand ?? new Float32Array(4), usage, 'cand');
    const out = make(inputs.outInit ?? new Uint32Array(Math.max(4, inputs.outWords ?? 4)), usage, 'out');
    const items = make(inputs.items ?? new Uint32Array(1), usage, 'items');
    const pipeline = await getPipeline(device, program);
    const bindGroup = createEngineBindGroup(
      device,
      pipeline,
      program,
      { run, act, model, ids, cand, out, items, ...(inputs.weights ? { weights: inputs.weights.buffers } : {}) },
      { buffer: paramsBuf },
    );
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    if (grid[0] > 0 && grid[1] > 0) pass.dispatchWorkgroups(grid[0], grid[1]);
    pass.end();
    device.queue.submit([enc.finish()]);
    const [a, o] = await readBuffers(device, [{ buffer: act }, { buffer: out }]);
    return { act: new Float32Array(a!), out: new Uint32Array(o!) };
  } finally {
    for (const b of made) b.destroy();
  }
}

// ---- Comparison ----

interface Closeness {
  compared: number;
  /** max |gpu - ref| / scale, scale = the largest |ref| of the compared block (>= 1e-30). */
  maxRelErr: number;
  refAbsMax: number;
}

function closeness(gpu: ArrayLike<number>, ref: ArrayLike<number>, gOff = 0, rOff = 0, n = ref.length - rOff): Closeness {
  let refAbsMax = 0;
  for (let i = 0; i < n; i++) refAbsMax = Math.max(refAbsMax, Math.abs(ref[rOff + i]!));
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const g = gpu[gOff + i]!;
    const r = ref[rOff + i]!;
    const e = Number.isNaN(g) !== Number.isNaN(r) ? Infinity : Math.abs(g - r);
    worst = Math.max(worst, e);
  }
  return { compared: n, maxRelErr: worst / Math.max(refAbsMax, 1e-30), refAbsMax };
}

function merge(a: Closeness, b: Closeness): Closeness {
  return { compared: a.compared + b.compared, maxRelErr: Math.max(a.maxRelErr, b.maxRelErr), refAbsMax: Math.max(a.refAbsMax, b.refAbsMax) };
}

/**
 * Fake-quantized rows from the GPU against core's quantizeActivationRows of the SAME input rows.
 * A value may differ only by one step where core's quotient (v - lo) / s lies within 1e-4 of a
 * .5 boundary (the kernel divides in f32); anything else is "unexplained".
 */
function quantParity(gpuQ: Float32Array, qOff: number, input: Float32Array, inOff: number, width: number, rows: number, bits: number) {
  const src = input.slice(inOff, inOff + width * rows);
  const ref = new Float32Array(src.length);
  quantizeActivationRows(src, width, 0, rows, bits, ref);
  let exact = 0;
  let nearTie = 0;
  let unexplained = 0;
  let firstUnexplained: string | null = null;
  for (let r = 0; r < rows; r++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let j = 0; j < width; j++) {
      lo = Math.min(lo, src[r * width + j]!);
      hi = Math.max(hi, src[r * width + j]!);
    }
    lo += 0;
    hi += 0;
    const s = channelScale(lo, hi, bits);
    for (let j = 0; j < width; j++) {
      const i = r * width + j;
      const g = gpuQ[qOff + i]!;
      if (Object.is(g, ref[i]) || g === ref[i]) {
        exact++;
        continue;
      }
      const t = s === 0 ? 0 : (src[i]! - lo) / s;
      const frac = t - Math.floor(t);
      if (s > 0 && Math.abs(frac - 0.5) < 1e-4 && Math.abs(g - ref[i]!) <= s * 1.0000001 + Math.abs(hi) * 1e-6) nearTie++;
      else {
        unexplained++;
        firstUnexplained ??= `row ${r} col ${j}: v ${src[i]} gpu ${g} cpu ${ref[i]} (lo ${lo} hi ${hi} s ${s} t ${t})`;
      }
    }
  }
  return { compared: rows * width, exact, nearTie, unexplained, firstUnexplained };
}

// ---- Kernels ----

/** One row of a kind chosen to hit a quantizer path: random, constant, ±0, exact ties, tiny, huge, one outlier. */
function quantRow(kind: number, rand: Rand, width: number, bits: number): Float32Array {
  const row = new Float32Array(width);
  const n = 2 ** bits - 1;
  switch (kind % 7) {
    case 0:
      for (let j = 0; j < width; j++) row[j] = (rand() - 0.3) * 4;
      break;
    case 1:
      row.fill(Math.fround(0.7 + rand()));
      break;
    case 2:
      for (let j = 0; j < width; j++) row[j] = j % 2 ? -0 : 0;
      break;
    case 3: {
      // Every interior value on an exact .5 tie, so half-to-even decides: scale 2^-8 (range n/256),
      // lo in [1, 2) so that v - lo and the quotient are exact in f32 too (Sterbenz).
      const lo = 1 + Math.floor(rand() * 1024) / 1024;
      const s = 2 ** -8;
      for (let j = 0; j < width; j++) row[j] = lo + ((j % n) + 0.5) * s;
      row[0] = lo;
      row[width - 1] = lo + n * s;
      break;
    }
    case 4:
      for (let j = 0; j < width; j++) row[j] = Math.fround(1e-3 + rand() * 1e-7);
      break;
    case 5:
      for (let j = 0; j < width; j++) row[j] = (rand() - 0.5) * 2e6;
      break;
    default:
      for (let j = 0; j < width; j++) row[j] = Math.max(0, rand() - 0.5); // ReLU output: lo = 0
      row[Math.floor(rand() * width)] = 50;
  }
  return row;
}

async function quantizeKernel(opts: { seed: number; width: number; rows: number; bits: number }) {
  const { seed, width, rows, bits } = opts;
  const device = await sharedDevice();
  const rand = mulberry32(seed);
  const x = new Float32Array(2 * rows * width);
  for (let r = 0; r < rows; r++) x.set(quantRow(r + seed, rand, width, bits), r * width);
  const params = quantizeRowsParams({ width, rowMode: ROWS_FIXED, fixedRows: rows, bits, inOffset: 0, outOffset: rows * width });
  const { act } = await runKernel(device, quantizeRowsProgram, params, [Math.ceil(rows / 64), 1], { act: x });
  return quantParity(act, rows * width, x, 0, width, rows, bits);
}

async function layerNormKernel(opts: { seed: number; rows: number; width: number; bits?: number; lastOnly?: boolean }) {
  const { seed, rows, width, bits } = opts;
  const device = await sharedDevice();
  const rand = mulberry32(seed);
  const x = new Float32Array(4 * rows * width);
  for (let r = 0; r < rows; r++) {
    const offset = (rand() - 0.5) * 10;
    const spread = 0.1 + rand() * 5;
    for (let j = 0; j < width; j++) x[r * width + j] = offset + (rand() - 0.5) * spread;
  }
  const model = new Float32Array([...randomArray(rand, width, 0.5, 1.5), ...randomArray(rand, width)]);
  const eps = 1e-8;
  const Y = rows * width;
  const params = layerNormParams({
    width,
    rowMode: opts.lastOnly ? ROWS_LAST : ROWS_ALL,
    inOffset: 0,
    outOffset: Y,
    outStride: width,
    gammaOffset: 0,
    betaOffset: width,
    eps,
    ...(bits === undefined ? {} : { quant: { bits, outOffset: 2 * Y, inOffset: 3 * Y } }),
  });
  const grid: [number, number] = [opts.lastOnly ? 1 : Math.ceil(rows / 64), 1];
  const { act } = await runKernel(device, layerNormProgram, params, grid, { act: x, model, run: [rows, 0, 0, 0] });
  const ref = new Float32Array(Y);
  const r0 = opts.lastOnly ? rows - 1 : 0;
  layerNormRows(x, width, r0, rows, model.subarray(0, width), model.subarray(width), eps, ref);
  const norm = closeness(act, ref, Y + r0 * width, r0 * width, (rows - r0) * width);
  // Rows outside the range must be untouched (still 0).
  let untouched = 0;
  for (let i = Y; i < Y + r0 * width; i++) if (act[i] === 0) untouched++;
  if (bits === undefined) return { norm, untouched, expectedUntouched: r0 * width, quantOut: null, quantIn: null };
  // The quantized output is checked against core's quantizer applied to the GPU's own norm output.
  const quantOut = quantParity(act, 2 * Y + r0 * width, act, Y + r0 * width, width, rows - r0, bits);
  const quantIn = quantParity(act, 3 * Y + r0 * width, x, r0 * width, width, rows - r0, bits);
  return { norm, untouched, expectedUntouched: r0 * width, quantOut, quantIn };
}

async function embedKernel(opts: { seed: number; withPositions: boolean }) {
  const device = await sharedDevice();
  const rand = mulberry32(opts.seed);
  const d = 64;
  const items = 40;
  const L = 12;
  const emb = randomArray(rand, (items + 1) * d);
  const pos = randomArray(rand, L * d);
  const model = new Float32Array([...emb, ...pos]);
  const rows = opts.withPositions ? 9 : L;
  const ids = new Uint32Array(2 * L);
  for (let r = 0; r < rows; r++) {
    ids[r] = opts.withPositions ? 1 + Math.floor(rand() * items) : r % 4 === 1 ? 0 : 1 + Math.floor(rand() * items);
    ids[L + r] = L - rows + r;
  }
  const scale = opts.withPositions ? Math.sqrt(d) : 1;
  const params = embedParams({
    d,
    rowMode: opts.withPositions ? ROWS_ALL : ROWS_FIXED,
    fixedRows: L,
    outOffset: 0,
    embOffset: 0,
    ...(opts.withPositions ? { posOffset: emb.length } : {}),
    scale,
    idsOffset: 0,
    slotsOffset: L,
  });
  const { act } = await runKernel(device, embedProgram, params, [rows, 1], { act: new Float32Array(L * d).fill(7), model, ids, run: [rows, 0, 0, 0] });
  const ref = new Float32Array(L * d).fill(7);
  for (let r = 0; r < rows; r++) {
    const id = ids[r]!;
    for (let j = 0; j < d; j++) {
      ref[r * d + j] = id === 0 ? 0 : emb[id * d + j]! * scale + (opts.withPositions ? pos[ids[L + r]! * d + j]! : 0);
    }
  }
  return closeness(act, ref);
}

/** Random mixed strategy over `layers`: per channel a random level of [2, 4, 6, 8] (or `table`). */
function randomStrategy(layers: readonly { name: string; outChannels: number }[], seed: number, table: Strategy['levelTable'] = [2, 4, 6, 8]): Strategy {
  const rand = mulberry32(seed);
  return {
    levelTable: table,
    beta: 0.125,
    layers: layers.map((l) => ({ name: l.name, levels: Uint8Array.from({ length: l.outChannels }, () => Math.floor(rand() * 4)) })),
  };
}

/** y[r, o] = sum_k x[r, k] w[o, k] in f64, for reference with the magnitude sum_k |x w|. */
function refLinear(x: Float32Array, xOff: number, xStride: number, w: Float32Array, K: number, N: number, r: number, o: number) {
  let s = 0;
  let mag = 0;
  for (let k = 0; k < K; k++) {
    const p = x[xOff + r * xStride + k]! * w[o * K + k]!;
    s += p;
    mag += Math.abs(p);
  }
  return { s, mag };
}

async function matmulKernel(opts: { seed: number; n: number }) {
  const device = await sharedDevice();
  const rand = mulberry32(opts.seed);
  const d = 64;
  const F = 256;
  const L = 50;
  const n = opts.n;
  const layers = [
    { name: 'q', outChannels: d, rowLength: d },
    { name: 'k', outChannels: d, rowLength: d },
    { name: 'v', outChannels: d, rowLength: d },
    { name: 'in', outChannels: F, rowLength: d },
    { name: 'out', outChannels: d, rowLength: F },
    { name: 'conv', outChannels: 4, rowLength: 5 },
  ];
  const frozen = layers.map((l) => randomArray(rand, l.outChannels * l.rowLength, -0.3, 0.3));
  const weights = await QuantizedModelWeights.create(device, layers, frozen);
  try {
    await weights.adapt(randomStrategy(layers, opts.seed + 1));
    const deq = new Map<string, Float32Array>();
    for (const l of layers) deq.set(l.name, dequantizePacked(await readPacked(weights, l.name)));
    const widths = layers.map((l) => weights.bitsOf(l.name)).map((b) => new Set(b).size);

    // act: X [L, d] | X2 [L, d] | H [L, F] | R [L, d] | outputs ...
    const X = 0;
    const X2 = L * d;
    const H = 2 * L * d;
    const R = H + L * F;
    const YQ = R + L * d;
    const YK = YQ + L * d;
    const YV = YK + L * d;
    const YF = YV + L * d;
    const YO = YF + L * F;
    const YC = YO + L * d;
    const size = YC + 7 * 16 + 8;
    const act = new Float32Array(size).fill(-1234.5); // sentinel everywhere outputs may not land
    act.set(randomArray(rand, 3 * L * d + L * F, -1, 1), 0);
    act.set(randomArray(rand, L * d, -1, 1), R);
    const model = randomArray(rand, 3 * d + F + d + 4);
    const biasQ = 0;
    const biasK = d;
    const biasV = 2 * d;
    const biasF = 3 * d;
    const biasO = 3 * d + F;
    const biasC = biasO + d;
    // Residual in place: ffn.out writes onto its residual rows (as SASRec's x += ffn(x)).
    act.set(act.subarray(R, R + L * d), YO);
    const residualBefore = act.slice(YO, YO + L * d);

    const ref = (name: string) => packedLayerRef(weights, name);
    const plans = [
      planFusedMatmul([
        { layer: ref('q'), rowMode: ROWS_LAST, xOffset: X, yOffset: YQ, biasOffset: biasQ },
        { layer: ref('k'), rowMode: ROWS_ALL, xOffset: X2, yOffset: YK, biasOffset: biasK },
        { layer: ref('v'), rowMode: ROWS_ALL, xOffset: X2, yOffset: YV, biasOffset: biasV },
      ]),
      planFusedMatmul([{ layer: ref('in'), rowMode: ROWS_ALL, xOffset: X, yOffset: YF, biasOffset: biasF, relu: true }]),
      planFusedMatmul([
        { layer: ref('out'), rowMode: ROWS_ALL, xOffset: H, yOffset: YO, biasOffset: biasO, residual: { offset: YO, stride: d } },
      ]),
      // Row strides other than the row length / channel count: x rows overlap (stride 3 < K = 5),
      // y rows leave gaps (stride 7 > N = 4).
      planFusedMatmul([
        { layer: ref('conv'), rowMode: ROWS_FIXED, fixedRows: 16, xOffset: X, xStride: 3, yOffset: YC, yStride: 7, biasOffset: biasC } as MatmulJob,
      ]),
    ];
    let current = act;
    for (const plan of plans.slice(0, 3)) {
      current = (await runKernel(device, fusedMatmulProgram, plan.params, fusedMatmulGrid(plan, n), { act: current, model, run: [n, 0, 0, 0], weights })).act as Float32Array<ArrayBuffer>;
    }
    const gpu = current;

    let worst = 0;
    let compared = 0;
    const check = (got: number, want: number, mag: number) => {
      worst = Math.max(worst, Math.abs(got - want) / Math.max(mag, 1e-30));
      compared++;
    };
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < d; o++) {
        if (r === n - 1) {
          const q = refLinear(act, X, d, deq.get('q')!, d, d, r, o);
          check(gpu[YQ + r * d + o]!, q.s + model[biasQ + o]!, q.mag + Math.abs(model[biasQ + o]!));
        }
        const k = refLinear(act, X2, d, deq.get('k')!, d, d, r, o);
        check(gpu[YK + r * d + o]!, k.s + model[biasK + o]!, k.mag + Math.abs(model[biasK + o]!));
        const v = refLinear(act, X2, d, deq.get('v')!, d, d, r, o);
        check(gpu[YV + r * d + o]!, v.s + model[biasV + o]!, v.mag + Math.abs(model[biasV + o]!));
        const y = refLinear(act, H, F, deq.get('out')!, F, d, r, o);
        const res = residualBefore[r * d + o]!;
        check(gpu[YO + r * d + o]!, res + y.s + model[biasO + o]!, Math.abs(res) + y.mag + Math.abs(model[biasO + o]!));
      }
      for (let o = 0; o < F; o++) {
        const f = refLinear(act, X, d, deq.get('in')!, d, F, r, o);
        check(gpu[YF + r * F + o]!, Math.max(0, f.s + model[biasF + o]!), f.mag + Math.abs(model[biasF + o]!));
      }
    }
    // Nothing outside the computed rows: Q rows before n-1, and every row >= n, keep the sentinel.
    let sentinels = 0;
    let sentinelsExpected = 0;
    const sentinel = (region: number, width: number, from: number) => {
      for (let i = region + from * width; i < region + L * width; i++, sentinelsExpected++) if (gpu[i] === -1234.5) sentinels++;
    };
    sentinel(YK, d, n);
    sentinel(YV, d, n);
    sentinel(YF, F, n);
    for (let i = YQ; i < YQ + (n - 1) * d; i++, sentinelsExpected++) if (gpu[i] === -1234.5) sentinels++;
    sentinel(YQ, d, n);

    // The strided conv.v-shaped job on its own.
    const convPlan = plans[3]!;
    const c = (await runKernel(device, fusedMatmulProgram, convPlan.params, fusedMatmulGrid(convPlan, 0), { act, model, weights })).act;
    for (let j = 0; j < 16; j++) {
      for (let f = 0; f < 4; f++) {
        let s = 0;
        let mag = 0;
        for (let l = 0; l < 5; l++) {
          const p = act[X + j * 3 + l]! * deq.get('conv')![f * 5 + l]!;
          s += p;
          mag += Math.abs(p);
        }
        check(c[YC + j * 7 + f]!, s + model[biasC + f]!, mag + Math.abs(model[biasC + f]!));
      }
    }
    return { compared, maxRelErr: worst, widths, sentinels, sentinelsExpected };
  } finally {
    weights.destroy();
  }
}

/** Causal attention in f64, transcribed from src/core/forward/sasrec.ts (private there). */
function refAttention(q: Float32Array, k: Float32Array, v: Float32Array, d: number, heads: number, r: number, out: Float64Array) {
  const dh = d / heads;
  const scale = 1 / Math.sqrt(dh);
  for (let h = 0; h < heads; h++) {
    const att: number[] = [];
    let max = -Infinity;
    for (let j = 0; j <= r; j++) {
      let s = 0;
      for (let c = 0; c < dh; c++) s += q[r * d + h * dh + c]! * k[j * d + h * dh + c]!;
      att.push(s * scale);
      max = Math.max(max, s * scale);
    }
    const e = att.map((s) => Math.exp(s - max));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < dh; c++) {
      let acc = 0;
      for (let j = 0; j <= r; j++) acc += e[j]! * v[j * d + h * dh + c]!;
      out[r * d + h * dh + c] = acc / sum;
    }
  }
}

async function attentionKernel(opts: { seed: number; n: number; d: number; heads: number; lastOnly: boolean }) {
  const { seed, n, d, heads, lastOnly } = opts;
  const device = await sharedDevice();
  const rand = mulberry32(seed);
  const q = randomArray(rand, n * d, -2, 2);
  const k = randomArray(rand, n * d, -2, 2);
  const v = randomArray(rand, n * d, -1, 1);
  const act = new Float32Array(4 * n * d).fill(-1234.5);
  act.set(q, 0);
  act.set(k, n * d);
  act.set(v, 2 * n * d);
  const params = attentionParams({
    d,
    heads,
    rowMode: lastOnly ? ROWS_LAST : ROWS_ALL,
    qOffset: 0,
    kOffset: n * d,
    vOffset: 2 * n * d,
    outOffset: 3 * n * d,
  });
  const grid: [number, number] = [Math.ceil(((lastOnly ? 1 : n) * heads) / 64), 1];
  const { act: gpu } = await runKernel(device, attentionProgram, params, grid, { act, run: [n, 0, 0, 0] });
  const ref = new Float64Array(n * d);
  const r0 = lastOnly ? n - 1 : 0;
  for (let r = r0; r < n; r++) refAttention(q, k, v, d, heads, r, ref);
  const attention = closeness(gpu, ref, 3 * n * d + r0 * d, r0 * d, (n - r0) * d);
  // Rows before r0 are not computed: they keep the sentinel.
  let untouched = 0;
  for (let i = 3 * n * d; i < 3 * n * d + r0 * d; i++) if (gpu[i] === -1234.5) untouched++;
  return { attention, untouched, expectedUntouched: r0 * d };
}

async function caserConvKernels(opts: { seed: number }) {
  const device = await sharedDevice();
  const dims: CaserDims = DEFAULT_CASER_DIMS;
  const { d, L, nv, nh } = dims;
  const specs = backboneLayers({ backbone: 'caser', dims }).filter((s) => s.name !== 'fc1');
  const frozen = generateFrozenWeights({ seed: opts.seed, layers: specs });
  const layers = specs.map(({ name, outChannels, rowLength }) => ({ name, outChannels, rowLength }));
  const weights = await QuantizedModelWeights.create(device, layers, frozen.map((f) => f.weights));
  try {
    await weights.adapt(randomStrategy(layers, opts.seed));
    const deq = new Map<string, Float32Array>();
    for (const l of layers) deq.set(l.name, dequantizePacked(await readPacked(weights, l.name)));
    const rand = mulberry32(opts.seed + 7);
    const img = randomArray(rand, L * d, -1, 1);
    img.fill(0, d, 2 * d); // a padding row
    const featureLen = nv * d + nh * L;
    const model = randomArray(rand, nv + nh * L, -0.2, 0.2);
    const act = new Float32Array(L * d + featureLen);
    act.set(img, 0);
    const F0 = L * d;

    const vParams = { layer: packedLayerRef(weights, 'conv.v'), d, imgOffset: 0, outOffset: F0, biasOffset: 0 };
    const afterV = (await runKernel(device, caserConvVProgram, caserConvVParams(vParams), caserConvVGrid(vParams), { act, model, weights })).act;
    const hPlan = planCaserConvH(
      d,
      L,
      0,
      Array.from({ length: L }, (_, i) => ({
        layer: packedLayerRef(weights, `conv.h${i + 1}`),
        h: i + 1,
        outOffset: F0 + nv * d + i * nh,
        biasOffset: nv + i * nh,
      })),
    );
    const gpu = (await runKernel(device, caserConvHProgram, hPlan.params, [hPlan.tiles, 1], { act: afterV as Float32Array<ArrayBuffer>, model, weights })).act;

    // Reference: the loops of src/core/forward/caser.ts in f64, with the same dequantized weights.
    const ref = new Float64Array(featureLen);
    const wv = deq.get('conv.v')!;
    for (let f = 0; f < nv; f++) {
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let l = 0; l < L; l++) s += wv[f * L + l]! * img[l * d + j]!;
        ref[f * d + j] = s + model[f]!;
      }
    }
    for (let h = 1; h <= L; h++) {
      const wh = deq.get(`conv.h${h}`)!;
      for (let o = 0; o < nh; o++) {
        let best = -Infinity;
        for (let i = 0; i + h <= L; i++) {
          let s = 0;
          for (let k = 0; k < h * d; k++) s += img[i * d + k]! * wh[o * h * d + k]!;
          best = Math.max(best, s + model[nv + (h - 1) * nh + o]!);
        }
        ref[nv * d + (h - 1) * nh + o] = Math.max(best, 0);
      }
    }
    const widths = layers.map((l) => new Set(weights.bitsOf(l.name)).size);
    return {
      convV: closeness(gpu, ref, F0, 0, nv * d),
      convH: closeness(gpu, ref, F0 + nv * d, nv * d, nh * L),
      positiveFeatures: Array.from(ref.subarray(nv * d)).filter((v) => v > 0).length,
      widths,
    };
  } finally {
    weights.destroy();
  }
}

async function scoreKernel(opts: { seed: number; dim: number; count: number; withBias: boolean }) {
  const { seed, dim, count, withBias } = opts;
  const device = await sharedDevice();
  const rand = mulberry32(seed);
  const items = 500;
  const table = randomArray(rand, (items + 1) * dim);
  const bias = randomArray(rand, items + 1);
  const rep = randomArray(rand, dim, -2, 2);
  const ids = Uint32Array.from({ length: count }, () => 1 + Math.floor(rand() * items));
  const cands: CandidateEmbedding[] = Array.from({ length: count }, (_, i) => ({
    id: `c${i}`,
    embedding: randomArray(rand, dim),
    ...(i % 3 === 0 ? {} : { bias: rand() - 0.5 }),
  }));
  const model = new Float32Array([...table, ...bias]);
  const act = new Float32Array(dim + count);
  act.set(rep, 0);
  const candBuf = new Float32Array(count * dim + count);
  cands.forEach((c, i) => {
    candBuf.set(c.embedding as Float32Array, i * dim);
    candBuf[count * dim + i] = c.bias ?? 0;
  });
  const params = scoreParams({
    dim,
    repOffset: 0,
    scoresOffset: dim,
    idsOffset: 0,
    embOffset: 0,
    ...(withBias ? { biasOffset: table.length } : {}),
    candBiasOffset: count * dim,
  });
  const grid: [number, number] = [Math.ceil(count / 64), 1];
  const byId = await runKernel(device, scoreProgram, params, grid, { act, model, ids, cand: candBuf, run: [0, count, 0, 0] });
  const byEmb = await runKernel(device, scoreProgram, params, grid, { act, model, ids, cand: candBuf, run: [0, count, 0, 1] });
  const refIds = scoreCandidates(rep, { dim, numItems: items, embeddings: table, bias: withBias ? bias : null }, ids);
  const refEmb = scoreCandidatesWithEmbeddings(rep, cands);
  return { ids: closeness(byId.act, refIds, dim), embeddings: closeness(byEmb.act, refEmb, dim) };
}

/** GPU top-k on given scores against core's topK: the order must be identical. */
async function topkKernel(opts: { scores: number[] | { seed: number; count: number; distinct: number }; k: number }) {
  const device = await sharedDevice();
  let scores: Float32Array<ArrayBuffer>;
  if (Array.isArray(opts.scores)) scores = Float32Array.from(opts.scores);
  else {
    const rand = mulberry32(opts.scores.seed);
    const { count, distinct } = opts.scores;
    // Few distinct values: many ties, so the index tie-break decides most of the order.
    const values = [...randomArray(rand, distinct, -3, 3), NaN, -Infinity, Infinity, 0, -0];
    scores = Float32Array.from({ length: count }, () => values[Math.floor(rand() * values.length)]!);
  }
  const count = scores.length;
  const k = Math.min(opts.k, count);
  // The engine's two passes: survivors per chunk, then their ranking into out[final ..].
  const final = topkSurvivorWords(count);
  const pass1 = await runKernel(device, topkChunksProgram, topkChunksParams(0), topkChunksGrid(count), {
    act: scores,
    outWords: final + 2 * count,
    run: [0, count, k, 0],
  });
  const { out: merged } = await runKernel(device, topkMergeProgram, topkMergeParams(final, 0), topkMergeGrid(count), {
    act: scores,
    outInit: new Uint32Array(pass1.out),
    run: [0, count, k, 0],
  });
  const out = merged.subarray(final);
  const want = topK(scores, k);
  const got = Array.from({ length: k }, (_, r) => out[2 * r]!);
  const scoreBitsOk = got.every((i, r) => out[2 * r + 1] === new Uint32Array(scores.buffer)[i]);
  let mismatches = 0;
  for (let r = 0; r < k; r++) if (got[r] !== want[r]) mismatches++;
  return { k, mismatches, scoreBitsOk, firstGot: got.slice(0, 8), firstWant: Array.from(want.slice(0, 8)) };
}

// ---- Whole models ----

const SASREC: SasrecDims = { hidden: 64, heads: 2, blocks: 2, ffn: 256, maxLen: 50 };

function configOf(backbone: 'sasrec' | 'caser'): BackboneConfig {
  return backbone === 'sasrec' ? { backbone, dims: SASREC } : { backbone, dims: DEFAULT_CASER_DIMS };
}

function trainedTensors(config: BackboneConfig, layers: readonly LayerSpec[], numItems: number, seed: number): TensorMap {
  const biases = Object.fromEntries(layers.map((l) => [`${l.name}.bias`, [l.outChannels]]));
  if (config.backbone === 'sasrec') {
    const { hidden: d, blocks, maxLen } = config.dims;
    const shapes: Record<string, number[]> = {
      item_emb: [numItems + 1, d],
      pos_emb: [maxLen, d],
      'final_ln.gamma': [d],
      'final_ln.beta': [d],
      ...biases,
    };
    const offsets: Record<string, number> = { 'final_ln.gamma': 1 };
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
  return randomTensors(
    { item_emb: [numItems + 1, d], user_emb: [7, d], out_emb: [numItems + 1, 2 * d], out_bias: [numItems + 1], ...biases },
    seed,
    {},
  );
}

interface TestModel {
  config: BackboneConfig;
  tensors: TensorMap;
  frozen: ReturnType<typeof generateFrozenWeights>;
  strategy: Strategy;
  numItems: number;
}

function testModel(backbone: 'sasrec' | 'caser', seed: number, numItems = 300, levelTable?: Strategy['levelTable']): TestModel {
  const config = configOf(backbone);
  const layers = backboneLayers(config);
  return {
    config,
    tensors: trainedTensors(config, layers, numItems, seed),
    frozen: generateFrozenWeights({ seed: 1000 + seed, layers }),
    strategy: randomStrategy(layers, seed + 77, levelTable),
    numItems,
  };
}

/** The CPU path for a model and strategy: core packing + dequantization + the TS forward. */
function cpuForward(m: TestModel, activationBits?: number) {
  const packed = new Map<string, PackedLayer>();
  m.frozen.forEach((f, l) => {
    const s = m.strategy.layers[l]!;
    const bits = Uint8Array.from(s.levels, (v) => m.strategy.levelTable[v]!);
    packed.set(f.spec.name, packLayer(f.weights, f.spec.outChannels, f.spec.rowLength, bits));
  });
  return createForward(m.config, m.tensors, dequantizeLayers(packed), activationBits === undefined ? {} : { activationBits });
}

function histories(rand: Rand, numItems: number, inputLen: number): number[][] {
  const item = () => 1 + Math.floor(rand() * numItems);
  return [
    [item()],
    Array.from({ length: 7 }, item),
    Array.from({ length: inputLen }, item),
    Array.from({ length: inputLen + 13 }, item), // longer than the window
    Array.from({ length: 20 }, (_, i) => (i % 5 === 2 ? 0 : item())), // padding inside
    [],
    [item(), item(), 0], // padded last slot
  ];
}

async function forwardParity(opts: { backbone: 'sasrec' | 'caser'; seed: number; activationBits?: number; levelTable?: Strategy['levelTable'] }) {
  const device = await sharedDevice();
  const m = testModel(opts.backbone, opts.seed, undefined, opts.levelTable);
  const cpu = cpuForward(m, opts.activationBits);
  // With activation quantization on, the distance to the unquantized forward shows it is applied.
  const cpuFloat = cpuForward(m);
  const engine = await GpuRerankEngine.create(device, m.config, m.tensors, m.frozen, opts.activationBits === undefined ? {} : { activationBits: opts.activationBits });
  try {
    await engine.applyStrategy(m.strategy);
    const rand = mulberry32(opts.seed + 5);
    const results: (Closeness & { length: number; vsFloat: number })[] = [];
    for (const h of histories(rand, m.numItems, cpu.inputLen)) {
      const gpu = await engine.represent(h);
      const ref = cpu.represent(h);
      results.push({ length: h.length, ...closeness(gpu, ref), vsFloat: closeness(gpu, cpuFloat.represent(h)).maxRelErr });
    }
    return { repDim: engine.repDim, results };
  } finally {
    engine.destroy();
  }
}

/** Counts queue.submit and mapAsync calls made while `work` runs (independently of the engine's counters). */
async function countGpuCalls<T>(work: () => Promise<T>): Promise<{ value: T; submits: number; maps: number }> {
  const submit = GPUQueue.prototype.submit;
  const mapAsync = GPUBuffer.prototype.mapAsync;
  let submits = 0;
  let maps = 0;
  GPUQueue.prototype.submit = function (this: GPUQueue, ...args: Parameters<GPUQueue['submit']>) {
    submits++;
    return submit.apply(this, args);
  };
  GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer['mapAsync']>) {
    maps++;
    return mapAsync.apply(this, args);
  };
  try {
    return { value: await work(), submits, maps };
  } finally {
    GPUQueue.prototype.submit = submit;
    GPUBuffer.prototype.mapAsync = mapAsync;
  }
}

async function rankingParity(opts: { backbone: 'sasrec' | 'caser'; seeds: number[]; candidates: number; k: number; activationBits?: number; levelTable?: Strategy['levelTable'] }) {
  const device = await sharedDevice();
  const out = [];
  for (const seed of opts.seeds) {
    const m = testModel(opts.backbone, seed, undefined, opts.levelTable);
    const cpu = cpuForward(m, opts.activationBits);
    const engine = await GpuRerankEngine.create(device, m.config, m.tensors, m.frozen, {
      maxCandidates: opts.candidates,
      ...(opts.activationBits === undefined ? {} : { activationBits: opts.activationBits }),
    });
    try {
      await engine.applyStrategy(m.strategy);
      const rand = mulberry32(seed + 11);
      const history = Array.from({ length: 3 + Math.floor(rand() * 60) }, () => 1 + Math.floor(rand() * m.numItems));
      const candidates = Array.from({ length: opts.candidates }, () => 1 + Math.floor(rand() * m.numItems));
      candidates[candidates.length - 1] = candidates[0]!; // a duplicate: an exact tie, index decides
      const before = { submits: engine.submits, readbacks: engine.readbacks };
      const counted = await countGpuCalls(() => engine.rerank(history, candidates, opts.k));
      const gpu = counted.value;
      const engineCounts = { submits: engine.submits - before.submits, readbacks: engine.readbacks - before.readbacks };
      const ref = cpuRerank(cpu, history, candidates, opts.k);
      const cpuIds = Array.from(ref.order, (i) => candidates[i]!);
      const cpuScores = Array.from(ref.order, (i) => ref.scores[i]!);

      // Shop-provided embeddings (the catalogue rows themselves) must rank the same way.
      const table = cpu.scoring;
      const embCands: CandidateEmbedding[] = candidates.slice(0, opts.candidates).map((id, i) => ({
        id: `sku-${i}`,
        embedding: table.embeddings.subarray(id * table.dim, (id + 1) * table.dim),
        ...(table.bias ? { bias: table.bias[id]! } : {}),
      }));
      const gpuEmb = await engine.rerank(history, embCands, opts.k);
      const refEmb = topK(scoreCandidatesWithEmbeddings(cpu.represent(history), embCands), opts.k);

      out.push({
        seed,
        identical: gpu.ids.length === cpuIds.length && gpu.ids.every((id, r) => id === cpuIds[r]),
        orderIdentical: Array.from(gpu.order).every((i, r) => i === ref.order[r]),
        embeddingsIdentical: gpuEmb.ids.every((id, r) => id === `sku-${refEmb[r]}`) && gpuEmb.ids.length === refEmb.length,
        scores: closeness(gpu.scores, cpuScores),
        gpuTop: gpu.ids.slice(0, 5),
        cpuTop: cpuIds.slice(0, 5),
        counted: { submits: counted.submits, maps: counted.maps },
        engineCounts,
      });
    } finally {
      engine.destroy();
    }
  }
  return out;
}

function describeError(err: unknown) {
  if (err instanceof ChordError) {
    return { name: err.name, code: err.code, reason: (err as { reason?: string }).reason ?? null, message: err.message };
  }
  return { name: err instanceof Error ? err.name : typeof err, code: null, reason: null, message: String(err) };
}

async function settle(p: Promise<unknown>) {
  try {
    await p;
    return null;
  } catch (err) {
    return describeError(err);
  }
}

/** Device loss during a rerank and afterwards; destroy(); bad inputs. */
async function lifecycle() {
  const m = testModel('sasrec', 3, 50);
  const { device } = await acquireGpu();
  const engine = await GpuRerankEngine.create(device, m.config, m.tensors, m.frozen, { maxCandidates: 20 });
  const beforeStrategy = await settle(engine.rerank([1, 2], [3, 4]));
  await engine.applyStrategy(m.strategy);
  const ok = await engine.rerank([1, 2, 3], [4, 5, 6, 7], 2);
  const tooMany = await settle(engine.rerank([1], Array.from({ length: 21 }, (_, i) => 1 + i)));
  const badItem = await settle(engine.rerank([1, 999], [4, 5]));
  const badCandidate = await settle(engine.rerank([1], [4, 0]));
  const badEmbedding = await settle(engine.rerank([1], [{ id: 'x', embedding: new Float32Array(3) }]));
  const empty = await engine.rerank([1], [4, 5], 0);
  // A strategy for another model is refused and the applied one stays in use.
  const badStrategy = await settle(engine.applyStrategy({ ...m.strategy, layers: m.strategy.layers.slice(1) }));
  const afterBadStrategy = await engine.rerank([1, 2, 3], [4, 5, 6, 7], 2);
  // Two reranks in flight, then the device goes away.
  const p1 = engine.rerank([1, 2, 3], [4, 5, 6]);
  const p2 = engine.rerank([1, 2, 3], [4, 5, 6]);
  device.destroy();
  const [inflight1, inflight2] = await Promise.all([settle(p1), settle(p2)]);
  const afterLoss = await settle(engine.rerank([1], [4]));
  const lostSignal = describeError(await engine.lost);
  engine.destroy();

  // A rebuilt engine on a new device works; destroy() then refuses further calls.
  const fresh = await acquireGpu();
  const rebuilt = await GpuRerankEngine.create(fresh.device, m.config, m.tensors, m.frozen, { maxCandidates: 20 });
  await rebuilt.applyStrategy(m.strategy);
  const again = await rebuilt.rerank([1, 2, 3], [4, 5, 6, 7], 2);
  rebuilt.destroy();
  const afterDestroy = await settle(rebuilt.rerank([1], [4]));
  fresh.device.destroy();
  return {
    beforeStrategy,
    ok: ok.ids,
    again: again.ids,
    tooMany,
    badItem,
    badCandidate,
    badEmbedding,
    emptyLength: empty.ids.length,
    badStrategy,
    afterBadStrategy: afterBadStrategy.ids,
    inflight1,
    inflight2,
    afterLoss,
    lostSignal,
    afterDestroy,
  };
}

/**
 * One engine re-adapted through strategies that pack into different numbers of words (so the words
 * buffer is replaced and the bind groups rebuilt each time): after each, the top-k against the CPU
 * path for that strategy, and the memory the engine reports.
 */
async function readaptParity(opts: { backbone: 'sasrec' | 'caser'; seed: number }) {
  const device = await sharedDevice();
  const base = testModel(opts.backbone, opts.seed);
  const layers = backboneLayers(base.config);
  const uniform = (level: number): Strategy => ({
    levelTable: [2, 4, 6, 8],
    beta: 0.125,
    layers: layers.map((l) => ({ name: l.name, levels: new Uint8Array(l.outChannels).fill(level) })),
  });
  const strategies = [base.strategy, uniform(0), uniform(3), randomStrategy(layers, opts.seed + 5, [1, 3, 5, 7]), base.strategy];
  const engine = await GpuRerankEngine.create(device, base.config, base.tensors, base.frozen, { maxCandidates: 64 });
  try {
    const rand = mulberry32(opts.seed + 13);
    const history = Array.from({ length: 40 }, () => 1 + Math.floor(rand() * base.numItems));
    const candidates = Array.from({ length: 64 }, () => 1 + Math.floor(rand() * base.numItems));
    const rounds = [];
    for (const strategy of strategies) {
      await engine.applyStrategy(strategy);
      const gpu = await engine.rerank(history, candidates, 20);
      const ref = cpuRerank(cpuForward({ ...base, strategy }), history, candidates, 20);
      const cpuIds = Array.from(ref.order, (i) => candidates[i]!);
      const wordsUsed = strategy.layers.reduce((sum, l, i) => {
        const K = layers[i]!.rowLength;
        return sum + Array.from(l.levels).reduce((a, v) => a + Math.ceil(K / Math.floor(32 / strategy.levelTable[v]!)), 0) * 4;
      }, 0);
      rounds.push({ identical: gpu.ids.every((id, r) => id === cpuIds[r]), memory: engine.weightMemory, wordsUsed });
    }
    const channels = layers.reduce((sum, l) => sum + l.outChannels, 0);
    return { rounds, channels };
  } finally {
    engine.destroy();
  }
}

/**
 * The compute pipelines a fresh device compiles to create an engine, adapt it and rerank once:
 * their labels (the programs' shaderKeys), counted by wrapping the device's pipeline factories.
 */
async function compiledPipelines(opts: { backbone: 'sasrec' | 'caser'; activationBits?: number }) {
  const { device } = await acquireGpu();
  const labels: string[] = [];
  const proto = GPUDevice.prototype;
  const createAsync = proto.createComputePipelineAsync;
  const create = proto.createComputePipeline;
  proto.createComputePipelineAsync = function (this: GPUDevice, d: GPUComputePipelineDescriptor) {
    if (this === device) labels.push(d.label ?? '?');
    return createAsync.call(this, d);
  };
  proto.createComputePipeline = function (this: GPUDevice, d: GPUComputePipelineDescriptor) {
    if (this === device) labels.push(d.label ?? '?');
    return create.call(this, d);
  };
  try {
    const m = testModel(opts.backbone, 3);
    const engine = await GpuRerankEngine.create(device, m.config, m.tensors, m.frozen, opts.activationBits === undefined ? {} : { activationBits: opts.activationBits });
    await engine.applyStrategy(m.strategy);
    await engine.rerank([1, 2, 3], [4, 5, 6], 2);
    engine.destroy();
    return { count: labels.length, labels: labels.sort() };
  } finally {
    proto.createComputePipelineAsync = createAsync;
    proto.createComputePipeline = create;
    device.destroy();
  }
}

/**
 * The 8-bit item table on the GPU against core: the engine reads the codes (itemTable option), the
 * CPU forward the float32 values core dequantizes them to. Full-catalogue top-k (recommend) and a
 * rerank of `candidates` ids must give the CPU reference's order; scores within f32 rounding.
 */
async function itemTableParity(opts: { backbone: 'sasrec' | 'caser'; seed: number; numItems: number; candidates: number; k: number }) {
  const device = await sharedDevice();
  const base = testModel(opts.backbone, opts.seed, opts.numItems);
  const d = opts.backbone === 'sasrec' ? SASREC.hidden : DEFAULT_CASER_DIMS.d;
  const itemEmb = base.tensors.get('item_emb')!;
  const table = quantizeItemTable(itemEmb.data, opts.numItems + 1, d);
  const tensors: TensorMap = new Map(base.tensors);
  tensors.set('item_emb', { shape: itemEmb.shape, data: dequantizeItemTable(table) });
  const m: TestModel = { ...base, tensors };
  const cpu = cpuForward(m);
  const engine = await GpuRerankEngine.create(device, m.config, m.tensors, m.frozen, { maxCandidates: opts.candidates, itemTable: table });
  try {
    await engine.applyStrategy(m.strategy);
    const rand = mulberry32(opts.seed + 5);
    const history = Array.from({ length: 40 }, () => 1 + Math.floor(rand() * m.numItems));
    const all = Array.from({ length: m.numItems }, (_, i) => i + 1);
    const rep = cpu.represent(history);
    const allScores = scoreCandidates(rep, cpu.scoring, all);
    const want = Array.from(topK(allScores, opts.k), (i) => i + 1);
    const got = await engine.recommend(history, opts.k);
    const candidates = Array.from({ length: opts.candidates }, () => 1 + Math.floor(rand() * m.numItems));
    const ref = cpuRerank(cpu, history, candidates, opts.candidates);
    const gpuRerank = await engine.rerank(history, candidates, opts.candidates);
    return {
      tableBytes: table.bytes.byteLength,
      memory: engine.itemTableMemory,
      recommend: {
        identical: got.ids.every((id, r) => id === want[r]),
        got: got.ids.slice(0, 10),
        want: want.slice(0, 10),
        scores: closeness(got.scores, Float32Array.from(got.ids, (id) => allScores[id - 1]!)),
      },
      rerank: {
        identical: gpuRerank.ids.every((id, r) => id === candidates[ref.order[r]!]),
        count: gpuRerank.ids.length,
      },
      // The same engine without the table (float32 item_emb of the same values) ranks the same.
      float32Identical: await (async () => {
        const f32 = await GpuRerankEngine.create(device, m.config, m.tensors, m.frozen, { maxCandidates: opts.candidates });
        try {
          await f32.applyStrategy(m.strategy);
          const r = await f32.recommend(history, opts.k);
          return r.ids.every((id, i) => id === got.ids[i]) && r.scores.every((s, i) => s === got.scores[i]);
        } finally {
          f32.destroy();
        }
      })(),
    };
  } finally {
    engine.destroy();
  }
}

/** Mean rerank time on the GPU engine vs the CPU path, same page, same inputs. */
async function benchmark(opts: { backbone: 'sasrec' | 'caser'; candidates: number; k: number; reps: number }) {
  const device = await sharedDevice();
  const m = testModel(opts.backbone, 21, 1000);
  const cpu = cpuForward(m);
  const engine = await GpuRerankEngine.create(device, m.config, m.tensors, m.frozen, { maxCandidates: opts.candidates });
  try {
    await engine.applyStrategy(m.strategy);
    const rand = mulberry32(5);
    const history = Array.from({ length: 50 }, () => 1 + Math.floor(rand() * m.numItems));
    const candidates = Array.from({ length: opts.candidates }, () => 1 + Math.floor(rand() * m.numItems));
    await engine.rerank(history, candidates, opts.k); // warm-up
    cpuRerank(cpu, history, candidates, opts.k);
    const t0 = performance.now();
    for (let i = 0; i < opts.reps; i++) await engine.rerank(history, candidates, opts.k);
    const gpuMs = (performance.now() - t0) / opts.reps;
    const t1 = performance.now();
    for (let i = 0; i < opts.reps; i++) cpuRerank(cpu, history, candidates, opts.k);
    const cpuMs = (performance.now() - t1) / opts.reps;
    return { gpuMs, cpuMs, ratio: gpuMs / cpuMs };
  } finally {
    engine.destroy();
  }
}

const api = {
  quantizeKernel,
  layerNormKernel,
  embedKernel,
  matmulKernel,
  attentionKernel,
  caserConvKernels,
  scoreKernel,
  topkKernel,
  forwardParity,
  rankingParity,
  itemTableParity,
  lifecycle,
  readaptParity,
  benchmark,
  compiledPipelines,
};
export type ChordEngineApi = typeof api;
declare global {
  interface Window {
    chordEngine: ChordEngineApi;
  }
}
window.chordEngine = api;
document.body.dataset.ready = '1';
