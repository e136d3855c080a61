/**
 * Measures drift-detector settings on the demo model's GRU, the way drift-settings.ts was chosen:
 *
 *   npx tsx tools/drift/tune-drift.ts ['{"high":0.4,"low":0.25,"confirmClicks":3,"warmupClicks":2}']
 *
 * For every ordered pair of categories (A, B) it replays 6 clicks on A's best sellers, then 8 on
 * B's, through the core GRU profiler and DriftDetector (a request is treated as answered at once),
 * and prints how many requests happened inside A (1 = only the first strategy), after the switch
 * (1 = exactly one), and how many clicks after the switch the drift fired.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DriftDetector } from '../../src/core/drift.ts';
import type { DriftOptions } from '../../src/core/drift.ts';
import { GruProfiler } from '../../src/core/gru.ts';
import { decodeTensorFile } from '../../src/core/tensor-file.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { byCategory } from '../../src/demo/candidates.ts';
import { parseDemoCatalogue } from '../../src/demo/catalogue.ts';
import { DEMO_DRIFT } from '../../src/demo/drift-settings.ts';
import { modelDir, ROOT } from '../../src/demo/start.ts';

const IN_A = 6;
const IN_B = 8;

function tensors(dir: string, name: string): TensorMap {
  const index: unknown = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
  return decodeTensorFile(index, new Uint8Array(readFileSync(join(dir, `${name}.bin`))));
}

function histogram(values: readonly number[]): string {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => a[0] - b[0]).map(([k, n]) => `${k}: ${n}`).join(', ');
}

const options: DriftOptions = process.argv[2] ? (JSON.parse(process.argv[2]) as DriftOptions) : DEMO_DRIFT;
const dir = modelDir();
const gru = tensors(dir, 'gru');
const backbone = tensors(dir, 'backbone');
const items = JSON.parse(readFileSync(join(dir, 'items.json'), 'utf8')) as string[];
const index = new Map(items.map((id, i) => [id, i]));
const lists = byCategory(parseDemoCatalogue(JSON.parse(readFileSync(join(ROOT, 'public', 'catalogue.json'), 'utf8'))));

const inA: number[] = [];
const afterSwitch: number[] = [];
const delay: number[] = [];
for (let a = 0; a < lists.length; a++) {
  for (let b = 0; b < lists.length; b++) {
    if (a === b) continue;
    const profiler = GruProfiler.fromTensors(gru, backbone, { window: 20 });
    const detector = new DriftDetector(options);
    const path = [...lists[a]!.slice(0, IN_A), ...lists[b]!.slice(0, IN_B)];
    let before = 0;
    let after = 0;
    let first = -1;
    path.forEach((item, k) => {
      const z = profiler.click(index.get(item.id)!);
      if (!detector.observe(z).request) return;
      detector.markApplied(z);
      if (k < IN_A) before++;
      else {
        after++;
        if (first < 0) first = k - IN_A + 1;
      }
    });
    inA.push(before);
    afterSwitch.push(after);
    delay.push(first);
  }
}
console.log(`settings ${JSON.stringify(options)} over ${inA.length} category pairs (count of pairs per value)`);
console.log(`  requests during ${IN_A} clicks in A:    ${histogram(inA)}`);
console.log(`  requests during ${IN_B} clicks in B:    ${histogram(afterSwitch)}`);
console.log(`  clicks into B until the drift (-1 = none): ${histogram(delay)}`);
