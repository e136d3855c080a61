/**
 * Drift detector settings for the demo model (src/core/drift.ts explains each one).
 *
 * Measured on the trained demo GRU over every ordered pair of categories (56 paths of 6 clicks on
 * one category's best sellers, then 8 on another's): with these, the first strategy is asked for
 * on the 2nd click (a one-click z is a poor reference: the next clicks in the same category move
 * it by up to ~0.3 in cosine distance), staying in a category never asks again, and every switch
 * asks exactly once, 3-6 clicks after it (the distance climbs from ~0.1 to ~0.7 over 3-5 clicks).
 * The defaults (0.5 / 0.3, warm-up 1) asked twice inside one category on 7 of the 56 paths and
 * missed one switch. Re-measure with `npx tsx tools/drift/tune-drift.ts` after a new demo model.
 */
import type { DriftOptions } from '../core/drift.ts';

export const DEMO_DRIFT: DriftOptions = {
  high: 0.4,
  low: 0.25,
  confirmClicks: 3,
  warmupClicks: 2,
};
