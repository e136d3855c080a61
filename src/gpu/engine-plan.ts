/**
 * What a backbone's GPU forward is made of: buffer layouts (element offsets into `act`, `model`
 * and `ids`) and an ordered list of dispatches. A plan is built once per engine; after every
 * strategy its uniforms are refreshed (width groups change), and per rerank only the grid sizes
 * (which depend on the history's real length n and the candidate count) are computed.
 */
import type { EngineProgram } from './engine-bindings.ts';
import { GpuEngineError } from './errors.ts';
import type { QuantizedModelWeights } from './quantized-weights.ts';

export interface Step {
  readonly label: string;
  readonly program: EngineProgram;
  /** 'backbone' steps are skipped when the history has no real last item (SASRec: rep = final beta). */
  readonly stage: 'backbone' | 'scoring';
  /** The uniform for the current strategy of `weights` (called after every adapt). */
  params(weights: QuantizedModelWeights): Uint32Array<ArrayBuffer>;
  /** Workgroups for n real history rows and c candidates (after the last params()). x = 0 skips. */
  grid(n: number, c: number): [number, number];
}

/** A backbone step whose parameters `p` never change: its uniform and grid follow from them alone. */
export function staticStep<P>(
  label: string,
  program: EngineProgram,
  p: P,
  pack: (p: P) => Uint32Array<ArrayBuffer>,
  grid: (p: P, n: number) => [number, number],
): Step {
  return { label, program, stage: 'backbone', params: () => pack(p), grid: (n) => grid(p, n) };
}

/**
 * A backbone step re-planned from the weights after every strategy (width groups move): `plan`
 * builds what `pack` turns into the uniform, and grid() reads the latest plan.
 */
export function plannedStep<P>(
  label: string,
  program: EngineProgram,
  plan: (weights: QuantizedModelWeights) => P,
  pack: (p: P) => Uint32Array<ArrayBuffer>,
  grid: (p: P, n: number) => [number, number],
): Step {
  let current: { readonly p: P } | undefined;
  return {
    label,
    program,
    stage: 'backbone',
    params(weights) {
      current = { p: plan(weights) };
      return pack(current.p);
    },
    grid(n) {
      if (!current) throw new GpuEngineError('GPU_ENGINE_STATE', `${label}: grid before params`);
      return grid(current.p, n);
    },
  };
}

/** Offsets (elements) of named regions packed one after another. */
export class RegionAllocator {
  #size = 0;
  alloc(length: number): number {
    const offset = this.#size;
    // Keep regions 16-byte aligned: cheap, and copyBufferToBuffer needs 4-byte multiples anyway.
    this.#size += Math.ceil(Math.max(length, 1) / 4) * 4;
    return offset;
  }
  get size(): number {
    return this.#size;
  }
}

/** Trained tensors packed into one f32 array, with their offsets. */
export class ModelTensorPacker {
  readonly #parts: { offset: number; data: Float32Array }[] = [];
  readonly #alloc = new RegionAllocator();
  add(data: Float32Array): number {
    const offset = this.#alloc.alloc(data.length);
    this.#parts.push({ offset, data });
    return offset;
  }
  pack(): Float32Array<ArrayBuffer> {
    const out = new Float32Array(this.#alloc.size);
    for (const { offset, data } of this.#parts) out.set(data, offset);
    return out;
  }
}

export interface BackbonePlan {
  readonly steps: readonly Step[];
  /** Trained tensors for the `model` buffer. */
  readonly model: Float32Array<ArrayBuffer>;
  readonly actLength: number;
  readonly idsLength: number;
  /** act offset of the representation (repDim values) and of the scores. */
  readonly repOffset: number;
  /** ids offset of the candidate ids. */
  readonly candIdsOffset: number;
  /** Items of the catalogue (ids 1..numItems): the candidate count of a full-catalogue rerank. */
  readonly numItems: number;
  /** u32 words of the `out` buffer: top-k survivors, then the result pairs from `finalOffset`. */
  readonly outWords: number;
  readonly finalOffset: number;
  /** Values the engine writes into act once, at creation (Caser's user half of rep). */
  readonly actInit?: { readonly offset: number; readonly data: Float32Array<ArrayBuffer> };
  /** model offset of the representation used when the history has no real last item (SASRec). */
  readonly emptyRepModelOffset?: number;
  /**
   * The ids buffer contents for a history (validated), and n: the real rows (SASRec) or the
   * window length (Caser). n = 0 means "no backbone pass" (SASRec's final-beta case).
   */
  encodeHistory(history: ArrayLike<number>, ids: Uint32Array): number;
}
