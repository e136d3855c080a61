/**
 * Every command-line tool answers --help with its usage (exit 0, even without its required
 * options) and reports an expected failure as one line, `<program>: <CODE>: <message>`, without a
 * stack trace (src/cli/run-cli.ts). Each runs as a real process, the way its npm script runs it.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { describeCliError, UsageError, wantsHelp } from '../../src/cli/run-cli.ts';
import { ModelLoadError } from '../../src/cloud/errors.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const exec = promisify(execFile);

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(file: string, args: readonly string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', file, ...args], {
      cwd: ROOT,
      timeout: 120_000,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

// [npm script, file, the start of its usage]
const TOOLS: readonly (readonly [string, string, RegExp])[] = [
  ['train', 'src/model/train-cli.ts', /^usage: npm run train -- --data <path>/],
  ['reproduce', 'src/model/reproduce-cli.ts', /^usage: npm run reproduce -- --data/],
  ['serve', 'src/cloud/serve.ts', /^usage: npm run serve -- --models <dir>/],
  ['stats', 'src/data/stats-cli.ts', /^usage: npm run stats -- --data <path>/],
  ['synth', 'src/data/synthetic-cli.ts', /^usage: npm run synth -- --out <dir>/],
  ['fuzz', 'tools/fuzz/fuzz-bitstream-cli.ts', /^usage: npm run fuzz -- --cases N/],
  ['bench:train', 'tools/bench/bench-train.ts', /^usage: npm run bench:train --/],
  ['bench:eval', 'tools/bench/bench-eval.ts', /^usage: npm run bench:eval -- <artifact dir>/],
  ['bench:server', 'tools/bench/bench-server.ts', /^usage: npm run bench:server --/],
  ['bench:gpu', 'tools/bench/bench-gpu.ts', /^usage: npm run bench:gpu --/],
  ['bench:soak', 'tools/bench/soak-server.ts', /^usage: npm run bench:soak --/],
  ['chord-rerank', 'src/cloud/bin.ts', /^usage: chord-rerank <command>/],
  ['probe', 'tools/probe-strategy.ts', /^usage: npm run probe -- <artifact dir>/],
  ['study', 'tools/strategy-study.ts', /^usage: npm run study -- --data/],
  ['item-table-effect', 'tools/item-table-effect.ts', /^usage: npm run item-table-effect -- <artifact dir>/],
];

describe('every CLI', () => {
  it('answers --help with its usage and exit 0', async () => {
    const outcomes = await Promise.all(TOOLS.map(([, file]) => cli(file, ['--help'])));
    for (const [i, [name, , usage]] of TOOLS.entries()) {
      const o = outcomes[i]!;
      expect({ name, code: o.code, stderr: o.stderr }).toEqual({ name, code: 0, stderr: '' });
      expect(o.stdout, name).toMatch(usage);
    }
  }, 180_000);

  it('prints expected errors as one line with their code, no stack trace', async () => {
    const cases: [string, string[], number, RegExp][] = [
      ['src/model/train-cli.ts', [], 1, /^train: CHORD_BAD_OPTION: --data <path> is required$/],
      ['src/model/train-cli.ts', ['--data', 'x', '--backbone', 'bert'], 1, /^train: CHORD_BAD_OPTION: --backbone must be sasrec or caser/],
      ['src/model/train-cli.ts', ['--data', 'no/such/dataset.inter', '--no-progress', '--out', '.cache/cli-help-never'], 1, /^train: DATASET_\w+: /],
      ['src/model/train-cli.ts', ['--colour', 'red'], 2, /^train: ERR_PARSE_ARGS_UNKNOWN_OPTION: .*\(--help for usage\)$/],
      ['src/model/reproduce-cli.ts', [], 2, /^reproduce: USAGE: --data <path> is required/],
      ['src/data/stats-cli.ts', ['--data', 'no/such/file.data'], 1, /^stats: DATASET_\w+: /],
      ['src/data/stats-cli.ts', ['--data', 'x', '--k=-1'], 2, /^stats: USAGE: --k: a k-core threshold must be N or USER,ITEM/],
      ['src/data/synthetic-cli.ts', [], 2, /^synth: USAGE: --out <dir> is required/],
      ['tools/fuzz/fuzz-bitstream-cli.ts', ['--cases', 'many'], 2, /^fuzz: USAGE: --cases must be an integer/],
      ['tools/bench/bench-train.ts', ['--steps', '0'], 2, /^bench:train: USAGE: --steps must be a positive integer/],
      ['tools/bench/bench-eval.ts', ['some/artifact', '--data', 'x', '--workers', '1'], 2, /^bench:eval: USAGE: --workers must be an integer >= 2/],
      ['tools/probe-strategy.ts', ['some/artifact', '--data', 'x', '--workers', 'two'], 2, /^probe: USAGE: --workers must be a positive integer/],
      ['tools/bench/bench-gpu.ts', ['--port', 'x'], 2, /^bench:gpu: USAGE: --port must be a positive integer/],
      ['tools/bench/soak-server.ts', ['--duration-s', 'x'], 2, /^bench:soak: USAGE: --duration-s must be a positive integer/],
      ['src/cloud/bin.ts', ['launch'], 2, /^chord-rerank: USAGE: unknown command "launch"/],
      ['src/cloud/bin.ts', ['export-page', 'only-one'], 2, /^chord-rerank export-page: USAGE: expects exactly two arguments/],
      ['src/cloud/bin.ts', ['export-page', 'no/such/artifact', '.cache/cli-help-never'], 1, /^chord-rerank export-page: MODEL_LOAD_FAILED: /],
      ['tools/probe-strategy.ts', ['some/artifact'], 2, /^probe: USAGE: --data <dataset> is required/],
      ['tools/strategy-study.ts', ['--list'], 2, /^study: USAGE: --data <dataset dir or file> is required/],
      ['tools/item-table-effect.ts', ['some/artifact'], 2, /^item-table-effect: USAGE: --data <dataset> is required/],
    ];
    const outcomes = await Promise.all(cases.map(([file, args]) => cli(file, args)));
    for (const [i, [file, args, code, line]] of cases.entries()) {
      const o = outcomes[i]!;
      const what = `${file} ${args.join(' ')}`;
      expect(o.code, what).toBe(code);
      expect(o.stderr.trimEnd().split('\n'), what).toHaveLength(1);
      expect(o.stderr.trimEnd(), what).toMatch(line);
    }
  }, 180_000);
});

describe('the runner', () => {
  it('sees --help and -h only before a -- terminator', () => {
    expect(wantsHelp(['--data', 'x', '--help'])).toBe(true);
    expect(wantsHelp(['-h'])).toBe(true);
    expect(wantsHelp(['--', '--help'])).toBe(false);
    expect(wantsHelp(['--data', 'help'])).toBe(false);
  });

  it('describes ChordErrors and parseArgs errors, and leaves bugs alone', () => {
    expect(describeCliError('x', new ModelLoadError('m', 'two\n  lines'))).toEqual({ line: 'x: MODEL_LOAD_FAILED: m: two lines', exitCode: 1 });
    expect(describeCliError('x', new UsageError('--a is required'))).toEqual({ line: 'x: USAGE: --a is required (--help for usage)', exitCode: 2 });
    expect(describeCliError('x', new TypeError('plain'))).toBeUndefined();
    expect(describeCliError('x', new Error('bug'))).toBeUndefined();
    expect(new UsageError('m').name).toBe('UsageError');
  });
});
