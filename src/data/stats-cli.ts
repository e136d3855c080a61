/**
 * Usage: tsx src/data/stats-cli.ts --data <path> [--k 10 | --k USER,ITEM] [--json]
 * Prints users / items / interactions before and after the k-core filter, and the shape of the
 * leave-last-one-out split built from the filtered data.
 */
import { parseArgs } from 'node:util';
import { runCli, UsageError } from '../cli/run-cli.ts';
import { formatCoreThreshold, kcoreWithPasses, parseCoreThreshold, type CoreThreshold } from './kcore.ts';
import { loadDataset } from './load.ts';
import { prepareDataset } from './split.ts';
import { datasetStats, lengthSummary, type DatasetStats } from './stats.ts';

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      k: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.data === undefined) throw new UsageError('--data <path> is required');
  let k: CoreThreshold;
  try {
    k = parseCoreThreshold(values.k);
  } catch (error) {
    throw new UsageError(`--k: ${(error as Error).message}`);
  }

  const loaded = loadDataset(values.data);
  const before = datasetStats(loaded.interactions);
  const core = kcoreWithPasses(loaded.interactions, k);
  const after = datasetStats(core.interactions);
  const { split } = prepareDataset(loaded.interactions, { k });
  const trainLengths = split.train.map((s) => s.length);
  const report = {
    file: loaded.file,
    format: loaded.format,
    k,
    before,
    after,
    passes: core.passes,
    split: {
      users: split.numUsers,
      items: split.numItems,
      trainInteractions: trainLengths.reduce((s, v) => s + v, 0),
      trainLength: lengthSummary(trainLengths),
    },
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`dataset   ${report.file} (${report.format})`);
  console.log(row('', 'users', 'items', 'interactions', 'unique pairs', 'density'));
  console.log(statsRow('raw', before));
  console.log(statsRow(typeof k === 'number' ? `${k}-core` : `k ${formatCoreThreshold(k)}`, after));
  console.log(`k-core reached its fixed point after ${core.passes} removing pass(es)`);
  const t = report.split.trainLength;
  console.log(
    `split     ${report.split.users} users, ${report.split.items} items; train ${report.split.trainInteractions}` +
      ` + valid ${split.numUsers} + test ${split.numUsers} interactions;` +
      ` train length min ${t.min} / median ${t.median} / mean ${t.mean.toFixed(1)} / max ${t.max}`,
  );
}

function row(...cells: string[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(8) : c.padStart(14))).join('');
}

function statsRow(label: string, s: DatasetStats): string {
  const fmt = (n: number): string => n.toLocaleString('en-US');
  return row(label, fmt(s.users), fmt(s.items), fmt(s.interactions), fmt(s.uniquePairs), s.density.toFixed(4));
}

const USAGE = `usage: npm run stats -- --data <path> [--k 10 | --k USER,ITEM] [--json]
  <path>: a RecBole .inter file or folder, a MovieLens u.data, or a sequence file (.txt/.seq; see the README).
  Prints users, items and interactions before and after the k-core filter, and the leave-last-one-out split.`;

await runCli({ program: 'stats', usage: USAGE, main });
