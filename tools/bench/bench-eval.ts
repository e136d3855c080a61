/**
 * Deployment-evaluation benchmark: `npm run bench:eval -- <artifact dir> --data <path> [--k-core 10]
 * [--workers 2] [--users N] [--out results/bench-eval.json]`.
 *
 * Wall seconds to rank the test users of a trained artifact through the deployment path (per-user
 * strategy, weights quantized to it, CPU forward, full ranking: what a run's final evaluation and
 * the strategy study repeat several times) on this thread alone and split over `--workers` threads
 * (chord/deploy-workers.ts), one after the other in one process; the two must give the same metrics
 * and ranks. Wall time, so only an otherwise idle machine shows what the threads buy (the load
 * average at the start is recorded). `--users N` ranks a fixed seeded sample of N test users.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCli, UsageError } from '../../src/cli/run-cli.ts';
import { parseCoreThreshold } from '../../src/data/kcore.ts';
import { loadDataset } from '../../src/data/load.ts';
import { prepareDataset } from '../../src/data/split.ts';
import type { SplitDataset } from '../../src/data/types.ts';
import { sampleUsers, testHistories, VALIDATION_SAMPLE_SEED } from '../../src/model/chord/data.ts';
import { withDeploymentWorkers } from '../../src/model/chord/deploy-workers.ts';
import { evaluateAndRankDeployment, prepareDeployment, recordedDeployOptions } from '../../src/model/chord/deployed.ts';
import { readArtifact } from '../../src/model/export.ts';

export interface EvalBench {
  readonly modelId: string;
  readonly users: number;
  readonly items: number;
  /** Strategies per user (a hypernet) or one fixed fp32 model (Base). */
  readonly personalised: boolean;
  readonly workers: number;
  readonly oneThreadSeconds: number;
  readonly splitSeconds: number;
  /** oneThreadSeconds / splitSeconds. */
  readonly speedup: number;
  readonly testNdcg10: number;
}

/** Times the test ranking of `artifactDir` on one thread and on `workers`; throws if they differ. */
export async function benchEvaluation(artifactDir: string, ds: SplitDataset, workers: number, users?: number): Promise<EvalBench> {
  const artifact = readArtifact(artifactDir);
  const dep = await prepareDeployment(artifact);
  const opts = recordedDeployOptions((artifact.training as { options?: { gruWindow?: number; activationBits?: number | null } }).options);
  const all = testHistories(ds);
  const test = users === undefined ? all : sampleUsers(all, users, VALIDATION_SAMPLE_SEED);
  const t0 = performance.now();
  const one = evaluateAndRankDeployment(dep, test, opts);
  const oneThreadSeconds = (performance.now() - t0) / 1000;
  const { split, splitSeconds } = await withDeploymentWorkers(dep, workers, async (threads) => {
    const t1 = performance.now();
    const split = await threads.evaluateAndRank(test, opts);
    return { split, splitSeconds: (performance.now() - t1) / 1000 };
  });
  if (!isDeepStrictEqual(split, one)) throw new Error(`${workers} threads ranked ${artifactDir} differently from one thread`);
  return {
    modelId: artifact.manifest.modelId,
    users: one.result.users,
    items: artifact.manifest.numItems,
    personalised: dep.hypernet !== undefined,
    workers,
    oneThreadSeconds,
    splitSeconds,
    speedup: oneThreadSeconds / splitSeconds,
    testNdcg10: one.result.unmasked.ndcg10,
  };
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      'k-core': { type: 'string', default: '10' },
      workers: { type: 'string', default: '2' },
      users: { type: 'string' },
      out: { type: 'string', default: 'results/bench-eval.json' },
    },
  });
  if (positionals.length === 0) throw new UsageError('give one or more artifact directories');
  if (!values.data) throw new UsageError('--data <dataset> is required (the artifacts\' dataset)');
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 2) throw new UsageError(`--workers must be an integer >= 2, got ${values.workers}`);
  const users = values.users === undefined ? undefined : Number(values.users);
  if (users !== undefined && (!Number.isInteger(users) || users < 1)) throw new UsageError(`--users must be a positive integer, got ${values.users}`);
  const ds = prepareDataset(loadDataset(values.data).interactions, { k: parseCoreThreshold(values['k-core']!) }).split;
  const loadAverage = os.loadavg()[0]!;
  const rows: EvalBench[] = [];
  for (const dir of positionals) {
    const r = await benchEvaluation(dir, ds, workers, users);
    rows.push(r);
    console.log(
      `${r.modelId}: ${r.users} test users x ${r.items} items: ${r.oneThreadSeconds.toFixed(1)} s on one thread, ` +
        `${r.splitSeconds.toFixed(1)} s on ${workers} (${r.speedup.toFixed(2)}x), same ranks`,
    );
  }
  const out = resolve(values.out!);
  const report = {
    format: 'chord-bench-eval',
    version: 1,
    command: `npm run bench:eval -- ${argv.join(' ')}`,
    data: values.data,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', loadAverageAtStart: loadAverage, node: process.version },
    date: new Date().toISOString(),
    rows,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${out} (load average at start ${loadAverage.toFixed(2)} on ${os.cpus().length} CPUs)`);
}

const USAGE = `usage: npm run bench:eval -- <artifact dir>... --data <path> [--k-core 10] [--workers 2] [--users N]
                            [--out results/bench-eval.json]
  Wall seconds to rank the test users of each artifact through the deployment path on one thread and
  on --workers threads (the two must agree); --users N ranks a seeded sample of N. --k-core 0 for the
  already-filtered Amazon sets. Compare on an otherwise idle machine.`;

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runCli({ program: 'bench:eval', usage: USAGE, main });
}
