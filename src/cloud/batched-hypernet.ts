/**
 * A batched forward of core's Hypernet: many z at once, the same strategies bit for bit.
 *
 * Why: core's `Hypernet.strategy(z)` is matrix-vector, so each z streams every head weight
 * (about 1.5 MB for the SASRec test model) through the cache once, and materialises α_E
 * (~100k values). Here each weight row is read once per batch and multiplied with every z while
 * it sits in L1 (matrix-matrix), and α_E is never stored: allocation only needs
 * S_j = Σ_k |α_E[j,k]|, so each element is computed and folded straight into S_j.
 *
 * Two interchangeable kernels compute the products: WebAssembly SIMD (wasm-kernels.ts, the
 * default where available) and plain JS (the fallback, and the reference the tests hold both
 * to). Both leave each item's α_F, U, V and α_L in item-major rows that allocation reads in
 * place (no per-item copies), and compute S for whichever channels allocation asks for: only
 * about 40% of them need it (see allocateLayer).
 *
 * Why it is bit-identical to core: every output element is accumulated exactly as core's `apply`
 * does it — start at the bias, add w[r,c]·x[c] for c = 0, 1, … in a double, round to float32
 * where core stores into a Float32Array — only the loops *around* each sum are reordered. Each
 * α_E element is Σ_r u·v in a double rounded to float32, summed into S_j in core's k order.
 * Scores follow `channelScores` step for step; Γ uses a selection with core's ranking (see
 * `gammaTiers`) instead of a full sort, over the channels that can reach the top 2k (a proven
 * bound rules out the rest), and Λ is core's `lambdaShifts` with core's level mapping.
 * tests/unit/cloud-batched-hypernet.test.ts pins the equality for every method, several ranks
 * and batch sizes, and both kernels.
 */
import { gammaAllocate, lambdaShifts, NonFiniteScoreError, TIER_BASE_LEVEL, tierSize } from '../core/allocation.ts';
import { Hypernet, HypernetError } from '../core/hypernet.ts';
import type { HypernetConfig } from '../core/hypernet.ts';
import type { Strategy } from '../core/strategy.ts';
import type { TensorMap } from '../core/tensor-file.ts';
import { createWasmKernels, DENSE_ROWS, tileWeights } from './wasm-kernels.ts';
import type { WasmKernels } from './wasm-kernels.ts';

interface Dense {
  readonly w: Float32Array;
  readonly b: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

interface Heads {
  readonly trunk: Dense;
  readonly f: readonly Dense[];
  /** E heads, present unless the method is 'custom'. */
  readonly eu: readonly Dense[] | undefined;
  readonly ev: readonly Dense[] | undefined;
  /** L head, present for 'chord' only. */
  readonly l: Dense | undefined;
}

/** Where each layer starts in one item's row of α_F, of U (C·rank values) and of V (R·rank values). */
interface Layout {
  readonly f: readonly number[];
  readonly fTotal: number;
  readonly u: readonly number[];
  readonly uTotal: number;
  readonly v: readonly number[];
  readonly vTotal: number;
}

function layout(config: HypernetConfig): Layout {
  const f: number[] = [];
  const u: number[] = [];
  const v: number[] = [];
  let [fTotal, uTotal, vTotal] = [0, 0, 0];
  for (const l of config.layers) {
    f.push(fTotal);
    u.push(uTotal);
    v.push(vTotal);
    fTotal += l.outChannels;
    uTotal += l.outChannels * config.rank;
    vTotal += l.rowLength * config.rank;
  }
  return { f, fTotal, u, uTotal, v, vTotal };
}

/**
 * One item's head outputs, read in place: α_F of layer ℓ, channel j at f[fAt + layout.f[ℓ] + j];
 * U[j, r] at u[uAt + layout.u[ℓ] + j·rank + r] and V[k, r] at v[vAt + layout.v[ℓ] + k·rank + r]
 * (null: no E head, α_E is all ones); α_L at l[lAt + ℓ] (null: no L head, α_L is all zeros).
 * Valid only during the visit.
 */
interface ItemView {
  f: Float64Array;
  fAt: number;
  u: Float64Array | null;
  uAt: number;
  v: Float64Array | null;
  vAt: number;
  l: Float64Array | null;
  lAt: number;
}

/** Runs the heads for `count` z and hands each item's outputs to `visit`, in order. */
interface Forward {
  run(zs: Float32Array, count: number, visit: (i: number, item: ItemView) => void): void;
  /**
   * S_j = Σ_k |α_E[j,k]| of layer `li` of the item being visited, for channels[0..count), into
   * out[j]: α_E[j,k] = float32(Σ_r U[j,r]·V[k,r]) in a double, summed over k in order, as core.
   */
  mass(item: ItemView, li: number, channels: Int32Array, count: number, out: Float64Array): void;
}

export type KernelChoice = 'auto' | 'wasm' | 'js';

/** One z's outcome: a strategy, or the error that z alone caused. */
export type BatchResult = { ok: true; strategy: Strategy } | { ok: false; error: Error };

/**
 * Upper bound of a computed S_j relative to Σ_r |U[j,r]|·X_r (X_r = Σ_k |V[k,r]|): covers the
 * double rounding of each α_E element, its float32 rounding and the rounding of the sums (all
 * below 2^-23 relative for R < 2^20); float32 subnormals add at most 2^-149 per element.
 */
const UB_MARGIN = 1 + 2 ** -20;
const SUBNORMAL_SLACK = 2 ** -149;
const FLT_MAX = 3.4028234663852886e38;

export class BatchedHypernet {
  readonly config: HypernetConfig;
  /** The kernel actually in use ('auto' resolves to 'wasm' where WebAssembly SIMD exists). */
  readonly kernel: 'wasm' | 'js';
  /** Channels over all layers; `levels` hands out one level per channel in layer order. */
  readonly totalChannels: number;
  /** Per layer, channels whose S was computed exactly, summed over every item allocated (diagnostics). */
  readonly massesComputed: number[];
  private readonly forward: Forward;
  private readonly layout: Layout;
  private readonly scratch: {
    scores: Float32Array;
    exp: Float64Array;
    ub: Float32Array;
    ubSelect: Float64Array;
    mass: Float64Array;
    computed: Uint8Array;
    candidates: Int32Array;
    todo: Int32Array;
    candidateScores: Float32Array;
    candidateLevels: Uint8Array;
    x: Float64Array;
    alphaL: Float32Array;
    levels: Uint8Array;
  };

  constructor(config: HypernetConfig, tensors: TensorMap, options: { kernel?: KernelChoice } = {}) {
    // Core's constructor validates every tensor name and shape; reuse it rather than repeat it.
    new Hypernet(config, tensors);
    this.config = config;
    const dense = (name: string, bias: string): Dense => {
      const w = tensors.get(name)!;
      const b = tensors.get(bias)!;
      return { w: w.data, b: b.data, rows: w.shape[0]!, cols: w.shape[1]! };
    };
    const heads: Heads = {
      trunk: dense('hyper.trunk.w', 'hyper.trunk.b'),
      f: config.layers.map((ly) => dense(`hyper.F.${ly.name}.w`, `hyper.F.${ly.name}.b`)),
      eu: config.method === 'custom' ? undefined : config.layers.map((ly) => dense(`hyper.E.${ly.name}.u`, `hyper.E.${ly.name}.ub`)),
      ev: config.method === 'custom' ? undefined : config.layers.map((ly) => dense(`hyper.E.${ly.name}.v`, `hyper.E.${ly.name}.vb`)),
      l: config.method === 'chord' ? dense('hyper.L.w', 'hyper.L.b') : undefined,
    };
    this.layout = layout(config);
    const choice = options.kernel ?? 'auto';
    const wasm = choice === 'js' ? null : WasmForward.create(config, heads, this.layout);
    if (choice === 'wasm' && !wasm) throw new HypernetError('WebAssembly SIMD is not available in this runtime');
    this.forward = wasm ?? new JsForward(config, heads, this.layout);
    this.kernel = wasm ? 'wasm' : 'js';
    this.totalChannels = this.layout.fTotal;
    this.massesComputed = config.layers.map(() => 0);
    const maxC = Math.max(...config.layers.map((l) => l.outChannels));
    this.scratch = {
      scores: new Float32Array(maxC),
      exp: new Float64Array(maxC),
      ub: new Float32Array(maxC),
      ubSelect: new Float64Array(maxC),
      mass: new Float64Array(maxC),
      computed: new Uint8Array(maxC),
      candidates: new Int32Array(maxC),
      todo: new Int32Array(maxC),
      candidateScores: new Float32Array(maxC),
      candidateLevels: new Uint8Array(maxC),
      x: new Float64Array(config.rank),
      alphaL: new Float32Array(config.layers.length),
      levels: new Uint8Array(this.totalChannels),
    };
  }

  /**
   * Strategies for `count` z vectors packed row-major in `zs` (count × zDim). A z that is not
   * finite, or whose sensitivities are not, fails alone; the others are unaffected.
   */
  strategies(zs: Float32Array, count: number): BatchResult[] {
    const { layers, levelTable, beta } = this.config;
    const results: BatchResult[] = [];
    this.levels(zs, count, (_i, levels, error) => {
      if (!levels) {
        results.push({ ok: false, error: error! });
        return;
      }
      const strategy: Strategy = {
        levelTable,
        beta,
        layers: layers.map((ly, li) => ({
          name: ly.name,
          levels: levels.slice(this.layout.f[li]!, this.layout.f[li]! + ly.outChannels),
        })),
      };
      results.push({ ok: true, strategy });
    });
    return results;
  }

  /**
   * The level indices of each z's strategy, all layers concatenated in layer order (what
   * `strategies` splits into layers), handed to `visit` in item order; or the error that z alone
   * caused. `levels` is scratch, overwritten after the visit returns: copy what you keep.
   */
  levels(zs: Float32Array, count: number, visit: (i: number, levels: Uint8Array | null, error?: Error) => void): void {
    const { zDim } = this.config;
    if (!Number.isInteger(count) || count < 0 || zs.length !== count * zDim) {
      throw new HypernetError(`z batch has ${zs.length} values, expected ${count} × ${zDim}`);
    }
    const bad: (Error | undefined)[] = new Array(count);
    for (let i = 0; i < count; i++) {
      for (let c = 0; c < zDim; c++) {
        if (!Number.isFinite(zs[i * zDim + c]!)) {
          bad[i] = new HypernetError(`z[${c}] is not finite`);
          break;
        }
      }
    }
    // A non-finite z only poisons its own column of every product.
    this.forward.run(zs, count, (i, item) => {
      if (bad[i]) {
        visit(i, null, bad[i]);
        return;
      }
      let levels: Uint8Array;
      try {
        levels = this.allocate(item);
      } catch (error) {
        visit(i, null, error instanceof Error ? error : new Error(String(error)));
        return;
      }
      visit(i, levels);
    });
  }

  /** Scores -> Γ -> Λ for one item, as core's allocateStrategy with the hypernet's options. */
  private allocate(item: ItemView): Uint8Array {
    const { layers, lambda, method, beta } = this.config;
    const { scores, exp, alphaL, levels } = this.scratch;
    const L = layers.length;
    for (let l = 0; l < L; l++) alphaL[l] = item.l ? item.l[item.lAt + l]! : 0;
    // Core runs Γ on every layer before Λ looks at α_L, so a Γ error wins over an α_L error.
    let shifts: Int8Array | undefined;
    let lambdaError: unknown;
    try {
      shifts = lambdaShifts(alphaL, method === 'chord' ? { up: lambda.up, down: lambda.down } : { up: 0, down: 0 });
    } catch (error) {
      lambdaError = error;
    }
    for (let li = 0; li < L; li++) {
      const { outChannels: C, rowLength } = layers[li]!;
      const f = item.f;
      const fAt = item.fAt + this.layout.f[li]!;
      // core's channelScores: softmax(α_F) · S, max-subtracted, as float32.
      let max = -Infinity;
      for (let j = 0; j < C; j++) {
        const v = f[fAt + j]!;
        if (!Number.isFinite(v)) throw new NonFiniteScoreError(`alphaF[${j}] is ${v}`);
        if (v > max) max = v;
      }
      let sum = 0;
      for (let j = 0; j < C; j++) {
        const e = Math.exp(f[fAt + j]! - max);
        exp[j] = e;
        sum += e;
      }
      const shift = shifts ? shifts[li]! : 0;
      const rest = levelOf(0, shift);
      const next = levelOf(1, shift);
      const top = levelOf(2, shift);
      const k = tierSize(C, beta);
      const at = this.layout.f[li]!;
      if (!item.u) {
        // No E head: α_E is all ones, S_j = rowLength.
        for (let j = 0; j < C; j++) scores[j] = (exp[j]! / sum) * rowLength;
        selectTiers(scores, C, k, rest, next, top, levels, at);
      } else this.allocateLayer(item, li, sum, k, rest, next, top, at);
    }
    if (!shifts) throw lambdaError;
    return levels;
  }

  /**
   * Γ for a layer with an E head, computing S exactly only where it can matter. Every channel
   * gets a rigorous upper bound of its score from Σ_r |U[j,r]|·Σ_k |V[k,r]| (the triangle
   * inequality; O(C + R) for the layer instead of O(C·R)). Candidates are the channels whose bound
   * reaches τ, the m-th largest bound; their S and scores are computed exactly. If at least 2k of
   * them score >= τ, the 2k-th largest score is >= τ and every other channel, bounded below τ,
   * is strictly under it: tier 0 whatever the ties, and Γ over the candidates alone (in index
   * order) gives core's tiers. Otherwise m doubles (at most up to every channel). On the
   * benchmark model about a third of the channels need S. A bound at or beyond float32's range
   * (or NaN) makes its channel a candidate always, so a non-finite α_E is still caught as core
   * catches it, also when k = 0.
   */
  private allocateLayer(item: ItemView, li: number, sum: number, k: number, rest: number, next: number, top: number, at: number): void {
    const { rank, layers } = this.config;
    const { outChannels: C, rowLength: R } = layers[li]!;
    const sc = this.scratch;
    const { scores, exp, ub, mass, computed, candidates, todo, x, levels } = sc;
    const u = item.u!;
    const v = item.v!;
    const uAt = item.uAt + this.layout.u[li]!;
    const vAt = item.vAt + this.layout.v[li]!;
    const slack = R * SUBNORMAL_SLACK;
    if (rank === 2) {
      let x0 = 0;
      let x1 = 0;
      for (let kk = 0; kk < 2 * R; kk += 2) {
        x0 += Math.abs(v[vAt + kk]!);
        x1 += Math.abs(v[vAt + kk + 1]!);
      }
      for (let j = 0; j < C; j++) {
        const sUb = (Math.abs(u[uAt + 2 * j]!) * x0 + Math.abs(u[uAt + 2 * j + 1]!) * x1) * UB_MARGIN + slack;
        ub[j] = sUb < FLT_MAX ? (exp[j]! / sum) * sUb : Infinity;
      }
    } else {
      for (let r = 0; r < rank; r++) {
        let t = 0;
        for (let kk = 0; kk < R; kk++) t += Math.abs(v[vAt + kk * rank + r]!);
        x[r] = t;
      }
      for (let j = 0; j < C; j++) {
        let b = 0;
        for (let r = 0; r < rank; r++) b += Math.abs(u[uAt + j * rank + r]!) * x[r]!;
        const sUb = b * UB_MARGIN + slack;
        ub[j] = sUb < FLT_MAX ? (exp[j]! / sum) * sUb : Infinity;
      }
    }
    computed.fill(0, 0, C);
    let m = k === 0 ? 0 : Math.min(C, 3 * k + 2);
    for (;;) {
      const all = m >= C;
      let tau: number;
      if (all) tau = -Infinity;
      else if (m === 0) tau = Infinity;
      else {
        const sel = sc.ubSelect;
        for (let j = 0; j < C; j++) sel[j] = ub[j]!;
        ensureSelectScratch(C);
        tau = nthLargest(sel, selectB, selectC, C, m - 1);
      }
      let nc = 0;
      let nt = 0;
      // Branch-free: whether a bound reaches τ is a coin toss to the branch predictor.
      for (let j = 0; j < C; j++) {
        const inside = +(ub[j]! >= tau);
        candidates[nc] = j;
        nc += inside;
        todo[nt] = j;
        nt += inside & (computed[j]! ^ 1);
        computed[j] = computed[j]! | inside;
      }
      if (nt > 0) {
        this.forward.mass(item, li, todo, nt, mass);
        this.massesComputed[li]! += nt;
        for (let c = 0; c < nt; c++) {
          const j = todo[c]!;
          const s = mass[j]!;
          if (!Number.isFinite(s)) throw new NonFiniteScoreError(`alphaE mass of channel ${j} is ${s}`);
          scores[j] = (exp[j]! / sum) * s;
        }
      }
      if (k === 0) {
        levels.fill(rest, at, at + C);
        return;
      }
      if (all) {
        selectTiers(scores, C, k, rest, next, top, levels, at);
        return;
      }
      let reach = 0;
      for (let c = 0; c < nc; c++) reach += +(scores[candidates[c]!]! >= tau);
      if (reach >= 2 * k) {
        const cs = sc.candidateScores;
        for (let c = 0; c < nc; c++) cs[c] = scores[candidates[c]!]!;
        selectTiers(cs, nc, k, rest, next, top, sc.candidateLevels, 0);
        levels.fill(rest, at, at + C);
        for (let c = 0; c < nc; c++) levels[at + candidates[c]!] = sc.candidateLevels[c]!;
        return;
      }
      m *= 2;
    }
  }
}

/** Λ's mapping: Γ tier -> its base level index, moved by the layer's shift, clamped to 0..3. */
function levelOf(tier: 0 | 1 | 2, shift: number): number {
  return Math.min(3, Math.max(0, TIER_BASE_LEVEL[tier] + shift));
}

/** Scratch of the selections (grown on demand; a thread runs one selection at a time). */
let selectA = new Float64Array(256);
let selectB = new Float64Array(256);
let selectC = new Float64Array(256);

function ensureSelectScratch(n: number): void {
  if (selectA.length < n) {
    selectA = new Float64Array(n);
    selectB = new Float64Array(n);
    selectC = new Float64Array(n);
  }
}

/**
 * Γ without a sort: writes `top` for the k channels of highest score, `next` for the next k,
 * `rest` for the others, ranking as core's gammaAllocate does (descending score, ties to the
 * lower index; +0 and -0 tie, as in core's `b - a` comparator). Selection finds t2 and t1, the
 * 2k-th and k-th largest scores; channels strictly above a threshold are inside it, channels
 * equal to it are taken in index order until the tier is full. No NaN allowed.
 *
 * The partition loops have no data-dependent branches (random scores made a branchy quickselect
 * mispredict on every other comparison; this was the largest JS cost in the profile).
 */
function selectTiers(scores: Float32Array, n: number, k: number, rest: number, next: number, top: number, out: Uint8Array, at: number): void {
  if (k === 0) {
    out.fill(rest, at, at + n);
    return;
  }
  ensureSelectScratch(n);
  const a = selectA;
  for (let j = 0; j < n; j++) a[j] = scores[j]!;
  const t2 = nthLargest(a, selectB, selectC, n, 2 * k - 1);
  // The 2k largest (more with ties at t2) go to a, which nthLargest left untouched.
  let m = 0;
  let above2 = 0;
  for (let j = 0; j < n; j++) {
    const v = scores[j]!;
    a[m] = v;
    m += +(v >= t2);
    above2 += +(v > t2);
  }
  const t1 = nthLargest(a, selectB, selectC, m, k - 1);
  let above1 = 0;
  for (let j = 0; j < m; j++) above1 += +(a[j]! > t1);
  const dNext = next - rest;
  const dTop = top - next;
  let tied1 = 0;
  let tied2 = 0;
  for (let j = 0; j < n; j++) {
    const v = scores[j]!;
    if (v === t1 || v === t2) {
      if (v === t1) {
        const rank = above1 + tied1++;
        out[at + j] = rank < k ? top : rank < 2 * k ? next : rest;
      } else out[at + j] = above2 + tied2++ < 2 * k ? next : rest;
    } else out[at + j] = rest + +(v > t2) * dNext + +(v > t1) * dTop;
  }
}

/**
 * The value of rank `rank` (0 = largest) among src[0..n), src unchanged; b and c are scratch.
 * Three-way partition around a median-of-3 pivot, greater values to the front of the target,
 * smaller to its back, by unconditional stores and counter increments.
 */
function nthLargest(src: Float64Array, b: Float64Array, c: Float64Array, n: number, rank: number): number {
  let from = src;
  let to = b;
  for (;;) {
    const x = from[0]!;
    const y = from[n >> 1]!;
    const z = from[n - 1]!;
    const p = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let g = 0;
    let l = n - 1;
    for (let j = 0; j < n; j++) {
      const v = from[j]!;
      to[g] = v;
      g += +(v > p);
      to[l] = v;
      l -= +(v < p);
    }
    const less = n - 1 - l;
    if (rank < g) n = g;
    else if (rank < n - less) return p;
    else {
      rank -= n - less;
      for (let j = 0; j < less; j++) to[j] = to[l + 1 + j]!;
      n = less;
    }
    // The pivot is one of the values, so every round shrinks n.
    from = to;
    to = from === b ? c : b;
  }
}

/**
 * core's gammaAllocate (tiers 2/1/0 by descending score, ties to the lower index) by selection
 * instead of a comparator sort. NaN scores, or a beta outside [0, 0.5], go to core, which throws.
 */
export function gammaTiers(scores: Float32Array, beta: number, into?: Uint8Array): Uint8Array {
  const n = scores.length;
  if (!(beta >= 0 && beta <= 0.5)) return gammaAllocate(scores, beta);
  for (let j = 0; j < n; j++) if (scores[j] !== scores[j]) return gammaAllocate(scores, beta);
  const tiers = into ?? new Uint8Array(n);
  selectTiers(scores, n, tierSize(n, beta), 0, 1, 2, tiers, 0);
  return tiers;
}

/** The JS kernel: per-layer products in [item, row] layout, gathered into item-major rows. */
class JsForward implements Forward {
  constructor(
    private readonly config: HypernetConfig,
    private readonly heads: Heads,
    private readonly layout: Layout,
  ) {}

  run(zs: Float32Array, count: number, visit: (i: number, item: ItemView) => void): void {
    const { layers, rank } = this.config;
    const { trunk, f, eu, ev, l } = this.heads;
    const lay = this.layout;
    const h32 = applyBatch(trunk, Float64Array.from(zs), count);
    const h = new Float64Array(h32.length);
    for (let i = 0; i < h.length; i++) h[i] = Math.fround(Math.tanh(h32[i]!));
    const fRows = new Float64Array(count * lay.fTotal);
    const uRows = eu ? new Float64Array(count * lay.uTotal) : null;
    const vRows = ev ? new Float64Array(count * lay.vTotal) : null;
    layers.forEach((ly, li) => {
      const C = ly.outChannels;
      const R = ly.rowLength;
      const alphaF = applyBatch(f[li]!, h, count);
      for (let i = 0; i < count; i++) fRows.set(alphaF.subarray(i * C, (i + 1) * C), i * lay.fTotal + lay.f[li]!);
      if (uRows && vRows) {
        const u = applyBatch(eu![li]!, h, count);
        const v = applyBatch(ev![li]!, h, count);
        for (let i = 0; i < count; i++) {
          uRows.set(u.subarray(i * C * rank, (i + 1) * C * rank), i * lay.uTotal + lay.u[li]!);
          vRows.set(v.subarray(i * R * rank, (i + 1) * R * rank), i * lay.vTotal + lay.v[li]!);
        }
      }
    });
    const lRows = l ? Float64Array.from(applyBatch(l, h, count)) : null;
    const item: ItemView = { f: fRows, fAt: 0, u: uRows, uAt: 0, v: vRows, vAt: 0, l: lRows, lAt: 0 };
    for (let i = 0; i < count; i++) {
      item.fAt = i * lay.fTotal;
      item.uAt = i * lay.uTotal;
      item.vAt = i * lay.vTotal;
      item.lAt = i * layers.length;
      visit(i, item);
    }
  }

  mass(item: ItemView, li: number, channels: Int32Array, count: number, out: Float64Array): void {
    massOfChannels(item, this.layout, this.config, li, channels, count, out);
  }
}

/** S_j of listed channels, in JS (the JS kernel, and wasm at ranks other than 2). */
function massOfChannels(item: ItemView, lay: Layout, config: HypernetConfig, li: number, channels: Int32Array, count: number, out: Float64Array): void {
  const { rank } = config;
  const R = config.layers[li]!.rowLength;
  const u = item.u!;
  const v = item.v!;
  const uAt = item.uAt + lay.u[li]!;
  const vAt = item.vAt + lay.v[li]!;
  for (let c = 0; c < count; c++) {
    const j = channels[c]!;
    let s = 0;
    for (let k = 0; k < R; k++) {
      let e = 0;
      for (let r = 0; r < rank; r++) e += u[uAt + j * rank + r]! * v[vAt + k * rank + r]!;
      s += Math.abs(Math.fround(e));
    }
    out[j] = s;
  }
}

/** Inputs per wasm pass; larger batches run in chunks. Even (the kernels' vector width is 2). */
const WASM_CHUNK = 64;

const align16 = (n: number) => Math.ceil(n / 16) * 16;
const padRows = (n: number) => Math.ceil(n / DENSE_ROWS) * DENSE_ROWS;

/** A head (or several stacked) in wasm memory: tiled weights, bias, its output buffer (f64). */
interface Placed {
  readonly w: number;
  readonly b: number;
  readonly out: number;
  /** Padded row count (a multiple of DENSE_ROWS). */
  readonly rows: number;
  readonly cols: number;
}

/** Heads stacked into one matrix, each part's rows from the given row offset on. */
function stack(parts: readonly { d: Dense; at: number }[], rows: number, cols: number): { w: Float32Array; b: Float64Array } {
  const w = new Float32Array(rows * cols);
  const b = new Float64Array(rows);
  for (const { d, at } of parts) {
    w.set(d.w, at * cols);
    b.set(d.b, at);
  }
  return { w, b };
}

/**
 * The wasm kernel. Weights are copied once into the instance's memory, heads of one kind stacked
 * into one matrix (all F heads, all U heads, all V heads), so a chunk is five dense calls. z and
 * h go in as columns ([cols, np]); the trunk comes out as [rows, np] (the next input); α_F, U, V
 * and α_L come out item-major, where allocation reads them; S is computed per item for the
 * channels allocation asks for (massSel, rank 2).
 */
class WasmForward implements Forward {
  private constructor(
    private readonly config: HypernetConfig,
    private readonly k: WasmKernels,
    private readonly mem: Float64Array,
    private readonly idx: Int32Array,
    private readonly trunk: Placed,
    private readonly f: Placed,
    private readonly u: Placed | undefined,
    private readonly v: Placed | undefined,
    private readonly l: Placed | undefined,
    private readonly layout: Layout,
    private readonly zIn: number,
    private readonly hIn: number,
    private readonly idxAt: number,
    private readonly massAt: number,
  ) {}

  static create(config: HypernetConfig, heads: Heads, lay: Layout): WasmForward | null {
    const { hidden } = config;
    const mats: { name: string; w: Float64Array; b: Float64Array; rows: number; cols: number }[] = [];
    const add = (name: string, m: { w: Float32Array; b: Float64Array }, rows: number, cols: number) =>
      mats.push({ name, w: tileWeights(m.w, rows, cols), b: m.b, rows: padRows(rows), cols });
    add('trunk', stack([{ d: heads.trunk, at: 0 }], heads.trunk.rows, heads.trunk.cols), heads.trunk.rows, heads.trunk.cols);
    add('f', stack(heads.f.map((d, li) => ({ d, at: lay.f[li]! })), lay.fTotal, hidden), lay.fTotal, hidden);
    if (heads.eu && heads.ev) {
      add('u', stack(heads.eu.map((d, li) => ({ d, at: lay.u[li]! })), lay.uTotal, hidden), lay.uTotal, hidden);
      add('v', stack(heads.ev.map((d, li) => ({ d, at: lay.v[li]! })), lay.vTotal, hidden), lay.vTotal, hidden);
    }
    if (heads.l) add('l', stack([{ d: heads.l, at: 0 }], heads.l.rows, hidden), heads.l.rows, hidden);

    let offset = 0;
    const take = (bytes: number) => {
      const at = offset;
      offset += align16(bytes);
      return at;
    };
    const placed = new Map<string, Placed>();
    for (const m of mats) {
      const w = take(m.w.byteLength);
      const b = take(m.rows * 8);
      placed.set(m.name, { w, b, out: take(m.rows * WASM_CHUNK * 8), rows: m.rows, cols: m.cols });
    }
    const maxC = Math.max(...config.layers.map((l) => l.outChannels));
    const zIn = take(config.zDim * WASM_CHUNK * 8);
    const hIn = take(hidden * WASM_CHUNK * 8);
    const idxAt = take((maxC + 1) * 4);
    const massAt = take(maxC * 8);
    const k = createWasmKernels(offset);
    if (!k) return null;
    const f64 = new Float64Array(k.memory.buffer);
    for (const m of mats) {
      const p = placed.get(m.name)!;
      f64.set(m.w, p.w / 8);
      f64.set(m.b, p.b / 8);
    }
    return new WasmForward(
      config,
      k,
      f64,
      new Int32Array(k.memory.buffer),
      placed.get('trunk')!,
      placed.get('f')!,
      placed.get('u'),
      placed.get('v'),
      placed.get('l'),
      lay,
      zIn,
      hIn,
      idxAt,
      massAt,
    );
  }

  run(zs: Float32Array, count: number, visit: (i: number, item: ItemView) => void): void {
    for (let start = 0; start < count; start += WASM_CHUNK) {
      const n = Math.min(WASM_CHUNK, count - start);
      this.chunk(zs.subarray(start * this.config.zDim, (start + n) * this.config.zDim), n, (i, item) => visit(start + i, item));
    }
  }

  mass(item: ItemView, li: number, channels: Int32Array, count: number, out: Float64Array): void {
    const { rank, layers } = this.config;
    if (rank !== 2) {
      massOfChannels(item, this.layout, this.config, li, channels, count, out);
      return;
    }
    // The kernel takes channel pairs: an odd list repeats its last channel.
    const idx = this.idx;
    const at = this.idxAt / 4;
    for (let c = 0; c < count; c++) idx[at + c] = channels[c]!;
    const padded = count + (count & 1);
    if (padded > count) idx[at + count] = channels[count - 1]!;
    const uPtr = (item.uAt + this.layout.u[li]!) * 8;
    const vPtr = (item.vAt + this.layout.v[li]!) * 8;
    this.k.massSel(uPtr, vPtr, this.idxAt, padded, layers[li]!.rowLength, this.massAt);
    const mem = this.mem;
    const m0 = this.massAt / 8;
    for (let c = 0; c < count; c++) {
      const j = channels[c]!;
      out[j] = mem[m0 + j]!;
    }
  }

  /** [rows, np] output (rows of one item pair are contiguous vectors). */
  private byRow(p: Placed, input: number, np: number): void {
    this.k.dense(p.w, p.b, input, p.out, p.rows, p.cols, np, np * 8, 8);
  }

  /** [np, rows] output: each item's values contiguous. */
  private byItem(p: Placed, input: number, np: number): void {
    this.k.dense(p.w, p.b, input, p.out, p.rows, p.cols, np, 8, p.rows * 8);
  }

  private chunk(zs: Float32Array, n: number, visit: (i: number, item: ItemView) => void): void {
    const { zDim, hidden } = this.config;
    const np = n + (n & 1);
    const mem = this.mem;
    // z as columns; padding columns are zero and their results are never read.
    const z0 = this.zIn / 8;
    mem.fill(0, z0, z0 + zDim * np);
    for (let i = 0; i < n; i++) for (let c = 0; c < zDim; c++) mem[z0 + c * np + i] = zs[i * zDim + c]!;
    this.byRow(this.trunk, this.zIn, np);
    const hPre = this.trunk.out / 8;
    const h0 = this.hIn / 8;
    for (let j = 0; j < hidden * np; j++) mem[h0 + j] = Math.fround(Math.tanh(mem[hPre + j]!));
    this.byItem(this.f, this.hIn, np);
    if (this.l) this.byItem(this.l, this.hIn, np);
    if (this.u && this.v) {
      this.byItem(this.u, this.hIn, np);
      this.byItem(this.v, this.hIn, np);
    }
    const item: ItemView = {
      f: mem,
      fAt: 0,
      u: this.u ? mem : null,
      uAt: 0,
      v: this.v ? mem : null,
      vAt: 0,
      l: this.l ? mem : null,
      lAt: 0,
    };
    for (let i = 0; i < n; i++) {
      item.fAt = this.f.out / 8 + i * this.f.rows;
      if (this.u && this.v) {
        item.uAt = this.u.out / 8 + i * this.u.rows;
        item.vAt = this.v.out / 8 + i * this.v.rows;
      }
      if (this.l) item.lAt = this.l.out / 8 + i * this.l.rows;
      visit(i, item);
    }
  }
}

/**
 * S_j = Σ_k |α_E[j,k]| with α_E[j,k] = float32(Σ_r u[j,r]·v[k,r]), summed over k in order as core
 * does after materialising α_E. Rank 2 (the configured rank) has an unrolled path, two channels
 * per pass over a de-interleaved V.
 */
export function elementMass(u: Float32Array, v: Float32Array, C: number, R: number, rank: number): Float64Array {
  const mass = new Float64Array(C);
  if (rank === 2) {
    const v0 = new Float64Array(R);
    const v1 = new Float64Array(R);
    for (let k = 0; k < R; k++) {
      v0[k] = v[2 * k]!;
      v1[k] = v[2 * k + 1]!;
    }
    let j = 0;
    for (; j + 2 <= C; j += 2) {
      const a0 = u[2 * j]!;
      const a1 = u[2 * j + 1]!;
      const b0 = u[2 * j + 2]!;
      const b1 = u[2 * j + 3]!;
      let s = 0;
      let t = 0;
      for (let k = 0; k < R; k++) {
        const x = v0[k]!;
        const y = v1[k]!;
        s += Math.abs(Math.fround(a0 * x + a1 * y));
        t += Math.abs(Math.fround(b0 * x + b1 * y));
      }
      mass[j] = s;
      mass[j + 1] = t;
    }
    for (; j < C; j++) {
      const a0 = u[2 * j]!;
      const a1 = u[2 * j + 1]!;
      let s = 0;
      for (let k = 0; k < R; k++) s += Math.abs(Math.fround(a0 * v0[k]! + a1 * v1[k]!));
      mass[j] = s;
    }
    return mass;
  }
  for (let j = 0; j < C; j++) {
    let s = 0;
    for (let k = 0; k < R; k++) {
      let e = 0;
      for (let r = 0; r < rank; r++) e += u[j * rank + r]! * v[k * rank + r]!;
      s += Math.abs(Math.fround(e));
    }
    mass[j] = s;
  }
  return mass;
}

/**
 * Y = X·Wᵀ + b for `n` row-major inputs X [n, cols] -> Y [n, rows] (float32). Each element is
 * core's sum: bias first, then w[r,c]·x[c] in ascending c, in a double. Eight inputs share each
 * weight load; weights are float32 and inputs float64 copies of float32 values, so every
 * product is the one core computes.
 */
function applyBatch(d: Dense, x: Float64Array, n: number): Float32Array {
  const { w, b, rows, cols } = d;
  const out = new Float32Array(n * rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const bias = b[r]!;
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const x0 = i * cols;
      let s0 = bias;
      let s1 = bias;
      let s2 = bias;
      let s3 = bias;
      let s4 = bias;
      let s5 = bias;
      let s6 = bias;
      let s7 = bias;
      for (let c = 0; c < cols; c++) {
        const wc = w[base + c]!;
        const p = x0 + c;
        s0 += wc * x[p]!;
        s1 += wc * x[p + cols]!;
        s2 += wc * x[p + 2 * cols]!;
        s3 += wc * x[p + 3 * cols]!;
        s4 += wc * x[p + 4 * cols]!;
        s5 += wc * x[p + 5 * cols]!;
        s6 += wc * x[p + 6 * cols]!;
        s7 += wc * x[p + 7 * cols]!;
      }
      const o = i * rows + r;
      out[o] = s0;
      out[o + rows] = s1;
      out[o + 2 * rows] = s2;
      out[o + 3 * rows] = s3;
      out[o + 4 * rows] = s4;
      out[o + 5 * rows] = s5;
      out[o + 6 * rows] = s6;
      out[o + 7 * rows] = s7;
    }
    for (; i < n; i++) {
      const xi = i * cols;
      let s = bias;
      for (let c = 0; c < cols; c++) s += w[base + c]! * x[xi + c]!;
      out[i * rows + r] = s;
    }
  }
  return out;
}
