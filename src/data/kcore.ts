import { DatasetError } from './errors.ts';
import type { Interaction } from './types.ts';

/** Minimum interaction counts; a plain number k means {user: k, item: k}. */
export type CoreThreshold = number | { readonly user: number; readonly item: number };

/** The user and item thresholds of a CoreThreshold. */
export function coreThresholds(k: CoreThreshold): { readonly user: number; readonly item: number } {
  return typeof k === 'number' ? { user: k, item: k } : k;
}

/**
 * A threshold from its command-line form: `N` (users and items, the usual k-core) or `U,I` (users
 * at least U, items at least I; e.g. `10,21` keeps ML-100K's items with 21 ratings or more, the
 * CHORD paper's item counts). Throws DATASET_BAD_OPTION otherwise.
 */
export function parseCoreThreshold(text: string): CoreThreshold {
  const parts = text.split(',').map((p) => p.trim());
  const values = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : Number.NaN));
  if ((parts.length !== 1 && parts.length !== 2) || values.some((v) => !Number.isSafeInteger(v))) {
    throw new DatasetError('DATASET_BAD_OPTION', `a k-core threshold must be N or USER,ITEM (non-negative integers), got "${text}"`);
  }
  return values.length === 1 || values[0] === values[1] ? values[0]! : { user: values[0]!, item: values[1]! };
}

/** The command-line form parseCoreThreshold reads. */
export function formatCoreThreshold(k: CoreThreshold): string {
  const { user, item } = coreThresholds(k);
  return user === item ? String(user) : `${user},${item}`;
}

/** How a log or results file names the filter: "10-core", "users >= 10, items >= 21", "no k-core filter". */
export function describeCoreThreshold(k: CoreThreshold): string {
  const { user, item } = coreThresholds(k);
  if (user === item) return user === 0 ? 'no k-core filter' : `${user}-core`;
  return `users >= ${user}, items >= ${item} interactions`;
}

export interface KCoreResult {
  readonly interactions: Interaction[];
  /** Filtering passes that removed something (0 when the input already was a k-core). */
  readonly passes: number;
}

/**
 * k-core filter: drops users with fewer than `k.user` and items with fewer than `k.item`
 * interactions, repeating until nothing changes (dropping an item can push a user below k and
 * vice versa). The input order of the survivors is kept.
 *
 * Counting follows RecBole's `user_inter_num_interval` / `item_inter_num_interval` filter: every
 * interaction row counts, so a repeated (user, item) pair counts once per occurrence (RecBole only
 * deduplicates when `rm_dup_inter` is set, which this function leaves to the caller). Each pass
 * removes the banned users and items of that pass together, as RecBole does; the fixed point is the
 * same as removing them one by one, because the k-core is the unique largest sub-set in which every
 * remaining user and item meets its threshold.
 */
export function kcore(interactions: readonly Interaction[], k: CoreThreshold): Interaction[] {
  return kcoreWithPasses(interactions, k).interactions;
}

export function kcoreWithPasses(interactions: readonly Interaction[], k: CoreThreshold): KCoreResult {
  const { user: minUser, item: minItem } = coreThresholds(k);
  for (const [name, v] of [['user', minUser], ['item', minItem]] as const) {
    if (!Number.isInteger(v) || v < 0) {
      throw new DatasetError('DATASET_BAD_OPTION', `k-core ${name} threshold must be a non-negative integer, got ${v}`);
    }
  }
  const n = interactions.length;
  const userOf = new Int32Array(n);
  const itemOf = new Int32Array(n);
  const userIndex = new Map<string, number>();
  const itemIndex = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const x = interactions[i]!;
    userOf[i] = intern(userIndex, x.user);
    itemOf[i] = intern(itemIndex, x.item);
  }
  const userCount = new Int32Array(userIndex.size);
  const itemCount = new Int32Array(itemIndex.size);
  for (let i = 0; i < n; i++) {
    userCount[userOf[i]!]!++;
    itemCount[itemOf[i]!]!++;
  }

  const alive = new Uint8Array(n).fill(1);
  let passes = 0;
  for (;;) {
    // Thresholds are evaluated on this pass's counts before any removal, as in RecBole.
    const banUser = userCount.map((c) => (c > 0 && c < minUser ? 1 : 0));
    const banItem = itemCount.map((c) => (c > 0 && c < minItem ? 1 : 0));
    let removed = 0;
    for (let i = 0; i < n; i++) {
      if (alive[i] && (banUser[userOf[i]!] || banItem[itemOf[i]!])) {
        alive[i] = 0;
        userCount[userOf[i]!]!--;
        itemCount[itemOf[i]!]!--;
        removed++;
      }
    }
    if (removed === 0) break;
    passes++;
  }
  return { interactions: interactions.filter((_, i) => alive[i] === 1), passes };
}

function intern(index: Map<string, number>, key: string): number {
  let id = index.get(key);
  if (id === undefined) {
    id = index.size;
    index.set(key, id);
  }
  return id;
}
