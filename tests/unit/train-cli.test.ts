// `npm run train`'s arguments and its frozen-pretrained default: without --pretrained, the Base
// fp32 model is trained first into <out>/base and the requested method freezes its weights. The
// whole command runs here on a tiny generated dataset, a few steps per run.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shippedFrozenWeights } from '../../src/core/frozen.ts';
import { parseManifest, resolveFrozenWeights } from '../../src/core/manifest.ts';
import { formatAtomicInter } from '../../src/data/recbole.ts';
import type { Interaction } from '../../src/data/types.ts';
import { ChordTrainError } from '../../src/model/chord/errors.ts';
import { readArtifact } from '../../src/model/export.ts';
import { runLockPath } from '../../src/model/run-lock.ts';
import { autoBaseOptions, parseTrainArgs, trainCli } from '../../src/model/train-cli.ts';
import { COMMON_ARGS } from '../../src/model/reproduce/plan.ts';
import { cyclicSequences } from '../fixtures/tiny-training.ts';

const parse = (...args: string[]) => parseTrainArgs(['--data', 'd/shop', ...args]);

function badOption(args: string[]): ChordTrainError {
  try {
    parse(...args);
  } catch (e) {
    expect(e).toBeInstanceOf(ChordTrainError);
    return e as ChordTrainError;
  }
  throw new Error(`accepted ${args.join(' ')}`);
}

describe('train-cli arguments', () => {
  it("defaults to the settings reproduce trains every committed result with, for both backbones", () => {
    for (const backbone of ['sasrec', 'caser']) {
      const pick = (argv: string[]) => {
        const { epochs, patience, lr, dropout } = parseTrainArgs(['--data', 'd', '--backbone', backbone, ...argv]).run;
        return { epochs, patience, lr, dropout };
      };
      expect(pick([])).toEqual(pick(COMMON_ARGS));
      expect(pick([])).toEqual({ epochs: 100, patience: 6, lr: 2e-3, dropout: 0.5 });
    }
  });

  it('defaults the quantized methods to frozen-pretrained, with a Base trained into <out>/base', () => {
    for (const method of ['quant', 'custom', 'weighted', 'chord']) {
      const a = parse('--method', method, '--out', 'runs/x');
      expect(a.run.init).toBe('pretrained');
      expect(a.autoBase).toBe(true);
      expect(a.run.pretrainedDir).toBe(join('runs/x', 'base'));
    }
    // The default output directory says which mode it holds, as the model id does.
    expect(parse('--seed', '2').run.out).toBe(join('.cache', 'runs', 'sasrec-chord-pre-s2'));
    expect(parse('--init', 'random', '--seed', '2').run.out).toBe(join('.cache', 'runs', 'sasrec-chord-s2'));
  });

  it('keeps --init random and an explicit --pretrained as they were; Base has no mode to choose', () => {
    const random = parse('--init', 'random', '--out', 'o');
    expect(random.run.init).toBe('random');
    expect(random.autoBase).toBe(false);
    expect(random.run.pretrainedDir).toBeUndefined();
    const given = parse('--pretrained', 'runs/base-s1', '--out', 'o');
    expect(given.run).toMatchObject({ init: 'pretrained', pretrainedDir: 'runs/base-s1' });
    expect(given.autoBase).toBe(false);
    expect(parse('--init', 'pretrained', '--pretrained', 'b').autoBase).toBe(false);
    const base = parse('--method', 'base');
    expect(base.run.init).toBe('random');
    expect(base.autoBase).toBe(false);
    expect(parse('--method', 'base', '--init', 'random').run.init).toBe('random');
  });

  it('refuses contradictory or unknown modes with CHORD_BAD_OPTION', () => {
    expect(badOption(['--init', 'frozen'])).toMatchObject({ code: 'CHORD_BAD_OPTION' });
    expect(badOption(['--method', 'base', '--init', 'pretrained']).message).toMatch(/quantized method/);
    expect(badOption(['--method', 'base', '--pretrained', 'b']).message).toMatch(/not to Base/);
    expect(badOption(['--init', 'random', '--pretrained', 'b']).message).toMatch(/not to --init random/);
    expect(() => parseTrainArgs(['--method', 'chord'])).toThrow(/--data/);
  });

  it('reads --k-core as N or USER,ITEM', () => {
    expect(parse().kCore).toBe(10);
    expect(parse('--k-core', '0').kCore).toBe(0);
    expect(parse('--k-core', '10,21').kCore).toEqual({ user: 10, item: 21 });
    expect(badOption(['--k-core', '10,x'])).toMatchObject({ code: 'CHORD_BAD_OPTION' });
    expect(badOption(['--k-core', '10,x']).message).toMatch(/^--k-core: a k-core threshold must be N or USER,ITEM/);
  });

  it('parses the loss, validation sample and length buckets, refusing options that do not apply', () => {
    expect(parse().run).toMatchObject({ loss: { kind: 'softmax' }, validUsers: 10_000 });
    expect(parse().run.lengthBuckets).toBeUndefined();
    const g = parse('--loss', 'gbce', '--negatives', '128', '--gbce-t', '0.5', '--valid-users', '500', '--length-buckets', '20').run;
    expect(g).toMatchObject({ loss: { kind: 'gbce', negatives: 128, gbceT: 0.5 }, validUsers: 500, lengthBuckets: 20 });
    expect(parse('--loss', 'sampled', '--sampler', 'popularity').run.loss).toMatchObject({ kind: 'sampled', sampler: 'popularity', negatives: 256 });
    expect(badOption(['--loss', 'bpr']).message).toMatch(/--loss must be one of softmax\|sampled\|gbce/);
    expect(badOption(['--negatives', '64']).message).toMatch(/apply to --loss sampled or gbce/);
    expect(badOption(['--loss', 'gbce', '--sampler', 'popularity']).message).toMatch(/samples uniformly/);
    expect(badOption(['--loss', 'sampled', '--negatives', '0']).message).toMatch(/positive integer/);
    expect(badOption(['--loss', 'gbce', '--gbce-t', '2']).message).toMatch(/\[0, 1\]/);
    expect(badOption(['--backbone', 'caser', '--length-buckets', '4']).message).toMatch(/applies to --backbone sasrec/);
    expect(parse().run.watchTest).toBeUndefined();
    expect(parse('--watch-test').run.watchTest).toBe(true);
  });

  it('trains the auto Base with the run\'s shared options, fp32, under its own id and directory', () => {
    const run = parse('--w3a3', '--budgets', '2.5', '--model-id', 'shop', '--lr', '3e-3', '--z-dim', '16', '--out', 'o', '--resume').run;
    const base = autoBaseOptions(run);
    expect(base).toMatchObject({ method: 'base', init: 'random', out: join('o', 'base'), budgets: [], lr: 3e-3, zDim: 16, seed: 1, resume: true });
    expect(base.activationBits).toBeUndefined();
    expect(base.modelId).toBeUndefined();
    expect(base.pretrainedDir).toBeUndefined();
  });
});

describe('train-cli on tiny data', () => {
  let dir: string;
  let data: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'chord-train-cli-'));
    // 24 users walking a 12-item cycle, as a RecBole .inter file.
    const interactions: Interaction[] = cyclicSequences(24, 12).flatMap((seq, u) =>
      Array.from(seq, (item, t) => ({ user: `u${u}`, item: `i${item}`, time: t })),
    );
    data = join(dir, 'tiny');
    mkdirSync(data);
    writeFileSync(join(data, 'tiny.inter'), formatAtomicInter(interactions));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const tiny = (out: string, ...extra: string[]) => [
    '--data', data, '--k-core', '2', '--max-len', '8', '--z-dim', '8', '--hyper-hidden', '8', '--gru-window', '6',
    '--batch', '8', '--epochs', '1', '--max-steps', '2', '--seed', '5', '--no-progress', '--out', join(dir, out), ...extra,
  ];
  const testMetrics = (artifactDir: string) => (JSON.parse(readFileSync(join(artifactDir, 'training.json'), 'utf8')) as { metrics: { test: unknown } }).metrics.test;

  it('by default trains the Base into <out>/base first, then freezes its weights; --resume resumes both', async () => {
    const lines: string[] = [];
    const { base, result } = await trainCli(tiny('auto'), { print: (l) => lines.push(l), tty: false });
    expect(base).toBeDefined();
    expect(base!.artifactDir).toBe(join(dir, 'auto', 'base', 'sasrec-tiny-base-s5'));
    expect(result.artifactDir).toBe(join(dir, 'auto', 'sasrec-tiny-chord-b0125-l2468-pre-s5'));
    // Each run has its own log; the Base's console lines say which run they come from.
    expect(existsSync(join(dir, 'auto', 'base', 'train.log'))).toBe(true);
    expect(readFileSync(join(dir, 'auto', 'train.log'), 'utf8')).not.toMatch(/sasrec-tiny-base-s5/);
    expect(lines.some((l) => l.startsWith('[base] model sasrec-tiny-base-s5'))).toBe(true);
    expect(lines.some((l) => l.startsWith('model sasrec-tiny-chord'))).toBe(true);
    const epochLine = /^(\[base\] )?epoch \d+ loss /;
    expect(lines.filter((l) => epochLine.test(l))).toHaveLength(2);

    const baseArt = readArtifact(base!.artifactDir);
    expect(baseArt.training).toMatchObject({ method: 'base', options: { init: 'random', seed: 5, zDim: 8, maxLen: 8 } });
    // The commit that trained it (the tests run in this repository's checkout).
    expect(baseArt.training).toMatchObject({ code: { commit: expect.stringMatching(/^[0-9a-f]{40}$/), dirty: expect.any(Boolean) } });
    const training = result.training as { options: { init: string; pretrainedDir: string } };
    expect(training.options).toMatchObject({ init: 'pretrained', pretrainedDir: join(dir, 'auto', 'base') });
    const manifest = parseManifest(JSON.parse(readFileSync(join(result.artifactDir, 'manifest.json'), 'utf8')));
    expect(manifest.frozenWeights).toBe('shipped');
    const frozen = await resolveFrozenWeights(manifest, readArtifact(result.artifactDir).backbone);
    const baseWeights = shippedFrozenWeights(baseArt.manifest.layers, baseArt.backbone)!;
    expect(frozen.map((l) => Array.from(l.weights))).toEqual(baseWeights.map((l) => Array.from(l.weights)));

    // The same as training the Base and then `--pretrained <its dir>` by hand.
    const byHand = await trainCli(tiny('by-hand', '--pretrained', join(dir, 'auto', 'base')), { print: () => {}, tty: false });
    expect(byHand.base).toBeUndefined();
    expect(testMetrics(byHand.result.artifactDir)).toEqual(testMetrics(result.artifactDir));

    // A finished pair resumes without training again, and gives the same model.
    const again: string[] = [];
    const resumed = await trainCli(tiny('auto', '--resume'), { print: (l) => again.push(l), tty: false });
    expect(again.some((l) => l.startsWith('[base] resumed from'))).toBe(true);
    expect(again.filter((l) => epochLine.test(l))).toEqual([]);
    expect(testMetrics(resumed.result.artifactDir)).toEqual(testMetrics(result.artifactDir));
  }, 180_000);

  it('refuses a run folder another live process is training into, and takes one whose holder was killed once its lock is stale', async () => {
    const out = join(dir, 'busy');
    mkdirSync(out);
    // Another process takes the folder's lock as train does, and is killed without releasing it.
    const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `
      const { lockRun } = await import(${JSON.stringify(join(process.cwd(), 'src/model/run-lock.ts'))});
      await lockRun(${JSON.stringify(out)});
      console.log('locked');
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      holder.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    const busy = await trainCli(tiny('busy'), { print: () => {}, tty: false }).then(() => undefined, (e: unknown) => e);
    expect(busy).toBeInstanceOf(ChordTrainError);
    expect(busy).toMatchObject({ code: 'CHORD_RUN_BUSY' });
    expect((busy as Error).message).toContain(`${out} is being trained by another process`);
    expect(readdirSync(out)).toEqual(['train.lock']); // nothing trained, nothing written
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.on('exit', resolve));
    // The killed holder's lock stays until it is stale (its time is 10 minutes old), then train takes it and releases it at the end.
    await expect(trainCli(tiny('busy'), { print: () => {}, tty: false })).rejects.toMatchObject({ code: 'CHORD_RUN_BUSY' });
    const old = new Date(Date.now() - 11 * 60_000);
    utimesSync(runLockPath(out), old, old);
    const { result } = await trainCli(tiny('busy', '--init', 'random'), { print: () => {}, tty: false });
    expect(testMetrics(result.artifactDir)).toBeDefined();
    expect(existsSync(runLockPath(out))).toBe(false);
  }, 120_000);

  it('--init random trains no Base and freezes the seed\'s weights', async () => {
    const { base, result } = await trainCli(tiny('random', '--init', 'random'), { print: () => {}, tty: false });
    expect(base).toBeUndefined();
    expect(existsSync(join(dir, 'random', 'base'))).toBe(false);
    expect(parseManifest(JSON.parse(readFileSync(join(result.artifactDir, 'manifest.json'), 'utf8'))).frozenWeights ?? 'seed').toBe('seed');
  }, 120_000);

  it('--z-norm trains, records itself, exports a plain hypernet and resumes to the same numbers', async () => {
    const { result } = await trainCli(tiny('z-norm', '--init', 'random', '--z-norm'), { print: () => {}, tty: false });
    const art = readArtifact(result.artifactDir);
    expect(art.training).toMatchObject({ options: { zNorm: true } });
    expect([...art.hypernet!.tensors.keys()].some((n) => n.startsWith('hyper.z.'))).toBe(false);
    // The final numbers come from the exported artifact through the deployment path (core's hypernet).
    const resumed = await trainCli(tiny('z-norm', '--init', 'random', '--z-norm', '--resume'), { print: () => {}, tty: false });
    expect(testMetrics(resumed.result.artifactDir)).toEqual(testMetrics(result.artifactDir));
    // A run without a hypernet has no z to standardize.
    await expect(trainCli(tiny('z-norm-quant', '--method', 'quant', '--init', 'random', '--z-norm'), { print: () => {}, tty: false })).rejects.toMatchObject({
      code: 'CHORD_BAD_OPTION',
    });
  }, 120_000);
});
