/**
 * The training settings every committed result was trained with, chosen on ML-100K validation
 * (results/ml-100k.md). `train` defaults to them and `reproduce` passes them explicitly, so a
 * shop's first `train` run on its own data starts from what was validated, not from older guesses.
 * No tfjs here: the reproduce planner reads these without loading a backend.
 */
export const VALIDATED_TRAINING = {
  /** A cap high enough that runs end by early stopping (patience), not by the cap. */
  epochs: 100,
  patience: 6,
  lr: 2e-3,
  dropout: 0.5,
} as const;
