import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatasetError } from '../../src/data/errors.ts';
import { kcoreWithPasses } from '../../src/data/kcore.ts';
import { loadDataset } from '../../src/data/load.ts';
import { buildSequences, groupChronologically, idMaps } from '../../src/data/sequences.ts';
import { prepareDataset, splitLeaveLastOut, testInput, validationInput } from '../../src/data/split.ts';
import { datasetStats, lengthSummary } from '../../src/data/stats.ts';
import { PAD_TOKEN, type Interaction } from '../../src/data/types.ts';

const i = (user: string, item: string, time: number): Interaction => ({ user, item, time });

describe('chronological order', () => {
  it('sorts each user by time and keeps file order on ties', () => {
    const xs = [i('u', 'c', 5), i('v', 'x', 1), i('u', 'a', 3), i('u', 'b', 5), i('u', 'd', 3), i('u', 'e', 1)];
    const grouped = groupChronologically(xs);
    expect([...grouped.keys()]).toEqual(['u', 'v']);
    expect(grouped.get('u')!.map((x) => x.item)).toEqual(['e', 'a', 'd', 'c', 'b']);
  });

  it('a tie run longer than a sort threshold still keeps file order', () => {
    // Engines switch sort algorithms around ~10-20 elements; a long tie run exercises that path.
    const xs = Array.from({ length: 200 }, (_, n) => i('u', `p${n}`, n % 2 === 0 ? 7 : 3));
    const order = groupChronologically(xs).get('u')!.map((x) => Number(x.item.slice(1)));
    const odds = Array.from({ length: 100 }, (_, n) => 2 * n + 1);
    const evens = Array.from({ length: 100 }, (_, n) => 2 * n);
    expect(order).toEqual([...odds, ...evens]);
  });
});

describe('buildSequences', () => {
  it('maps items to 1..N and users to 0..U-1 by first appearance, 0 = padding', () => {
    const xs = [i('bob', 'z', 2), i('amy', 'y', 9), i('bob', 'y', 1), i('amy', 'x', 4)];
    const data = buildSequences(xs);
    expect(data.numItems).toBe(3);
    expect(data.numUsers).toBe(2);
    expect(data.itemIds).toEqual([PAD_TOKEN, 'z', 'y', 'x']);
    expect(data.userIds).toEqual(['bob', 'amy']);
    expect(data.sequences.map((s) => [...s])).toEqual([
      [2, 1], // bob: y(1) then z(2)
      [3, 2], // amy: x(4) then y(9)
    ]);
    const maps = idMaps(data);
    expect(maps.items.get('x')).toBe(3);
    expect(maps.items.has(PAD_TOKEN)).toBe(false);
    expect(maps.users.get('amy')).toBe(1);
  });

  it('refuses an item literally named like the padding token', () => {
    expect(() => buildSequences([i('u', PAD_TOKEN, 0)])).toThrow(DatasetError);
  });
});

describe('leave-last-one-out', () => {
  const xs = [
    i('u0', 'a', 1), i('u0', 'b', 2), i('u0', 'c', 3), i('u0', 'd', 4),
    i('u1', 'c', 10), i('u1', 'a', 30), i('u1', 'b', 20),
  ];

  it('takes the last item as test, the second last as validation, the rest as training', () => {
    const ds = splitLeaveLastOut(buildSequences(xs));
    // items: a=1 b=2 c=3 d=4; u1 in time order: c, b, a
    expect(ds.train.map((s) => [...s])).toEqual([[1, 2], [3]]);
    expect([...ds.valid]).toEqual([3, 2]);
    expect([...ds.test]).toEqual([4, 1]);
    expect([...validationInput(ds, 1)]).toEqual([3]);
    expect([...testInput(ds, 0)]).toEqual([1, 2, 3]);
    expect([...testInput(ds, 1)]).toEqual([3, 2]);
    expect(() => testInput(ds, 2)).toThrow(RangeError);
  });

  it('rejects users with fewer than 3 interactions', () => {
    const err = (() => {
      try {
        splitLeaveLastOut(buildSequences([...xs, i('u2', 'a', 1), i('u2', 'b', 2)]));
      } catch (e) {
        return e as DatasetError;
      }
      return undefined;
    })();
    expect(err?.code).toBe('DATASET_TOO_SHORT');
    expect(err?.message).toContain('"u2" has 2 interactions');
  });

  it('prepareDataset drops short users inside the k-core loop, so no item is orphaned', () => {
    // With k = 1, user s (2 interactions) cannot be split; its drop must also remove item z,
    // which only s clicked, instead of leaving z as an unused dense id.
    const data = [...xs, i('s', 'z', 1), i('s', 'a', 2)];
    const { split, filtered } = prepareDataset(data, { k: 1 });
    expect(split.userIds).toEqual(['u0', 'u1']);
    expect(split.itemIds).toEqual([PAD_TOKEN, 'a', 'b', 'c', 'd']);
    expect(filtered).toHaveLength(xs.length);
    expect(() => prepareDataset(xs, { k: 5 })).toThrow(DatasetError);
  });
});

describe('stats helpers', () => {
  it('counts users, items, interactions and unique pairs', () => {
    const s = datasetStats([i('u', 'a', 1), i('u', 'a', 2), i('v', 'b', 1)]);
    expect(s).toEqual({ users: 2, items: 2, interactions: 3, uniquePairs: 2, density: 0.75 });
    expect(lengthSummary([4, 1, 3, 2])).toEqual({ min: 1, mean: 2.5, median: 2.5, max: 4 });
    expect(lengthSummary([5, 1, 3])).toEqual({ min: 1, mean: 3, median: 3, max: 5 });
  });
});

// MovieLens is never copied into the repo; this runs only where the shared copy is present.
const ML100K = join(import.meta.dirname, '../../../shared/datasets/ml-100k');
describe.skipIf(!existsSync(ML100K))('ml-100k (shared copy)', () => {
  it('has the published 10-core size: 943 users, 1,152 items, 97,953 interactions', () => {
    const { interactions } = loadDataset(ML100K);
    expect(interactions).toHaveLength(100_000);
    const core = kcoreWithPasses(interactions, 10);
    expect(datasetStats(core.interactions)).toMatchObject({ users: 943, items: 1152, interactions: 97_953 });
    const { split } = prepareDataset(interactions, { k: 10 });
    expect(split.numUsers).toBe(943);
    expect(split.numItems).toBe(1152);
    expect(split.train.reduce((n, s) => n + s.length, 0)).toBe(97_953 - 2 * 943);
  });
});
