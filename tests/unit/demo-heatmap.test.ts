// The demo's heatmap legend: one entry per level, "off" for a level table's 0-bit first level, in a
// colour of its own outside the blue scale of the bit widths.
import { describe, expect, it } from 'vitest';
import type { Strategy } from '../../src/core/strategy.ts';
import { BIT_COLOURS, legendEntries } from '../../src/demo/heatmap.ts';

const strategy = (levelTable: Strategy['levelTable']): Strategy => ({
  levelTable,
  beta: 0.375,
  layers: [
    { name: 'block0.attn.q', levels: Uint8Array.from([0, 0, 1, 3]) },
    { name: 'block0.attn.k', levels: Uint8Array.from([2, 0]) },
  ],
});

describe('heatmap legend', () => {
  it('labels the off level "off" with its own colour, and counts its channels', () => {
    const entries = legendEntries(strategy([0, 3, 4, 5]));
    expect(entries.map((e) => `${e.label} · ${e.channels}`)).toEqual(['off · 3', '3 bit · 1', '4 bit · 1', '5 bit · 1']);
    const colours = entries.map((e) => e.colour);
    expect(new Set(colours).size).toBe(4);
    expect(colours[0]).toBe(BIT_COLOURS[0]);
    for (let bits = 1; bits <= 8; bits++) expect(BIT_COLOURS[bits]).not.toBe(BIT_COLOURS[0]);
  });

  it('labels widths in bits otherwise', () => {
    expect(legendEntries(strategy([2, 4, 6, 8])).map((e) => e.label)).toEqual(['2 bit', '4 bit', '6 bit', '8 bit']);
  });
});
