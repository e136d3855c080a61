import { DatasetError } from './errors.ts';
import { PAD_TOKEN, type Interaction, type SequenceData } from './types.ts';

/**
 * Groups interactions by user and orders each user's interactions by time. The sort is stable:
 * interactions with equal times keep their input (file) order, which is the only order information
 * left for them. Users appear in order of their first interaction in the input.
 */
export function groupChronologically(interactions: readonly Interaction[]): Map<string, Interaction[]> {
  const byUser = new Map<string, Interaction[]>();
  for (const x of interactions) {
    const list = byUser.get(x.user);
    if (list) list.push(x);
    else byUser.set(x.user, [x]);
  }
  // Array.prototype.sort is stable since ES2019, so ties keep insertion (= file) order.
  for (const list of byUser.values()) list.sort((a, b) => a.time - b.time);
  return byUser;
}

/**
 * Orders interactions per user (see groupChronologically) and remaps ids to dense integers:
 * users 0..U-1 and items 1..N, each numbered in order of first appearance in the input, as
 * RecBole's remapping does; item id 0 is the padding id (itemIds[0] = PAD_TOKEN).
 */
export function buildSequences(interactions: readonly Interaction[]): SequenceData {
  const itemIds: string[] = [PAD_TOKEN];
  const itemIndex = new Map<string, number>();
  for (const x of interactions) {
    if (!itemIndex.has(x.item)) {
      if (x.item === PAD_TOKEN) {
        throw new DatasetError('DATASET_RESERVED_ID', `item id "${PAD_TOKEN}" is reserved for padding`);
      }
      itemIndex.set(x.item, itemIds.length);
      itemIds.push(x.item);
    }
  }
  const userIds: string[] = [];
  const sequences: Int32Array[] = [];
  for (const [user, list] of groupChronologically(interactions)) {
    userIds.push(user);
    sequences.push(Int32Array.from(list, (x) => itemIndex.get(x.item)!));
  }
  return { numItems: itemIds.length - 1, numUsers: userIds.length, sequences, itemIds, userIds };
}

/** Original token -> dense id lookups (the inverse of itemIds / userIds). */
export function idMaps(data: { readonly itemIds: readonly string[]; readonly userIds: readonly string[] }): {
  items: Map<string, number>;
  users: Map<string, number>;
} {
  const items = new Map<string, number>();
  data.itemIds.forEach((id, i) => {
    if (i > 0) items.set(id, i);
  });
  const users = new Map<string, number>();
  data.userIds.forEach((id, i) => users.set(id, i));
  return { items, users };
}
