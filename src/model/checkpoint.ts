/**
 * Checkpoints on disk (Node only).
 *
 * A tensor set `<name>` is two files in the src/core tensor-file format:
 *   <name>.json  { "format": "chord-tensors", "version": 1, "byteLength": B,
 *                  "tensors": [{ "name", "shape", "dtype": "float32", "offset", "length" }] }
 *   <name>.bin   little-endian float32 values, concatenated in index order.
 * Tensors are stored in sorted name order; names are the model's parameter names
 * (e.g. `item_emb`, `block0.attn.q`, `block0.attn.q.bias`).
 *
 * A training run directory holds:
 *   best.json/.bin        parameters of the best validation epoch (what evaluation and export use)
 *   last.json/.bin        parameters after the most recent epoch (for resuming)
 *   optimizer.json/.bin   Adam moments after that epoch (`m/<param>`, `v/<param>`)
 *   state.json            { version: 1, epoch, adamStep, rngState, best, history, settings }
 * Every file is written to a temporary name and renamed, so a run killed mid-save leaves the
 * previous checkpoint intact.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChordError } from '../core/errors.ts';
import { decodeTensorFile, encodeTensorFile, type TensorMap } from '../core/tensor-file.ts';

export class CheckpointError extends ChordError<'CheckpointError'> {
  override readonly name = 'CheckpointError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT_INVALID', message, options);
  }
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Reads tensors to host memory (synchronously: the wasm/cpu backends allow it). */
export function toTensorMap(tensors: Record<string, tf.Tensor>): TensorMap {
  const map: TensorMap = new Map();
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name]!;
    map.set(name, { shape: [...t.shape], data: new Float32Array(t.dataSync()) });
  }
  return map;
}

export function saveTensorSet(dir: string, name: string, tensors: Record<string, tf.Tensor> | TensorMap): void {
  mkdirSync(dir, { recursive: true });
  const map = tensors instanceof Map ? tensors : toTensorMap(tensors);
  const { index, bin } = encodeTensorFile(map);
  writeFileAtomic(join(dir, `${name}.bin`), bin);
  writeFileAtomic(join(dir, `${name}.json`), JSON.stringify(index, null, 1));
}

export function hasTensorSet(dir: string, name: string): boolean {
  return existsSync(join(dir, `${name}.json`)) && existsSync(join(dir, `${name}.bin`));
}

export function loadTensorSet(dir: string, name: string): TensorMap {
  try {
    const index: unknown = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
    return decodeTensorFile(index, new Uint8Array(readFileSync(join(dir, `${name}.bin`))));
  } catch (cause) {
    throw new CheckpointError(`cannot read tensor set '${name}' in ${dir}`, { cause });
  }
}

/**
 * Copies loaded values into the variables. Every variable must be present with the same shape;
 * extra tensors in the file are an error too, since they mean the file is for another model.
 */
export function assignVariables(vars: Record<string, tf.Variable>, loaded: TensorMap): void {
  const names = Object.keys(vars);
  for (const name of names) {
    const t = loaded.get(name);
    if (!t) throw new CheckpointError(`checkpoint has no tensor '${name}'`);
    const v = vars[name]!;
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      throw new CheckpointError(`'${name}': checkpoint shape [${t.shape}] != model shape [${v.shape}]`);
    }
  }
  for (const name of loaded.keys()) {
    if (!(name in vars)) throw new CheckpointError(`checkpoint tensor '${name}' is not a model parameter`);
  }
  for (const name of names) {
    const t = loaded.get(name)!;
    tf.tidy(() => vars[name]!.assign(tf.tensor(t.data, t.shape, 'float32')));
  }
}

/** Host snapshot of variables, e.g. the best epoch so far. */
export function snapshot(vars: Record<string, tf.Variable>): TensorMap {
  return toTensorMap(vars);
}
