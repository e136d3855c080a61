/**
 * The training methods, in the paper's ablation order: Base (fp32), Quant (one uniform width),
 * +Customization (per-user strategies from a hypernet), +Weighted, CHORD. Every method union,
 * CLI choice and results column derives from this one list.
 */
export const METHODS = ['base', 'quant', 'custom', 'weighted', 'chord'] as const;
export type Method = (typeof METHODS)[number];

/** The methods that train quantized weights on a frozen backbone: all but Base. */
export type ChordMethod = Exclude<Method, 'base'>;
export const CHORD_METHODS: readonly ChordMethod[] = METHODS.filter((m): m is ChordMethod => m !== 'base');

/** The methods whose strategies come per user from a hypernet (CHORD and its ablations). */
export type HypernetMethod = Exclude<ChordMethod, 'quant'>;
export const HYPERNET_METHODS: readonly HypernetMethod[] = CHORD_METHODS.filter((m): m is HypernetMethod => m !== 'quant');

export function isHypernetMethod(method: Method): method is HypernetMethod {
  return (HYPERNET_METHODS as readonly Method[]).includes(method);
}
