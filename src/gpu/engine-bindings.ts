/**
 * The buffers the rerank engine's kernels share, and how a program names the ones it binds.
 *
 * Every engine kernel binds group 0 in the order of its program's `bindings` list (binding i =
 * bindings[i]), so one helper builds every bind group and a test can run any kernel on buffers of
 * its own. With 'auto' layouts a kernel must declare only bindings it uses, hence the per-program
 * lists instead of one fixed layout.
 */
import { bindInOrder } from './dispatch.ts';
import type { ModelWeightBuffers } from './quantized-weights.ts';
import type { ComputeProgram } from './pipeline-cache.ts';
import { type ROWS_ALL, ROWS_FIXED, ROWS_LAST } from './shader-constants.ts';
import { withWgslLibs, type WgslLib } from './wgsl-libs.ts';

export type EngineBinding =
  /** Per-dispatch uniform (the program's Params struct). */
  | 'params'
  /** Per-rerank uniform: n (real history rows), candidate count, k, candidate mode. */
  | 'run'
  /** Activations, scratch and scores (f32, read-write). */
  | 'act'
  /** Trained tensors: embeddings, norms, biases, Caser's user vector (f32, read). */
  | 'model'
  /** History ids, SASRec slots and candidate ids (u32, read). */
  | 'ids'
  /** Candidate embeddings and biases sent by the shop (f32, read). */
  | 'cand'
  /** Top-k survivors and result: (index, score bits) pairs (u32, read-write). */
  | 'out'
  /** The 8-bit item table (core/item-table.ts layout, u32 words, read); 4 bytes when the engine has none. */
  | 'items'
  /** Packed weights of every layer (QuantizedModelWeights.buffers, layout of packed-layout.ts). */
  | 'words'
  | 'ranges'
  | 'chan';

export interface EngineProgram extends ComputeProgram {
  /** Binding i of group 0 is bindings[i]. */
  readonly bindings: readonly EngineBinding[];
  /** Size of the Params uniform struct in bytes. */
  readonly paramsBytes: number;
}

/**
 * A per-history kernel built on shaders/engine_run_lib.wgsl (prepended, with `libs` after it):
 * its bindings are 'params', then 'run' and 'act' (declared by the library), then `more`.
 */
export function runKernelProgram(p: {
  readonly shaderKey: string;
  readonly kernel: string;
  readonly libs?: readonly WgslLib[];
  readonly more: readonly EngineBinding[];
  readonly paramsBytes: number;
}): EngineProgram {
  return {
    shaderKey: p.shaderKey,
    wgsl: withWgslLibs(p.kernel, 'run', ...(p.libs ?? [])),
    bindings: ['params', 'run', 'act', ...p.more],
    paramsBytes: p.paramsBytes,
  };
}

/** Everything a kernel may bind except its own params. */
export interface EngineResources {
  readonly run: GPUBuffer;
  readonly act: GPUBuffer;
  readonly model: GPUBuffer;
  readonly ids: GPUBuffer;
  readonly cand: GPUBuffer;
  readonly out: GPUBuffer;
  readonly items: GPUBuffer;
  /** Only kernels that read packed weights need them. */
  readonly weights?: ModelWeightBuffers;
}

/** Byte size of the run uniform (struct Run in the kernels). */
export const RUN_BYTES = 16;

export function runUniform(n: number, candCount: number, k: number, candMode: number): Uint32Array<ArrayBuffer> {
  return new Uint32Array([n, candCount, k, candMode]);
}

function resourceOf(res: EngineResources, params: GPUBufferBinding, name: EngineBinding): GPUBindingResource {
  switch (name) {
    case 'params':
      return params;
    case 'words':
    case 'ranges':
    case 'chan':
      if (!res.weights) throw new RangeError(`binding '${name}' needs packed weights`);
      return { buffer: res.weights[name] };
    default:
      return { buffer: res[name] };
  }
}

export function createEngineBindGroup(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  program: EngineProgram,
  res: EngineResources,
  params: GPUBufferBinding,
): GPUBindGroup {
  return bindInOrder(device, pipeline, program.shaderKey, program.bindings.map((name) => resourceOf(res, params, name)));
}

/** A uniform struct of 4-byte fields, written by index (u32 or f32). */
export class ParamsWriter {
  readonly u32: Uint32Array<ArrayBuffer>;
  readonly #f32: Float32Array;
  constructor(bytes: number) {
    this.u32 = new Uint32Array(bytes / 4);
    this.#f32 = new Float32Array(this.u32.buffer);
  }
  u(index: number, value: number): this {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) throw new RangeError(`u32 field ${index} = ${value}`);
    this.u32[index] = value;
    return this;
  }
  f(index: number, value: number): this {
    this.#f32[index] = value;
    return this;
  }
  /** Consecutive u32 fields from `index`. */
  us(index: number, values: readonly number[]): this {
    values.forEach((v, i) => this.u(index + i, v));
    return this;
  }
}

/** Row range of a kernel (shader-constants.ts): all real rows, the last real row only, or a fixed count. */
export type RowMode = typeof ROWS_ALL | typeof ROWS_LAST | typeof ROWS_FIXED;

/** Rows a kernel with `mode` processes when the history has n real rows. */
export function rowCount(mode: RowMode, n: number, fixedRows: number): number {
  if (mode === ROWS_FIXED) return fixedRows;
  if (mode === ROWS_LAST) return n > 0 ? 1 : 0;
  return n;
}
