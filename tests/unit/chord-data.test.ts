/**
 * CHORD's training examples are leak-free: every target an example trains on comes after every
 * item of the GRU window that builds its z (at test time z never contains the held-out item), the
 * GRU window is the history right before the first such target, and every target is still trained
 * on in every epoch.
 */
import { describe, expect, it } from 'vitest';
import { createCaser } from '../../src/model/caser.ts';
import { chordExamples, type ChordExamples } from '../../src/model/chord/data.ts';
import { createSasrec } from '../../src/model/sasrec.ts';

// Items unique across the whole data set, so an item names its (user, position).
const lengths = [2, 3, 5, 8, 9, 13, 17, 30, 41];
let next = 1;
const train = lengths.map((n) => Int32Array.from({ length: n }, () => next++));
const numItems = next - 1;
const position = new Map<number, number>();
for (const t of train) t.forEach((item, p) => position.set(item, p));

/** Per example: the positions of its targets and of its GRU window's items (padding left out). */
function positions(ex: ChordExamples, i: number): { targets: number[]; window: number[] } {
  const pos = (item: number) => position.get(item)!;
  const targets = Array.from(ex.targets.subarray(i * ex.targetsPer, (i + 1) * ex.targetsPer)).filter((x) => x > 0).map(pos);
  const window = Array.from(ex.gru.subarray(i * ex.gruLen, (i + 1) * ex.gruLen)).filter((x) => x > 0).map(pos);
  return { targets, window };
}

function checkLeakFree(ex: ChordExamples, gruLen: number): void {
  const seen = new Map<number, number>();
  let leaks = 0;
  for (let i = 0; i < ex.count; i++) {
    const { targets, window } = positions(ex, i);
    expect(targets.length).toBeGreaterThan(0);
    const first = Math.min(...targets);
    // No target at or before any item its z is built from.
    leaks += targets.filter((p) => window.some((w) => w >= p)).length;
    // The window is the gruLen items right before the first target (as the page would have seen).
    const want = Array.from({ length: Math.min(gruLen, first) }, (_, k) => first - Math.min(gruLen, first) + k);
    expect(window).toEqual(want);
    for (const p of targets) seen.set(train[ex.users[i]!]![p]!, (seen.get(train[ex.users[i]!]![p]!) ?? 0) + 1);
  }
  expect(leaks).toBe(0);
  // Every training target (positions 1..n-1 of every user) at least once; the shift overlaps the
  // newest window with the next one, so a few are seen twice, as in the backbone's own windows.
  const expected = train.reduce((a, t) => a + t.length - 1, 0);
  expect(seen.size).toBe(expected);
  expect([...seen.values()].every((c) => c === 1 || c === 2)).toBe(true);
}

describe('chordExamples (leak-free z)', () => {
  const sasrec = createSasrec({ numItems, numUsers: train.length, maxLen: 8, hidden: 8, heads: 2, blocks: 1, ffn: 8, dropout: 0 });
  for (const zTargets of [1, 3, 8]) {
    for (const gruLen of [3, 12]) {
      it(`SASRec, ${zTargets} target(s) per z, GRU window ${gruLen}: no target inside its own z's window, over every shift`, () => {
        for (let shift = 0; shift < 8; shift++) checkLeakFree(chordExamples(sasrec, train, shift, { gruLen, zTargets }), gruLen);
      });
    }
  }

  it('SASRec with zTargets = maxLen keeps every target of the plain backbone windows (Base and Quant train on these)', () => {
    const ex = chordExamples(sasrec, train, 5, { gruLen: 3, zTargets: 8 });
    const plain = sasrec.examples(train, 5);
    expect(Array.from(ex.seq)).toEqual(Array.from(plain.seq));
    expect(Array.from(ex.targets)).toEqual(Array.from(plain.targets));
  });

  it('SASRec: a target count above maxLen keeps every target; below 1 it is refused', () => {
    const all = chordExamples(sasrec, train, 3, { gruLen: 3, zTargets: 8 });
    const over = chordExamples(sasrec, train, 3, { gruLen: 3, zTargets: 50 });
    expect(Array.from(over.targets)).toEqual(Array.from(all.targets));
    expect(Array.from(over.gru)).toEqual(Array.from(all.gru));
    expect(() => chordExamples(sasrec, train, 0, { gruLen: 3, zTargets: 0 })).toThrow(/z targets 0/);
  });

  it('Caser: no target inside its own z\'s window', () => {
    const caser = createCaser({ numItems, numUsers: train.length, L: 4, hidden: 8, nv: 2, nh: 2, dropout: 0 });
    checkLeakFree(chordExamples(caser, train, 0, { gruLen: 5, zTargets: 1 }), 5);
  });
});
