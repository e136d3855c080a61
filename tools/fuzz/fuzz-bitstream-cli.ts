/**
 * Command line for the bitstream fuzzer: `npm run fuzz -- --cases N [--seed S]`.
 * Progress goes to stderr (only on a terminal); the last stdout line is always
 * `N cases, K crashes`, and the exit status is 1 when K > 0 (2 on bad arguments).
 * Runs through the shared CLI runner (src/cli/run-cli.ts): --help, one-line errors.
 */
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { runCli, UsageError } from '../../src/cli/run-cli.ts';
import { runBitstreamFuzz } from './fuzz-bitstream.ts';

const USAGE = 'usage: npm run fuzz -- --cases N [--seed S]   (N >= 0; S an integer in 0..4294967295, default 1)';

function parseCount(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new UsageError(`--${name} must be an integer in 0..${max}, got "${raw}"`);
  }
  return v;
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      cases: { type: 'string' },
      seed: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.cases === undefined) throw new UsageError('--cases is required');
  const cases = parseCount('cases', values.cases, 0, Number.MAX_SAFE_INTEGER);
  const seed = parseCount('seed', values.seed, 1, 0xffffffff);

  const bar = new cliProgress.SingleBar(
    { format: 'fuzz [{bar}] {percentage}% | {value}/{total} cases | {crashes} crashes | ETA {eta_formatted}' },
    cliProgress.Presets.shades_classic,
  );
  bar.start(cases, 0, { crashes: 0 });
  const started = performance.now();
  const result = runBitstreamFuzz({
    cases,
    seed,
    progressEvery: 500,
    onProgress: (done, crashes) => bar.update(done, { crashes }),
  });
  bar.stop();
  const seconds = (performance.now() - started) / 1000;

  for (const f of result.failures) {
    process.stdout.write(
      `crash: case ${f.caseIndex} (${f.kind}): ${f.reason}\n  ${f.inputLength} bytes: ${f.hex}\n`,
    );
  }
  const outcomes = Object.entries(result.outcomes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  process.stdout.write(`seed ${seed}, ${seconds.toFixed(1)} s; outcomes: ${outcomes}\n`);
  process.stdout.write(`${result.cases} cases, ${result.crashes} crashes\n`);
  return result.crashes > 0 ? 1 : 0;
}

await runCli({ program: 'fuzz', usage: USAGE, main });
