import { describe, expect, it } from 'vitest';
import { DatasetError } from '../../src/data/errors.ts';
import { describeCoreThreshold, formatCoreThreshold, kcore, kcoreWithPasses, parseCoreThreshold } from '../../src/data/kcore.ts';
import type { Interaction } from '../../src/data/types.ts';

/** Interactions from "user:item" strings, time = position. */
function ix(...pairs: string[]): Interaction[] {
  return pairs.map((p, time) => {
    const [user, item] = p.split(':') as [string, string];
    return { user, item, time };
  });
}

const pairs = (xs: readonly Interaction[]): string[] => xs.map((x) => `${x.user}:${x.item}`);

/** Reference: peel one under-threshold user or item at a time until none is left. */
function naiveCore(xs: readonly Interaction[], k: number): Interaction[] {
  let cur = [...xs];
  for (;;) {
    const uc = new Map<string, number>();
    const ic = new Map<string, number>();
    for (const x of cur) {
      uc.set(x.user, (uc.get(x.user) ?? 0) + 1);
      ic.set(x.item, (ic.get(x.item) ?? 0) + 1);
    }
    const badUser = [...uc].find(([, c]) => c < k)?.[0];
    if (badUser !== undefined) {
      cur = cur.filter((x) => x.user !== badUser);
      continue;
    }
    const badItem = [...ic].find(([, c]) => c < k)?.[0];
    if (badItem === undefined) return cur;
    cur = cur.filter((x) => x.item !== badItem);
  }
}

describe('kcore', () => {
  // A chain C -> i3 -> B -> ... unravels one link per pass; the D/E x i4/i5 block is a 2-core.
  const chain = ix('A:i1', 'A:i2', 'B:i2', 'B:i3', 'C:i3', 'D:i4', 'D:i5', 'E:i4', 'E:i5');

  it('needs several passes to reach the fixed point', () => {
    const { interactions, passes } = kcoreWithPasses(chain, 2);
    expect(pairs(interactions)).toEqual(['D:i4', 'D:i5', 'E:i4', 'E:i5']);
    expect(passes).toBe(3);
  });

  it('a single pass is not enough on the same input', () => {
    // What one pass alone leaves: drop C (1 interaction) and i1 (1 interaction).
    const onePass = chain.filter((x) => x.user !== 'C' && x.item !== 'i1');
    const stillLow = new Map<string, number>();
    for (const x of onePass) stillLow.set(x.user, (stillLow.get(x.user) ?? 0) + 1);
    expect(stillLow.get('A')).toBe(1);
    expect(pairs(kcore(onePass, 2))).toEqual(['D:i4', 'D:i5', 'E:i4', 'E:i5']);
  });

  it('keeps the input order of the survivors and leaves a k-core untouched', () => {
    const block = ix('E:i5', 'D:i4', 'E:i4', 'D:i5');
    const { interactions, passes } = kcoreWithPasses(block, 2);
    expect(interactions).toEqual(block);
    expect(passes).toBe(0);
  });

  it('counts repeated (user, item) pairs once per occurrence, like RecBole', () => {
    // U has 2 rows but one distinct item; with k = 2 both U and item x survive on repeats alone.
    const dup = ix('U:x', 'U:x');
    expect(kcore(dup, 2)).toHaveLength(2);
    expect(kcore(dup, 3)).toHaveLength(0);
  });

  it('supports separate user and item thresholds', () => {
    const xs = ix('A:a', 'A:b', 'A:c', 'B:a', 'B:b', 'C:a');
    // users need 2, items need 2: C (1) goes, c (1) goes, then A:a,A:b,B:a,B:b remain.
    expect(pairs(kcore(xs, { user: 2, item: 2 }))).toEqual(['A:a', 'A:b', 'B:a', 'B:b']);
    // users need 3, items need 1: only A survives the first pass, and it keeps all 3 items.
    expect(pairs(kcore(xs, { user: 3, item: 1 }))).toEqual(['A:a', 'A:b', 'A:c']);
  });

  it('k of 0 or 1 keeps everything; a bad k is rejected', () => {
    expect(kcore(chain, 1)).toEqual(chain);
    expect(kcore(chain, 0)).toEqual(chain);
    expect(() => kcore(chain, 2.5)).toThrow(DatasetError);
    expect(() => kcore(chain, -1)).toThrow(DatasetError);
  });

  it('matches one-at-a-time peeling on random data, and the result is a k-core', () => {
    let s = 12345;
    const rand = (n: number): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return (s >>> 8) % n;
    };
    for (let trial = 0; trial < 20; trial++) {
      const xs: Interaction[] = [];
      for (let i = 0; i < 300; i++) {
        // Skewed ids so some users and items are rare.
        xs.push({ user: `u${rand(rand(40) + 1)}`, item: `i${rand(rand(60) + 1)}`, time: i });
      }
      const k = 2 + (trial % 4);
      const got = kcore(xs, k);
      expect(pairs(got)).toEqual(pairs(naiveCore(xs, k)));
      const uc = new Map<string, number>();
      const ic = new Map<string, number>();
      for (const x of got) {
        uc.set(x.user, (uc.get(x.user) ?? 0) + 1);
        ic.set(x.item, (ic.get(x.item) ?? 0) + 1);
      }
      for (const c of [...uc.values(), ...ic.values()]) expect(c).toBeGreaterThanOrEqual(k);
    }
  });

  it('reads a threshold as N or USER,ITEM, writes it back the same way, and names it', () => {
    expect(parseCoreThreshold('10')).toBe(10);
    expect(parseCoreThreshold('10,21')).toEqual({ user: 10, item: 21 });
    expect(parseCoreThreshold(' 5 , 5 ')).toBe(5);
    for (const text of ['10', '10,21', '0', '0,3']) expect(formatCoreThreshold(parseCoreThreshold(text))).toBe(text);
    for (const bad of ['', 'ten', '-1', '1.5', '1,2,3', '10,', '1e3']) {
      expect(() => parseCoreThreshold(bad), bad).toThrow(DatasetError);
    }
    expect(describeCoreThreshold(10)).toBe('10-core');
    expect(describeCoreThreshold(0)).toBe('no k-core filter');
    expect(describeCoreThreshold({ user: 10, item: 21 })).toBe('users >= 10, items >= 21 interactions');
  });
});
