// GPU kernel checks run in the page: `await page.evaluate(() => window.chordGpu.<name>(...))`.
// Each function builds its inputs from a seed, runs the kernels, compares against src/core on the
// CPU here, and returns counts and worst errors for the spec to assert on (not raw arrays).
import { backboneLayers, DEFAULT_CASER_DIMS, DEFAULT_SASREC_DIMS } from '../../../src/core/backbones.ts';
import { ChordError } from '../../../src/core/errors.ts';
import { generateFrozenWeights } from '../../../src/core/frozen.ts';
import {
  dequantizePacked,
  META_STRIDE,
  type PackedLayer,
  packLayer,
  packQuantized,
} from '../../../src/core/packing.ts';
import { channelScale, type QuantizedChannels } from '../../../src/core/quantize.ts';
import type { LevelTable, Strategy } from '../../../src/core/strategy.ts';
import { type PackedLayerBindings, readBuffers, TransientBuffers, uploadPackedLayer } from '../../../src/gpu/buffers.ts';
import { acquireGpu } from '../../../src/gpu/device.ts';
import { encodeMixedMatmul, mixedMatmulProgram } from '../../../src/gpu/matmul-program.ts';
import type { QuantizableLayer } from '../../../src/gpu/packed-layout.ts';
import { getPipeline } from '../../../src/gpu/pipeline-cache.ts';
import { QuantizedModelWeights } from '../../../src/gpu/quantized-weights.ts';
import { mulberry32 } from '../../fixtures/mulberry32.ts';
import { layerMatmul, readPacked } from './weights-probes.ts';

// ---- Inputs ----

const f32 = Math.fround;
const bitsView = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** The f32 one unit in the last place away from x, towards +inf (dir 1) or -inf (dir -1). */
function nudge(x: number, dir: 1 | -1): number {
  const a = new Float32Array([x]);
  const u = bitsView(a);
  if (x === 0) return dir * 2 ** -149;
  u[0] = u[0]! + ((x > 0) === (dir > 0) ? 1 : -1);
  return a[0]!;
}

type Rand = () => number;

/**
 * One channel's weights, of a kind chosen to hit a specific path of the adapt kernel: exact .5
 * ties (half-to-even), near ties (the emulated-f64 fallback), constants, ±0, subnormal and tiny
 * ranges, magnitudes far apart (f64 rounding of w - min), huge values.
 */
function edgeChannel(kind: number, rand: Rand, row: Float32Array, bits: number): void {
  const L = row.length;
  const n = 2 ** bits - 1;
  const uni = (lo: number, hi: number): number => f32(lo + (hi - lo) * rand());
  switch (kind) {
    case 0: // plain random
      for (let k = 0; k < L; k++) row[k] = uni(-0.5, 0.5);
      break;
    case 1: // constant
      row.fill(f32(0.3 + rand()));
      break;
    case 2: // zeros of both signs: constant, min and max must come out +0
      for (let k = 0; k < L; k++) row[k] = k % 2 === 0 ? -0 : 0;
      break;
    case 3: // negative constant
      row.fill(f32(-2 - rand()));
      break;
    case 4:
    case 5: {
      // Grid with step 2^-4 from an offset: every interior value is an exact (k + 0.5) tie; kind
      // 5 moves each by one f32 ulp either way, within f32 error of the tie.
      const offset = [0, -1, 0.75, -3][Math.floor(rand() * 4)]!;
      const step = 2 ** -4;
      for (let k = 0; k < L; k++) {
        let v = offset + ((k % n) + 0.5) * step;
        if (kind === 5) v = nudge(v, rand() < 0.5 ? 1 : -1);
        row[k] = v;
      }
      row[0] = offset;
      if (L > 1) row[1] = offset + n * step;
      break;
    }
    case 6: // tiny magnitudes against a unit range, zeros, subnormals
      for (let k = 0; k < L; k++) {
        const tiny = [1e-10, -1e-10, 3e-30, -7e-38, 1e-40, -2e-45, 0, -0][k % 8]!;
        row[k] = k % 3 === 0 ? uni(-1, 1) : tiny;
      }
      break;
    case 7: // subnormal range: the scale itself is subnormal
      for (let k = 0; k < L; k++) row[k] = Math.floor(rand() * 5000) * 2 ** -149;
      break;
    case 8: // tiny normal range far from zero: scale below 2^-100, exact path for every weight
      for (let k = 0; k < L; k++) row[k] = f32(1e-30 + rand() * 1e-35);
      break;
    case 9: // huge magnitudes
      for (let k = 0; k < L; k++) row[k] = uni(-1e30, 3e30);
      break;
    case 10: // one outlier far above the rest
      for (let k = 0; k < L; k++) row[k] = uni(-0.01, 0.01);
      row[Math.floor(rand() * L)] = 1e6;
      break;
    case 11: { // exactly on the code grid (integer quotients), all positive
      const lo = f32(100 + rand());
      const hi = f32(lo + 1 + rand());
      const s = channelScale(lo, hi, bits);
      for (let k = 0; k < L; k++) row[k] = f32(lo + Math.floor(rand() * (n + 1)) * s);
      row[0] = lo;
      break;
    }
    default:
      throw new Error(`kind ${kind}`);
  }
}

export const EDGE_KINDS = 12;

interface TestModel {
  layers: QuantizableLayer[];
  weights: Float32Array[];
}

/** Layers of odd and tiny row lengths whose channels cycle through every edge kind. */
function edgeModel(seed: number, bitsHint: (layer: number, channel: number) => number): TestModel {
  const rand = mulberry32(seed);
  const rowLengths = [1, 2, 3, 5, 7, 33, 65, 100, 257];
  const layers: QuantizableLayer[] = [];
  const weights: Float32Array[] = [];
  rowLengths.forEach((rowLength, l) => {
    const outChannels = EDGE_KINDS + l; // every kind, in varying positions
    const w = new Float32Array(outChannels * rowLength);
    for (let j = 0; j < outChannels; j++) {
      edgeChannel((j + l) % EDGE_KINDS, rand, w.subarray(j * rowLength, (j + 1) * rowLength), bitsHint(l, j));
    }
    layers.push({ name: `edge${l}`, outChannels, rowLength });
    weights.push(w);
  });
  return { layers, weights };
}

const bitsToF32 = (b: number): number => new Float32Array(new Uint32Array([b]).buffer)[0]!;

/**
 * A (min, max) pair aimed at one case of the kernels' exact step computation (channelScale in
 * core, channel_scale_bits in shaders/packed_scale_lib.wgsl), for a channel of `bits` bits.
 */
function scalePair(kind: number, rand: Rand, bits: number): [number, number] {
  const n = 2 ** bits - 1;
  const sign = (): number => (rand() < 0.5 ? -1 : 1);
  // A value on core's step grid (at most 24 - bits significant bits), times n: then M - m = n * s
  // exactly when the partner is (nearly) zero.
  const onGrid = (): number => {
    const g = Math.floor(1 + rand() * (2 ** (24 - bits) - 1)) * 2 ** Math.floor(rand() * 120 - 90);
    return f32(n * g);
  };
  const halfUlp64 = (x: number): number => 2 ** (Math.floor(Math.log2(Math.abs(x))) - 53);
  switch (kind) {
    case 0: { // any two finite f32 below 2^125 in magnitude, either sign
      const pick = (): number => {
        for (;;) {
          const v = bitsToF32(Math.floor(rand() * 2 ** 32));
          if (Number.isFinite(v) && Math.abs(v) < 2 ** 125) return v;
        }
      };
      return [pick(), pick()];
    }
    case 1: { // opposite signs, the small one at most half an f64 ulp of the large: fl64(M - m) = L
      const L = onGrid();
      const S = f32(halfUlp64(L) * (rand() < 0.4 ? 1 : rand()));
      return rand() < 0.5 ? [-S, L] : [-L, S];
    }
    case 2: { // as 1, the small one just above half an f64 ulp: fl64(M - m) > L
      const L = onGrid();
      const S = f32(halfUlp64(L) * (1 + 2 ** -20 + rand()));
      return rand() < 0.5 ? [-S, L] : [-L, S];
    }
    case 3: { // same signs, a power of two and a tiny partner (f64 rounds M - m up to it)
      const P = f32(2 ** Math.floor(rand() * 200 - 100)) * sign();
      const S = f32(Math.abs(P) * 2 ** -(40 + Math.floor(rand() * 30))) * Math.sign(P);
      return [P, S];
    }
    case 4: // subnormal or zero ends: subnormal steps
      return [Math.floor(rand() * 4000) * 2 ** -149 * sign(), rand() < 0.2 ? 0 : Math.floor(rand() * 4000) * 2 ** -149 * sign()];
    case 5: { // a range just below or at n * 2^k: the top bits of M - m all ones
      const k = Math.floor(rand() * 100 - 60);
      const lo = rand() < 0.5 ? 0 : f32(sign() * 2 ** (k - 30));
      return [lo, f32(n * 2 ** k * (1 - (rand() < 0.5 ? 0 : 2 ** -23)))];
    }
    default: // near the largest accepted magnitude
      return [f32(-rand() * 2 ** 124.9), f32(rand() * 2 ** 124.9)];
  }
}

export const SCALE_KINDS = 7;

/** Layers of two-weight channels whose (min, max) pairs cycle through scalePair's cases. */
function scalesModel(seed: number, bitsHint: (layer: number, channel: number) => number): TestModel {
  const rand = mulberry32(seed);
  const layers: QuantizableLayer[] = [];
  const weights: Float32Array[] = [];
  for (let l = 0; l < 4; l++) {
    const outChannels = 256 + l;
    const w = new Float32Array(outChannels * 2);
    for (let j = 0; j < outChannels; j++) {
      const [a, b] = scalePair((j + l) % SCALE_KINDS, rand, bitsHint(l, j));
      w[2 * j] = a;
      w[2 * j + 1] = b;
    }
    layers.push({ name: `scales${l}`, outChannels, rowLength: 2 });
    weights.push(w);
  }
  return { layers, weights };
}

function backboneModel(kind: 'sasrec' | 'caser', seed: number): TestModel {
  const specs =
    kind === 'sasrec'
      ? backboneLayers({ backbone: 'sasrec', dims: DEFAULT_SASREC_DIMS })
      : backboneLayers({ backbone: 'caser', dims: DEFAULT_CASER_DIMS });
  const frozen = generateFrozenWeights({ seed, layers: specs });
  return {
    layers: specs.map(({ name, outChannels, rowLength }) => ({ name, outChannels, rowLength })),
    weights: frozen.map((f) => f.weights),
  };
}

/**
 * Level indices: some layers uniform (all channels one level, cycling), the rest random per
 * channel, so both single-group and mixed layers occur.
 */
function randomLevels(seed: number, layers: readonly QuantizableLayer[]): Uint8Array[] {
  const rand = mulberry32(seed);
  return layers.map((layer, l) => {
    const levels = new Uint8Array(layer.outChannels);
    if (l % 3 === 2) levels.fill(l % 4);
    else for (let j = 0; j < levels.length; j++) levels[j] = Math.floor(rand() * 4);
    return levels;
  });
}

function strategyOf(layers: readonly QuantizableLayer[], levels: Uint8Array[], levelTable: LevelTable): Strategy {
  return { levelTable, beta: 0.125, layers: layers.map((l, i) => ({ name: l.name, levels: levels[i]! })) };
}

function bitsOf(levels: Uint8Array, table: LevelTable): Uint8Array {
  return levels.map((v) => table[v]!);
}

// ---- Comparison ----

type ArrayName = 'words' | 'meta' | 'scale' | 'zero' | 'max' | 'position' | 'groups';
const ARRAYS: readonly ArrayName[] = ['words', 'meta', 'scale', 'zero', 'max', 'position', 'groups'];

function u32s(a: Uint32Array | Float32Array): Uint32Array {
  return a instanceof Float32Array ? bitsView(a) : a;
}

interface LayerDiff {
  name: string;
  widths: number[];
  comparedWords: number;
  mismatches: Record<ArrayName, number>;
  first: string | null;
}

function diffPacked(name: string, gpu: PackedLayer, cpu: PackedLayer): LayerDiff {
  const mismatches = {} as Record<ArrayName, number>;
  let first: string | null = null;
  for (const key of ARRAYS) {
    const g = u32s(gpu[key]);
    const c = u32s(cpu[key]);
    let count = Math.abs(g.length - c.length);
    for (let i = 0; i < Math.min(g.length, c.length); i++) {
      if (g[i] !== c[i]) {
        count++;
        if (first === null) {
          first = `${name}.${key}[${i}]: gpu 0x${g[i]!.toString(16)} cpu 0x${c[i]!.toString(16)}`;
          if (key === 'words') first += ` (packed position of word: ${wordOwner(cpu, i)})`;
        }
      }
    }
    if (count > 0 && first === null) first = `${name}.${key}: length gpu ${g.length} cpu ${c.length}`;
    mismatches[key] = count;
  }
  const widths = [...new Set(Array.from({ length: cpu.outChannels }, (_, p) => cpu.meta[p * META_STRIDE + 1]!))];
  return { name, widths, comparedWords: cpu.words.length, mismatches, first };
}

function wordOwner(packed: PackedLayer, word: number): string {
  for (let p = packed.outChannels - 1; p >= 0; p--) {
    const off = packed.meta[p * META_STRIDE + 2]!;
    if (off <= word) {
      return `p=${p} ch=${packed.meta[p * META_STRIDE]} bits=${packed.meta[p * META_STRIDE + 1]} scale=${packed.scale[p]} zero=${packed.zero[p]}`;
    }
  }
  return '?';
}

/**
 * Weights whose f64 quotient (w - min) / scale is an exact .5 tie, or within 2^-10 of one: the
 * codes adapt_quantize_pack.wgsl leaves to the exact path (adapt_fix_ties.wgsl).
 */
function countTies(packed: PackedLayer, weights: Float32Array): { exact: number; near: number } {
  let exact = 0;
  let near = 0;
  for (let p = 0; p < packed.outChannels; p++) {
    const ch = packed.meta[p * META_STRIDE]!;
    const s = packed.scale[p]!;
    if (s === 0) continue;
    const m = packed.zero[p]!;
    for (let k = 0; k < packed.rowLength; k++) {
      const t = (weights[ch * packed.rowLength + k]! - m) / s;
      const d = Math.abs(t - Math.floor(t) - 0.5);
      if (d === 0) exact++;
      else if (d <= 2 ** -10) near++;
    }
  }
  return { exact, near };
}

// ---- Adapt parity ----

export interface AdaptParityOptions {
  model: 'edge' | 'scales' | 'sasrec' | 'caser';
  seed: number;
  /** One adapt per table, on the same QuantizedModelWeights (re-adaptation in place). */
  tables: LevelTable[];
  /** Send every weight through the kernel's emulated-f64 path (see AdaptOptions). */
  exactPathOnly?: boolean;
  /** QuantizedModelWeights option; default 'any'. */
  wordCapacity?: 'any' | 'fit';
}

async function adaptParity(opts: AdaptParityOptions) {
  const { device, adapterDescription } = await acquireGpu();
  try {
    const firstTable = opts.tables[0]!;
    const levelsPerRound: (Uint8Array[] | null)[] = opts.tables.map(() => null);
    // Edge channels need their width at generation time (tie grids depend on it): use round 0's.
    let model: TestModel;
    if (opts.model === 'edge' || opts.model === 'scales') {
      const make = opts.model === 'edge' ? edgeModel : scalesModel;
      const probe = make(opts.seed, () => 1);
      const levels0 = randomLevels(opts.seed + 1, probe.layers);
      levelsPerRound[0] = levels0;
      // An off channel (0 bits) has no grid to aim at: generate it as a 1-bit one.
      model = make(opts.seed, (l, j) => firstTable[levels0[l]![j]!]! || 1);
    } else {
      model = backboneModel(opts.model, opts.seed);
    }
    const weights = await QuantizedModelWeights.create(device, model.layers, model.weights, { wordCapacity: opts.wordCapacity ?? 'any' });
    const buffersBefore = weights.buffers;
    const words: { bytes: number; used: number }[] = [];
    const rounds = [];
    const ties = { exact: 0, near: 0 };
    for (let r = 0; r < opts.tables.length; r++) {
      const table = opts.tables[r]!;
      const levels = levelsPerRound[r] ?? randomLevels(opts.seed + 1 + r, model.layers);
      const t0 = performance.now();
      await weights.adapt(strategyOf(model.layers, levels, table), { exactPathOnly: opts.exactPathOnly ?? false });
      const adaptMs = performance.now() - t0;
      const layers: LayerDiff[] = [];
      for (let l = 0; l < model.layers.length; l++) {
        const { name, outChannels, rowLength } = model.layers[l]!;
        const cpu = packLayer(model.weights[l]!, outChannels, rowLength, bitsOf(levels[l]!, table));
        const gpu = await readPacked(weights, l);
        layers.push(diffPacked(name, gpu, cpu));
        const t = countTies(cpu, model.weights[l]!);
        ties.exact += t.exact;
        ties.near += t.near;
      }
      rounds.push({ table: [...table], adaptMs, layers });
      words.push({ bytes: weights.memory.words, used: weights.memory.wordsUsed });
    }
    const after = weights.buffers;
    const sameBuffers = (Object.keys(after) as (keyof typeof after)[]).every((k) => after[k] === buffersBefore[k]);
    const generation = weights.generation;
    weights.destroy();
    return { adapter: adapterDescription, rounds, ties, sameBuffers, words, generation };
  } finally {
    device.destroy();
  }
}

// ---- Mixed-bit matmul against core ----

export interface MatmulCase {
  M: number;
  K: number;
  N: number;
  /** A single width for every channel, 'mixed' (random 1..8 per channel) or 'mixed-off' (random 0..8, 0 = off). */
  bits: number | 'mixed' | 'mixed-off';
  seed: number;
  bias: boolean;
  /** Write y into a wider buffer: y[yOffset + m * yStride + j], sentinels elsewhere. */
  yOffset?: number;
  yStride?: number;
  xOffset?: number;
}

function randomPacked(c: MatmulCase, rand: Rand): { packed: PackedLayer; bits: Uint8Array } {
  const w = new Float32Array(c.N * c.K).map(() => f32((rand() - 0.5) * (rand() < 0.05 ? 4 : 1)));
  const bits = new Uint8Array(c.N).map(() =>
    c.bits === 'mixed' ? 1 + Math.floor(rand() * 8) : c.bits === 'mixed-off' ? Math.floor(rand() * 9) : c.bits,
  );
  return { packed: packLayer(w, c.N, c.K, bits), bits };
}

const SENTINEL = -12345.5;

/** Runs one matmul on an uploaded core-packed layer; returns the whole y buffer. */
async function runMatmul(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  layer: PackedLayerBindings,
  x: Float32Array,
  c: { M: number; bias?: Float32Array; xOffset?: number; yOffset?: number; yStride?: number; ySize: number },
): Promise<Float32Array> {
  const transient = new TransientBuffers(device);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  try {
    const xBuf = transient.from(x, usage);
    const yBuf = transient.from(new Float32Array(c.ySize).fill(SENTINEL), usage);
    const biasBuf = c.bias ? transient.from(c.bias, usage) : undefined;
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeMixedMatmul(
      device,
      pass,
      pipeline,
      {
        layer,
        rows: c.M,
        x: { buffer: xBuf, size: x.byteLength },
        y: { buffer: yBuf, size: c.ySize * 4 },
        ...(c.xOffset !== undefined ? { xOffset: c.xOffset } : {}),
        ...(c.yOffset !== undefined ? { yOffset: c.yOffset } : {}),
        ...(c.yStride !== undefined ? { yStride: c.yStride } : {}),
        ...(biasBuf && c.bias ? { bias: { buffer: biasBuf, size: c.bias.byteLength } } : {}),
      },
      transient,
    );
    pass.end();
    device.queue.submit([enc.finish()]);
    const [y] = await readBuffers(device, [{ buffer: yBuf, size: c.ySize * 4 }]);
    return new Float32Array(y!);
  } finally {
    transient.destroyAll();
  }
}

/** f64 reference y and the magnitude bound sum_k |x w| + |b| per output. */
function referenceMatmul(x: Float32Array, xOffset: number, deq: Float32Array, M: number, K: number, N: number, bias?: Float32Array) {
  const y = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < N; j++) {
      let acc = bias ? bias[j]! : 0;
      let mag = bias ? Math.abs(bias[j]!) : 0;
      for (let k = 0; k < K; k++) {
        const p = x[xOffset + m * K + k]! * deq[j * K + k]!;
        acc += p;
        mag += Math.abs(p);
      }
      y[m * N + j] = acc;
      bound[m * N + j] = mag;
    }
  }
  return { y, bound };
}

async function matmulParity(cases: MatmulCase[]) {
  const { device, adapterDescription } = await acquireGpu();
  try {
    const pipeline = await getPipeline(device, mixedMatmulProgram);
    const results = [];
    for (const c of cases) {
      const rand = mulberry32(c.seed);
      const { packed, bits } = randomPacked(c, rand);
      const xOffset = c.xOffset ?? 0;
      const x = new Float32Array(xOffset + c.M * c.K).map(() => f32(rand() * 2 - 1));
      const bias = c.bias ? new Float32Array(c.N).map(() => f32(rand() - 0.5)) : undefined;
      const yStride = c.yStride ?? c.N;
      const yOffset = c.yOffset ?? 0;
      const ySize = yOffset + (c.M - 1) * yStride + c.N + 3; // 3 trailing sentinels
      const up = uploadPackedLayer(device, packed);
      let y: Float32Array;
      try {
        y = await runMatmul(device, pipeline, up.bindings, x, {
          M: c.M,
          ySize,
          yStride,
          yOffset,
          xOffset,
          ...(bias ? { bias } : {}),
        });
      } finally {
        up.destroy();
      }
      const ref = referenceMatmul(x, xOffset, dequantizePacked(packed), c.M, c.K, c.N, bias);
      let maxRelErr = 0;
      let refAbsMax = 0;
      const written = new Set<number>();
      for (let m = 0; m < c.M; m++) {
        for (let j = 0; j < c.N; j++) {
          const i = yOffset + m * yStride + j;
          written.add(i);
          const r = ref.y[m * c.N + j]!;
          refAbsMax = Math.max(refAbsMax, Math.abs(r));
          const err = Math.abs(y[i]! - r) / Math.max(ref.bound[m * c.N + j]!, 1e-30);
          maxRelErr = Math.max(maxRelErr, Number.isNaN(err) ? Infinity : err);
        }
      }
      // An off channel's output is its bias alone, bit for bit: +0 (the empty sum) + bias, as core.
      let offOutputs = 0;
      let offMismatches = 0;
      for (let j = 0; j < c.N; j++) {
        if (bits[j] !== 0) continue;
        const want = f32(0 + (bias ? bias[j]! : 0));
        for (let m = 0; m < c.M; m++) {
          offOutputs++;
          if (!Object.is(y[yOffset + m * yStride + j], want)) offMismatches++;
        }
      }
      let sentinelsIntact = 0;
      let sentinelsTotal = 0;
      for (let i = 0; i < ySize; i++) {
        if (written.has(i)) continue;
        sentinelsTotal++;
        if (y[i] === SENTINEL) sentinelsIntact++;
      }
      results.push({ ...c, widths: [...new Set(bits)].sort(), maxRelErr, refAbsMax, outputs: c.M * c.N, sentinelsIntact, sentinelsTotal, offOutputs, offMismatches });
    }
    return { adapter: adapterDescription, results };
  } finally {
    device.destroy();
  }
}

/**
 * Exactness of the in-register unpack: with x = identity (M = K) the kernel returns the weights
 * themselves. (a) Codes: scale 1, zero 0, max n make deq(q) = q, so y must equal the codes.
 * (b) Real layer: y must equal core's dequantized weights bit for bit.
 */
async function matmulExactness(opts: { K: number; N: number; seed: number }) {
  const { device } = await acquireGpu();
  try {
    const pipeline = await getPipeline(device, mixedMatmulProgram);
    const { K, N } = opts;
    const rand = mulberry32(opts.seed);
    const identity = new Float32Array(K * K);
    for (let k = 0; k < K; k++) identity[k * K + k] = 1;
    const bits = new Uint8Array(N).map((_, j) => 1 + (j % 8));
    const out = [];

    const codes = new Uint8Array(N * K);
    for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) codes[j * K + k] = Math.floor(rand() * 2 ** bits[j]!);
    // Include both extremes in every row (all-ones codes catch a mask that is one bit short).
    for (let j = 0; j < N; j++) {
      codes[j * K] = 2 ** bits[j]! - 1;
      if (K > 1) codes[j * K + 1] = 0;
    }
    const q: QuantizedChannels = {
      outChannels: N,
      rowLength: K,
      bits,
      codes,
      scale: new Float32Array(N).fill(1),
      zero: new Float32Array(N),
      max: new Float32Array(N).map((_, j) => 2 ** bits[j]! - 1),
    };
    const realW = new Float32Array(N * K).map(() => f32(rand() * 2 - 1));
    const layers: [string, PackedLayer, Float32Array][] = [
      ['codes', packQuantized(q), Float32Array.from(codes)],
      ['dequantized', packLayer(realW, N, K, bits), new Float32Array(0)],
    ];
    layers[1]![2] = dequantizePacked(layers[1]![1]);
    for (const [name, packed, expected] of layers) {
      const up = uploadPackedLayer(device, packed);
      let y: Float32Array;
      try {
        y = await runMatmul(device, pipeline, up.bindings, identity, { M: K, ySize: K * N });
      } finally {
        up.destroy();
      }
      const yb = bitsView(y);
      const eb = bitsView(expected);
      let mismatches = 0;
      let first: string | null = null;
      for (let m = 0; m < K; m++) {
        for (let j = 0; j < N; j++) {
          // y[m, j] = W[j, m]
          if (yb[m * N + j] !== eb[j * K + m]) {
            mismatches++;
            first ??= `${name}: y[${m},${j}] = ${y[m * N + j]} expected ${expected[j * K + m]} (bits ${bits[j]})`;
          }
        }
      }
      out.push({ name, compared: K * N, mismatches, first });
    }
    return out;
  } finally {
    device.destroy();
  }
}

// ---- Runtime wrapper end to end ----

async function weightsEndToEnd(opts: { model: 'sasrec' | 'caser'; seed: number; M: number; tables: LevelTable[] }) {
  const { device } = await acquireGpu();
  try {
    const model = backboneModel(opts.model, opts.seed);
    const weights = await QuantizedModelWeights.create(device, model.layers, model.weights);
    const rand = mulberry32(opts.seed + 99);
    const before = weights.buffers;
    const rounds = [];
    for (let r = 0; r < opts.tables.length; r++) {
      const table = opts.tables[r]!;
      const levels = randomLevels(opts.seed + 7 * r, model.layers);
      await weights.adapt(strategyOf(model.layers, levels, table));
      let maxRelErr = 0;
      let outputs = 0;
      const bitsMatch: boolean[] = [];
      for (let l = 0; l < model.layers.length; l++) {
        const { outChannels: N, rowLength: K } = model.layers[l]!;
        const bits = bitsOf(levels[l]!, table);
        bitsMatch.push(weights.bitsOf(l).every((b, j) => b === bits[j]));
        const deq = dequantizePacked(packLayer(model.weights[l]!, N, K, bits));
        const x = new Float32Array(opts.M * K).map(() => f32(rand() * 2 - 1));
        const bias = new Float32Array(N).map(() => f32(rand() - 0.5));
        const y = await layerMatmul(weights, l, x, opts.M, bias);
        const ref = referenceMatmul(x, 0, deq, opts.M, K, N, bias);
        for (let i = 0; i < y.length; i++) {
          maxRelErr = Math.max(maxRelErr, Math.abs(y[i]! - ref.y[i]!) / Math.max(ref.bound[i]!, 1e-30));
        }
        outputs += y.length;
      }
      rounds.push({ table: [...table], maxRelErr, outputs, bitsMatch: bitsMatch.every(Boolean) });
    }
    const after = weights.buffers;
    const sameBuffers = (Object.keys(after) as (keyof typeof after)[]).every((k) => after[k] === before[k]);
    weights.destroy();
    return { rounds, sameBuffers, layers: model.layers.length };
  } finally {
    device.destroy();
  }
}

// ---- Errors ----

function describeError(err: unknown) {
  if (err instanceof ChordError) {
    return { name: err.name, code: err.code, reason: (err as { reason?: string }).reason ?? null, message: err.message };
  }
  return { name: err instanceof Error ? err.name : typeof err, code: null, reason: null, message: String(err) };
}

async function expectRejection(work: () => Promise<unknown> | unknown) {
  try {
    await work();
    return null;
  } catch (err) {
    return describeError(err);
  }
}

const tinyModel = (): TestModel => ({
  layers: [
    { name: 'a', outChannels: 4, rowLength: 8 },
    { name: 'b', outChannels: 3, rowLength: 5 },
  ],
  weights: [new Float32Array(32).map((_, i) => Math.sin(i)), new Float32Array(15).map((_, i) => Math.cos(i))],
});
const tinyStrategy = (m: TestModel): Strategy =>
  strategyOf(m.layers, m.layers.map((l) => new Uint8Array(l.outChannels).fill(1)), [2, 4, 6, 8]);

/** Device loss before a call, and during an in-flight readback: both must reject with a typed error. */
async function deviceLossBehaviour() {
  const m = tinyModel();
  const a = await acquireGpu();
  const w1 = await QuantizedModelWeights.create(a.device, m.layers, m.weights);
  await w1.adapt(tinyStrategy(m));
  a.device.destroy();
  await a.device.lost;
  const afterLoss = await expectRejection(() => w1.adapt(tinyStrategy(m)));
  const matmulAfterLoss = await expectRejection(() => layerMatmul(w1, 0, new Float32Array(8), 1));

  const b = await acquireGpu();
  const w2 = await QuantizedModelWeights.create(b.device, m.layers, m.weights);
  await w2.adapt(tinyStrategy(m));
  const inflight = readPacked(w2, 'a');
  b.device.destroy();
  const duringReadback = await expectRejection(() => inflight);
  return { afterLoss, matmulAfterLoss, duringReadback };
}

/** Inputs the wrapper must refuse with a typed error instead of producing garbage. */
async function inputErrors() {
  const { device } = await acquireGpu();
  try {
    const m = tinyModel();
    const w = await QuantizedModelWeights.create(device, m.layers, m.weights);
    const before = await expectRejection(() => layerMatmul(w, 0, new Float32Array(8), 1));
    const good = tinyStrategy(m);
    const wrongName = await expectRejection(() =>
      w.adapt({ ...good, layers: [good.layers[0]!, { name: 'z', levels: good.layers[1]!.levels }] }),
    );
    const wrongCount = await expectRejection(() =>
      w.adapt({ ...good, layers: [good.layers[0]!, { name: 'b', levels: new Uint8Array(4) }] }),
    );
    const badLevel = await expectRejection(() =>
      w.adapt({ ...good, layers: [good.layers[0]!, { name: 'b', levels: new Uint8Array([0, 4, 1]) }] }),
    );
    await w.adapt(good);
    const shortX = await expectRejection(() => layerMatmul(w, 0, new Float32Array(7), 1));
    w.destroy();
    const destroyed = await expectRejection(() => w.adapt(good));
    const nan = await expectRejection(() =>
      QuantizedModelWeights.create(device, m.layers, [new Float32Array(32).fill(NaN), m.weights[1]!]),
    );
    const huge = await expectRejection(() =>
      QuantizedModelWeights.create(device, m.layers, [new Float32Array(32).fill(1e38), m.weights[1]!]),
    );
    const wrongLength = await expectRejection(() => QuantizedModelWeights.create(device, m.layers, [m.weights[0]!]));
    // The GPU layout recomputes each step from (min, max, bits): a packed layer whose scale is not
    // core's channelScale (or with a -0 end) cannot be represented and is refused.
    const packed = packLayer(m.weights[0]!, 4, 8, new Uint8Array([2, 4, 6, 8]));
    const otherScale = await expectRejection(() => uploadPackedLayer(device, { ...packed, scale: packed.scale.map((v) => v * 2) }));
    const negativeZero = await expectRejection(() => uploadPackedLayer(device, { ...packed, max: packed.max.map((v, i) => (i === 0 ? -0 : v)) }));
    const consistent = uploadPackedLayer(device, packed);
    consistent.destroy();
    return { before, wrongName, wrongCount, badLevel, shortX, destroyed, nan, huge, wrongLength, otherScale, negativeZero };
  } finally {
    device.destroy();
  }
}

const api = { adaptParity, matmulParity, matmulExactness, weightsEndToEnd, deviceLossBehaviour, inputErrors };
export type ChordGpuApi = typeof api;
declare global {
  interface Window {
    chordGpu: ChordGpuApi;
  }
}
window.chordGpu = api;
document.body.dataset.ready = '1';
