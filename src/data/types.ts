/** One implicit-feedback event: `user` touched `item` at `time` (any monotone clock; ties allowed). */
export interface Interaction {
  readonly user: string;
  readonly item: string;
  readonly time: number;
  readonly rating?: number;
}

/**
 * Per-user chronological item sequences with dense ids. Items are 1..numItems (0 is the padding
 * id, so an embedding table needs numItems + 1 rows); users are 0..numUsers-1.
 */
export interface SequenceData {
  readonly numItems: number;
  readonly numUsers: number;
  /** sequences[u] = dense item ids of user u, oldest first. */
  readonly sequences: Int32Array[];
  /** itemIds[id] = original item token; itemIds[0] = PAD_TOKEN. Length numItems + 1. */
  readonly itemIds: string[];
  /** userIds[u] = original user token. Length numUsers. */
  readonly userIds: string[];
}

/**
 * Leave-last-one-out split. Validation input = train[u]; test input = train[u] followed by valid[u].
 */
export interface SplitDataset {
  readonly numItems: number;
  readonly numUsers: number;
  readonly train: Int32Array[];
  readonly valid: Int32Array;
  readonly test: Int32Array;
  readonly itemIds: string[];
  readonly userIds: string[];
}

/** Token stored at itemIds[0]; RecBole uses the same name for its padding id. */
export const PAD_TOKEN = '[PAD]';
