/** What the page's CPU path (and the WebGPU tests) need from an inference forward. */
import type { BackboneKind } from '../backbones.ts';

/**
 * The quantizable weights by layer name (backboneLayers order is not needed here): each a
 * row-major Float32Array of outChannels * rowLength values, already dequantized for the current
 * strategy. A Map as frozenWeightsByName and dequantizeLayers return.
 */
export type LayerWeights = ReadonlyMap<string, Float32Array>;

/** The item table candidates are scored against: score(id) = rep . embeddings[id] + bias[id]. */
export interface ScoringTable {
  /** Length of a user representation and of an embedding row. */
  readonly dim: number;
  /** Real items are 1..numItems; row 0 (padding) is never scored. */
  readonly numItems: number;
  /** [(numItems + 1), dim] row-major. */
  readonly embeddings: Float32Array;
  /** [(numItems + 1)] or null when the backbone has no output bias (SASRec). */
  readonly bias: Float32Array | null;
}

export interface BackboneForward {
  readonly kind: BackboneKind;
  /** Items the model sees: SASRec maxLen, Caser L. Longer histories keep their last inputLen. */
  readonly inputLen: number;
  /** Length of the user representation (SASRec hidden, Caser 2 * d). */
  readonly repDim: number;
  readonly numItems: number;
  readonly scoring: ScoringTable;
  /** Swaps in the dequantized weights of a new strategy (validated; arrays are kept, not copied). */
  setWeights(weights: LayerWeights): void;
  /**
   * User representation after `history` (item ids 1..numItems, oldest first; 0 = padding,
   * ignored wherever it appears). Writes into `out` when given (length repDim).
   */
  represent(history: ArrayLike<number>, out?: Float32Array): Float32Array;
}
