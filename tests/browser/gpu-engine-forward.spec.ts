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
