import { expect, test } from '@playwright/test';
import { openPageForEachTest } from './open-page.ts';

// The whole GPU rerank against the CPU path of src/core/forward, with random trained tensors, frozen
// weights from generateFrozenWeights and a random mixed strategy (levels [2, 4, 6, 8] per channel).
openPageForEachTest('engine');

const TOL = 1e-4;

for (const backbone of ['sasrec', 'caser'] as const) {
  test(`${backbone}: representation equals core's forward (short, full, overlong, padded, empty histories)`, async ({ page }) => {
    const r = await page.evaluate((b) => window.chordEngine.forwardParity({ backbone: b, seed: 1 }), backbone);
    expect(r.repDim).toBe(backbone === 'sasrec' ? 64 : 128);
    expect(r.results).toHaveLength(7);
    console.log(`${backbone} rep max rel err: ${r.results.map((c) => c.maxRelErr.toExponential(1)).join(' ')}`);
    for (const c of r.results) {
      expect(c.compared).toBe(r.repDim);
      expect(c.refAbsMax).toBeGreaterThan(0);
      expect(c.maxRelErr, `history of ${c.length}`).toBeLessThanOrEqual(TOL);
    }
  });

  test(`${backbone}: GPU and CPU top-k identical, 100 candidates, several seeds; 1 submit + 1 readback`, async ({ page }) => {
    const seeds = [1, 2, 3, 4, 5];
    const r = await page.evaluate(
      (o) => window.chordEngine.rankingParity(o),
      { backbone, seeds, candidates: 100, k: 100 },
    );
    expect(r).toHaveLength(seeds.length);
    console.log(`${backbone} score max rel err: ${r.map((s) => s.scores.maxRelErr.toExponential(1)).join(' ')}`);
    for (const s of r) {
      expect(s.identical, `seed ${s.seed}: gpu ${s.gpuTop} cpu ${s.cpuTop}`).toBe(true);
      expect(s.orderIdentical, `seed ${s.seed}`).toBe(true);
      expect(s.embeddingsIdentical, `seed ${s.seed} (shop embeddings)`).toBe(true);
      expect(s.scores.compared).toBe(100);
      expect(s.scores.maxRelErr).toBeLessThanOrEqual(TOL);
      // Counted by patching GPUQueue.submit / GPUBuffer.mapAsync, and by the engine itself.
      expect(s.counted.submits).toBeLessThanOrEqual(3);
      expect(s.counted.maps).toBe(1);
      expect(s.engineCounts).toEqual({ submits: s.counted.submits, readbacks: 1 });
    }
  });
}

// 3-bit activations move the representation far from the float one: every history but the empty /
// padded-last SASRec ones, which have no backbone pass and are equal.
for (const [backbone, granularity, minMoved] of [
  ['sasrec', 'token', 5],
  ['caser', 'tensor', 6],
] as const) {
  test(`${backbone} w3a3: per-${granularity} activation quantization at the reference placement`, async ({ page }) => {
    const rep = await page.evaluate((b) => window.chordEngine.forwardParity({ backbone: b, seed: 2, activationBits: 3 }), backbone);
    console.log(`${backbone} w3a3 rep max rel err: ${rep.results.map((c) => c.maxRelErr.toExponential(1)).join(' ')}; vs float: ${rep.results.map((c) => c.vsFloat.toFixed(2)).join(' ')}`);
    for (const c of rep.results) expect(c.maxRelErr, `history of ${c.length}`).toBeLessThanOrEqual(TOL);
    const moved = rep.results.filter((c) => c.vsFloat > 0.05).length;
    expect(moved).toBeGreaterThanOrEqual(minMoved);
    const rank = await page.evaluate(
      (b) => window.chordEngine.rankingParity({ backbone: b, seeds: [6, 7], candidates: 100, k: 20, activationBits: 3 }),
      backbone,
    );
    for (const s of rank) expect(s.identical, `seed ${s.seed}`).toBe(true);
  });
}

// The 8-bit item table (core/item-table.ts) read by the kernels, at a catalogue of a few thousand
// items: the full-catalogue top-k (recommend, two-pass top-k over every item) and a rerank of
// 1,000 candidates give the CPU reference's order on the same dequantized values.
for (const backbone of ['sasrec', 'caser'] as const) {
  test(`${backbone}: 8-bit item table, 3,000 items: full-catalogue top-k and 1,000-candidate rerank equal the CPU's`, async ({ page }) => {
    for (const [seed, k] of [[1, 10], [2, 100]] as const) {
      const r = await page.evaluate((o) => window.chordEngine.itemTableParity(o), { backbone, seed, numItems: 3000, candidates: 1000, k });
      const d = 64; // hidden (SASRec) and d (Caser) of the test models
      // int8 codes in whole words per row + one f16 scale per row.
      expect(r.tableBytes).toBe(3001 * Math.ceil(d / 4) * 4 + Math.ceil(3001 / 2) * 4);
      expect(r.memory).toEqual({ format: 'int8', bytes: r.tableBytes });
      expect(r.recommend.identical, `gpu ${r.recommend.got} cpu ${r.recommend.want}`).toBe(true);
      expect(r.recommend.scores.maxRelErr).toBeLessThanOrEqual(TOL);
      expect(r.rerank).toEqual({ identical: true, count: 1000 });
      expect(r.float32Identical).toBe(true);
    }
  });
}

// The off level: levels 0/3/4/5, a quarter of the channels switched off (weights exactly 0, output
// the bias alone). The whole GPU forward and ranking equal core's CPU path on the same strategy.
for (const backbone of ['sasrec', 'caser'] as const) {
  test(`${backbone}: off level (levels 0/3/4/5): representation and top-k equal core's CPU path`, async ({ page }) => {
    const levelTable = [0, 3, 4, 5] as [number, number, number, number];
    const rep = await page.evaluate((o) => window.chordEngine.forwardParity(o), { backbone, seed: 3, levelTable });
    console.log(`${backbone} off-level rep max rel err: ${rep.results.map((c) => c.maxRelErr.toExponential(1)).join(' ')}`);
    for (const c of rep.results) {
      expect(c.compared).toBe(rep.repDim);
      expect(c.maxRelErr, `history of ${c.length}`).toBeLessThanOrEqual(TOL);
    }
    const rank = await page.evaluate((o) => window.chordEngine.rankingParity(o), { backbone, seeds: [8, 9], candidates: 100, k: 100, levelTable });
    for (const s of rank) {
      expect(s.identical, `seed ${s.seed}: gpu ${s.gpuTop} cpu ${s.cpuTop}`).toBe(true);
      expect(s.orderIdentical, `seed ${s.seed}`).toBe(true);
      expect(s.embeddingsIdentical, `seed ${s.seed}`).toBe(true);
      expect(s.scores.maxRelErr).toBeLessThanOrEqual(TOL);
    }
  });
}
