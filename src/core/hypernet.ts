/**
 * CHORD's cloud-side hypernetworks, inference only, in plain TypeScript: the strategy server runs this
 * (no tfjs needed there), and the tfjs training code in src/model must produce parameters with exactly
 * these names and this arithmetic (a parity test pins the two together).
 *
 *   h      = tanh(trunk.w · z + trunk.b)                          shared trunk, [hidden]
 *   α_F^ℓ  = F.ℓ.w · h + F.ℓ.b                                     per output channel      (all methods)
 *   U^ℓ    = reshape(E.ℓ.u · h + E.ℓ.ub, [C, rank])                factorised per-element  (weighted, chord)
 *   V^ℓ    = reshape(E.ℓ.v · h + E.ℓ.vb, [R, rank])
 *   α_E^ℓ  = U^ℓ · V^ℓᵀ   ([C, R], one value per weight element; rank ≪ R keeps the head small)
 *   α_L    = L.w · h + L.b                                          per layer               (chord)
 *
 * Without an E head, α_E is all ones (so α_W = R·softmax(α_F): "customization" only); without an L head,
 * α_L is all zeros and Λ moves no layer. Tensor names are prefixed `hyper.`.
 */
import { allocateStrategy } from './allocation.ts';
import { ChordError } from './errors.ts';
import type { HypernetMethod } from './methods.ts';
import { levelTableProblem, type Strategy } from './strategy.ts';
import type { TensorMap } from './tensor-file.ts';


export interface HypernetLayer {
  name: string;
  outChannels: number;
  rowLength: number;
}

export interface HypernetConfig {
  format: 'chord-hypernet';
  version: 1;
  method: HypernetMethod;
  zDim: number;
  hidden: number;
  rank: number;
  levelTable: [number, number, number, number];
  beta: number;
  /** Λ: how many layers move up / down (counts). */
  lambda: { up: number; down: number };
  layers: HypernetLayer[];
}

export class HypernetError extends ChordError<'HypernetError'> {
  override readonly name = 'HypernetError';
  constructor(message: string) {
    super('HYPERNET_INVALID', message);
  }
}

export interface Sensitivities {
  alphaF: Float32Array[];
  alphaE: Float32Array[];
  alphaL: Float32Array;
}

interface Dense {
  w: Float32Array;
  b: Float32Array | undefined;
  rows: number;
  cols: number;
}

export class Hypernet {
  readonly config: HypernetConfig;
  private readonly trunk: Dense;
  private readonly f: Dense[];
  private readonly eu: Dense[] | undefined;
  private readonly ev: Dense[] | undefined;
  private readonly l: Dense | undefined;

  constructor(config: HypernetConfig, tensors: TensorMap) {
    this.config = config;
    const dense = (name: string, rows: number, cols: number, bias: string | null): Dense => {
      const w = tensors.get(name);
      if (!w) throw new HypernetError(`missing tensor ${name}`);
      if (w.shape.length !== 2 || w.shape[0] !== rows || w.shape[1] !== cols) {
        throw new HypernetError(`${name} has shape [${w.shape}], expected [${rows},${cols}]`);
      }
      let b: Float32Array | undefined;
      if (bias !== null) {
        const t = tensors.get(bias);
        if (!t) throw new HypernetError(`missing tensor ${bias}`);
        if (t.shape.length !== 1 || t.shape[0] !== rows) throw new HypernetError(`${bias} has shape [${t.shape}], expected [${rows}]`);
        b = t.data;
      }
      return { w: w.data, b, rows, cols };
    };
    const { zDim, hidden, rank, layers, method } = config;
    if (![zDim, hidden, rank].every((n) => Number.isInteger(n) && n > 0)) throw new HypernetError('zDim, hidden and rank must be positive integers');
    this.trunk = dense('hyper.trunk.w', hidden, zDim, 'hyper.trunk.b');
    this.f = layers.map((ly) => dense(`hyper.F.${ly.name}.w`, ly.outChannels, hidden, `hyper.F.${ly.name}.b`));
    if (method !== 'custom') {
      this.eu = layers.map((ly) => dense(`hyper.E.${ly.name}.u`, ly.outChannels * rank, hidden, `hyper.E.${ly.name}.ub`));
      this.ev = layers.map((ly) => dense(`hyper.E.${ly.name}.v`, ly.rowLength * rank, hidden, `hyper.E.${ly.name}.vb`));
    }
    if (method === 'chord') this.l = dense('hyper.L.w', layers.length, hidden, 'hyper.L.b');
  }

  sensitivities(z: Float32Array): Sensitivities {
    const { zDim, rank, layers } = this.config;
    if (z.length !== zDim) throw new HypernetError(`z has ${z.length} values, expected ${zDim}`);
    for (let i = 0; i < z.length; i++) if (!Number.isFinite(z[i]!)) throw new HypernetError(`z[${i}] is not finite`);
    const h = apply(this.trunk, z);
    for (let i = 0; i < h.length; i++) h[i] = Math.tanh(h[i]!);
    const alphaF = this.f.map((d) => apply(d, h));
    const alphaE = layers.map((ly, i) => {
      const out = new Float32Array(ly.outChannels * ly.rowLength);
      if (!this.eu || !this.ev) return out.fill(1);
      const u = apply(this.eu[i]!, h);
      const v = apply(this.ev[i]!, h);
      for (let j = 0; j < ly.outChannels; j++) {
        for (let k = 0; k < ly.rowLength; k++) {
          let s = 0;
          for (let r = 0; r < rank; r++) s += u[j * rank + r]! * v[k * rank + r]!;
          out[j * ly.rowLength + k] = s;
        }
      }
      return out;
    });
    const alphaL = this.l ? apply(this.l, h) : new Float32Array(layers.length);
    return { alphaF, alphaE, alphaL };
  }

  strategy(z: Float32Array): Strategy {
    const { layers, beta, levelTable, lambda, method } = this.config;
    const s = this.sensitivities(z);
    return allocateStrategy({
      layers: layers.map((ly, i) => ({ ...ly, alphaF: s.alphaF[i]!, alphaE: s.alphaE[i]! })),
      alphaL: s.alphaL,
      beta,
      levelTable,
      lambda: method === 'chord' ? { up: lambda.up, down: lambda.down } : { up: 0, down: 0 },
    });
  }
}

function apply(d: Dense, x: Float32Array): Float32Array {
  const out = new Float32Array(d.rows);
  for (let r = 0; r < d.rows; r++) {
    let s = d.b ? d.b[r]! : 0;
    const base = r * d.cols;
    for (let c = 0; c < d.cols; c++) s += d.w[base + c]! * x[c]!;
    out[r] = s;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const posInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/** Validates a hypernet.json object; throws HypernetError naming the first bad field. */
export function parseHypernetConfig(json: unknown): HypernetConfig {
  if (!isRecord(json)) throw new HypernetError('hypernet config is not an object');
  if (json.format !== 'chord-hypernet') throw new HypernetError('format must be "chord-hypernet"');
  if (json.version !== 1) throw new HypernetError(`version ${String(json.version)} is not supported`);
  if (json.method !== 'custom' && json.method !== 'weighted' && json.method !== 'chord') {
    throw new HypernetError(`method ${String(json.method)} is not custom|weighted|chord`);
  }
  for (const k of ['zDim', 'hidden', 'rank'] as const) if (!posInt(json[k])) throw new HypernetError(`${k} must be a positive integer`);
  const lt = json.levelTable;
  if (!Array.isArray(lt)) throw new HypernetError('levelTable must be an array of 4 widths');
  const levelProblem = levelTableProblem(lt);
  if (levelProblem) throw new HypernetError(levelProblem);
  if (typeof json.beta !== 'number' || !(json.beta >= 0 && json.beta <= 0.5)) throw new HypernetError('beta must be in [0, 0.5]');
  const lam = json.lambda;
  if (!isRecord(lam) || !Number.isSafeInteger(lam.up) || !Number.isSafeInteger(lam.down) || (lam.up as number) < 0 || (lam.down as number) < 0) {
    throw new HypernetError('lambda must be {up, down} non-negative layer counts');
  }
  if (!Array.isArray(json.layers) || json.layers.length === 0) throw new HypernetError('layers must be a non-empty array');
  const layers = json.layers.map((l: unknown, i: number) => {
    if (!isRecord(l) || typeof l.name !== 'string' || !posInt(l.outChannels) || !posInt(l.rowLength)) {
      throw new HypernetError(`layers[${i}] must be {name, outChannels, rowLength}`);
    }
    return { name: l.name, outChannels: l.outChannels, rowLength: l.rowLength };
  });
  if ((lam.up as number) + (lam.down as number) > layers.length) throw new HypernetError('lambda up + down exceeds the layer count');
  return {
    format: 'chord-hypernet',
    version: 1,
    method: json.method,
    zDim: json.zDim as number,
    hidden: json.hidden as number,
    rank: json.rank as number,
    levelTable: lt as [number, number, number, number],
    beta: json.beta,
    lambda: { up: lam.up as number, down: lam.down as number },
    layers,
  };
}
