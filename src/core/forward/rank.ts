/**
 * Scoring candidates against a user representation, and the deterministic top-k every path (CPU
 * and WebGPU) must reproduce.
 *
 * Scores are f32 (accumulated in f64, rounded once), and the ranking compares those f32 values:
 *   1. higher score first;
 *   2. equal scores (including +0 and -0): lower candidate index first;
 *   3. NaN ranks below every number (-Infinity included); NaNs among themselves by index.
 */
import { candidateBound, CheckedCandidates } from './candidates.ts';
import type { CandidateEmbedding } from './candidates.ts';
import { ForwardError } from './errors.ts';
import { dot } from './ops.ts';
import type { ScoringTable } from './types.ts';

function checkRep(rep: Float32Array, dim: number): void {
  if (rep.length !== dim) {
    throw new ForwardError('FORWARD_BAD_OPTION', `representation has ${rep.length} values, expected ${dim}`);
  }
}

function outputFor(n: number, out: Float32Array | undefined): Float32Array {
  if (out === undefined) return new Float32Array(n);
  if (out.length !== n) throw new ForwardError('FORWARD_BAD_OPTION', `out has ${out.length} values, expected ${n}`);
  return out;
}

/**
 * score[i] = rep . table.embeddings[ids[i]] + table.bias[ids[i]] for catalogue item ids
 * (1..numItems; 0, padding, is not a candidate). Scores keep the candidates' order.
 */
export function scoreCandidates(
  rep: Float32Array,
  table: ScoringTable,
  ids: ArrayLike<number>,
  out?: Float32Array,
): Float32Array {
  const { dim, embeddings, bias, numItems } = table;
  checkRep(rep, dim);
  const scores = outputFor(ids.length, out);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 1 || id > numItems) {
      throw new ForwardError('FORWARD_BAD_ITEM', `candidate ${i} has id ${id}, expected an item id in 1..${numItems}`);
    }
    const s = dot(rep, 0, embeddings, id * dim, dim);
    scores[i] = bias === null ? s : s + bias[id]!;
  }
  return scores;
}

/**
 * score[i] = rep . candidates[i].embedding + (candidates[i].bias ?? 0), after the candidate rule
 * (candidates.ts) with the bound of this `rep`: a candidate it refuses throws
 * FORWARD_BAD_CANDIDATE, and every score is a finite float32.
 */
export function scoreCandidatesWithEmbeddings(
  rep: Float32Array,
  candidates: readonly CandidateEmbedding[],
  out?: Float32Array,
): Float32Array {
  let l1 = 0;
  for (let c = 0; c < rep.length; c++) l1 += Math.abs(rep[c]!);
  if (!Number.isFinite(l1)) throw new ForwardError('FORWARD_NON_FINITE', 'the representation is not finite');
  return scoreCheckedCandidates(rep, CheckedCandidates.check(candidates, rep.length, candidateBound(l1)), out);
}

/** score[i] = rep . embedding[i] + bias[i] for candidates that passed the rule. */
export function scoreCheckedCandidates(rep: Float32Array, candidates: CheckedCandidates, out?: Float32Array): Float32Array {
  checkRep(rep, candidates.dim);
  const { dim, embeddings, bias } = candidates;
  const scores = outputFor(candidates.count, out);
  for (let i = 0; i < candidates.count; i++) scores[i] = dot(rep, 0, embeddings, i * dim, dim) + bias[i]!;
  return scores;
}

/** True iff candidate a ranks strictly before candidate b (see the file comment). */
export function ranksBefore(scores: ArrayLike<number>, a: number, b: number): boolean {
  const sa = scores[a]!;
  const sb = scores[b]!;
  const aNaN = sa !== sa;
  const bNaN = sb !== sb;
  if (aNaN !== bNaN) return bNaN;
  if (!aNaN && sa !== sb) return sa > sb;
  return a < b;
}

/**
 * Indices of the k best scores, best first, under the documented order. k is clamped to
 * scores.length. O(n log k): a bounded heap whose root is the worst of the current best k.
 */
export function topK(scores: ArrayLike<number>, k: number): Uint32Array {
  if (!Number.isInteger(k) || k < 0) throw new ForwardError('FORWARD_BAD_OPTION', `k = ${k} must be a non-negative integer`);
  const n = scores.length;
  const size = Math.min(k, n);
  const heap = new Uint32Array(size);
  if (size === 0) return heap;
  // "worse(a, b)": a ranks after b; the root holds the worst kept candidate.
  const worse = (a: number, b: number) => ranksBefore(scores, b, a);
  const siftDown = (start: number, end: number) => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= end) return;
      const r = l + 1;
      const c = r < end && worse(heap[r]!, heap[l]!) ? r : l;
      if (!worse(heap[c]!, heap[i]!)) return;
      const t = heap[i]!;
      heap[i] = heap[c]!;
      heap[c] = t;
      i = c;
    }
  };
  for (let i = 0; i < size; i++) heap[i] = i;
  for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i, size);
  for (let i = size; i < n; i++) {
    if (ranksBefore(scores, i, heap[0]!)) {
      heap[0] = i;
      siftDown(0, size);
    }
  }
  // Heap sort: move the worst to the end repeatedly, leaving the best first.
  for (let end = size - 1; end > 0; end--) {
    const t = heap[0]!;
    heap[0] = heap[end]!;
    heap[end] = t;
    siftDown(0, end);
  }
  return heap;
}
