/**
 * Pins the exact numbers of the tfjs model code: Base SASRec/Caser scores (shared and per-example
 * weights), training-mode losses and two Adam steps, and the same for CHORD-family models (hard
 * strategies, soft training path, activation quantization) on both tfjs backends. The expected
 * values were recorded from the code before a refactor of the forwards and are compared bit for
 * bit, so any change to the order of operations shows up here.
 *
 * After an intended numerical change, re-record with
 *   PIN_UPDATE=1 npx vitest run tests/unit/model-pinned.test.ts
 * and say in the commit why the numbers moved.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import type { ForwardCtx } from '../../src/model/backbone.ts';
import { initBackend, type BackendName } from '../../src/model/backend.ts';
import { batchTensors, disposeBatch } from '../../src/model/batches.ts';
import { createCaser } from '../../src/model/caser.ts';
import { chordBatch, chordExamples, disposeChordBatch } from '../../src/model/chord/data.ts';
import { GroupedAdam } from '../../src/model/chord/loop.ts';
import type { ChordMethod } from '../../src/core/methods.ts';
import { CHORD_DEFAULTS, createChordModel } from '../../src/model/chord/model.ts';
import { createBaseModel } from '../../src/model/model.ts';
import { Adam } from '../../src/model/optim.ts';
import type { ParamMap } from '../../src/model/params.ts';
import { Rng } from '../../src/core/rng.ts';
import { createSasrec } from '../../src/model/sasrec.ts';
import { trainStep } from '../../src/model/train.ts';

const FIXTURE = new URL('../fixtures/model-pinned.json', import.meta.url);
const UPDATE = process.env['PIN_UPDATE'] === '1';

type Record_ = Record<string, number[]>;

/** 16 users over 12 items with two interleaved patterns, so windows hold padding and repeats. */
const train = Array.from({ length: 16 }, (_, u) =>
  Int32Array.from({ length: 6 + (u % 5) }, (_, i) => ((u * (1 + (u & 1)) + i * (1 + (i & 1))) % 12) + 1),
);

const sasrecConfig = { numItems: 12, numUsers: 16, maxLen: 8, hidden: 8, heads: 2, blocks: 2, ffn: 16, dropout: 0.3 };
const caserConfig = { numItems: 12, numUsers: 16, L: 4, hidden: 8, nv: 2, nh: 3, dropout: 0.4 };

/** A ctx whose dropout seeds are 1, 2, 3, ... in call order. */
function trainingCtx(): ForwardCtx {
  let s = 0;
  return { training: true, seed: () => ++s };
}

/** Moves every variable off its special initial values (zero biases, unit gains). */
function jitter(vars: ParamMap, seed: number): void {
  const rng = new Rng(seed);
  for (const name of Object.keys(vars).sort()) {
    const v = vars[name]!;
    v.assign(tf.tensor(Float32Array.from(v.dataSync(), (x) => x + (rng.next() - 0.5) * 0.4), v.shape));
  }
}

const arr = (t: tf.Tensor): number[] => Array.from(t.dataSync());

/** FNV-1a over the bytes of every variable (sorted by name): all trained values, in one number. */
function hashVariables(vars: ParamMap): number {
  let h = 0x811c9dc5;
  for (const name of Object.keys(vars).sort()) {
    const bytes = new Uint8Array(Float32Array.from(vars[name]!.dataSync()).buffer);
    for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  }
  return h;
}

function pinBase(kind: 'sasrec' | 'caser'): Record_ {
  const out: Record_ = {};
  const backbone = kind === 'sasrec' ? createSasrec(sasrecConfig) : createCaser(caserConfig);
  const model = createBaseModel(backbone, 4);
  const other = createBaseModel(backbone, 5);
  jitter(model.params, 6);
  const ex = backbone.examples(train, 1);
  const batch = batchTensors(ex, [0, 3, 5, 8, 13, 21].filter((i) => i < ex.count));
  const seq = batch.seq.slice([0, 0], [3, ex.inputLen]) as tf.Tensor2D;
  const users = batch.users.slice([0], [3]) as tf.Tensor1D;
  tf.tidy(() => {
    out['scores'] = arr(model.scores(seq, users));
    // Example k uses model k's layer weights.
    const perExample = Object.fromEntries(Object.keys(model.weights).map((n) => [n, tf.stack([model.weights[n]!, other.weights[n]!])]));
    const two = seq.slice([0, 0], [2, ex.inputLen]) as tf.Tensor2D;
    out['scoresPerExample'] = arr(backbone.scores(model.params, perExample, two, users.slice([0], [2]) as tf.Tensor1D));
    out['lossTraining'] = arr(model.loss(batch, trainingCtx()));
    out['lossInference'] = arr(model.loss(batch, { training: false, seed: () => 0 }));
  });
  const adam = new Adam({ lr: 1e-2 });
  const ctx = trainingCtx();
  out['stepLosses'] = [trainStep(model, adam, batch, ctx), trainStep(model, adam, batch, ctx)];
  tf.tidy(() => {
    out['scoresAfter'] = arr(model.scores(seq, users));
    out['lossAfter'] = arr(model.loss(batch, { training: false, seed: () => 0 }));
  });
  out['variablesAfterHash'] = [hashVariables(model.variables)];
  adam.dispose();
  disposeBatch(batch);
  tf.dispose([seq, users, ...Object.values(model.variables), ...Object.values(other.variables)]);
  return out;
}

function pinChord(kind: 'sasrec' | 'caser', method: ChordMethod, activationBits: number | undefined): Record_ {
  const out: Record_ = {};
  const backbone = kind === 'sasrec' ? createSasrec(sasrecConfig) : createCaser(caserConfig);
  const frozen = new Map(generateFrozenWeights({ seed: 2, layers: backbone.layers() }).map((l) => [l.spec.name, l.weights]));
  const model = createChordModel(backbone, frozen, {
    ...CHORD_DEFAULTS,
    method,
    zDim: 4,
    hyperHidden: 6,
    gruWindow: 4,
    seed: 3,
    ...(activationBits === undefined ? {} : { activationBits }),
  });
  jitter(model.variables, 7);
  const ex = chordExamples(backbone, train, 2, { gruLen: 4, zTargets: method === 'quant' ? backbone.inputLen : 3 });
  const batch = chordBatch(ex, [1, 2, 4, 7, 11, 17].filter((i) => i < ex.count));
  const alloc = model.allocate(batch.gru);
  if (alloc) out['levels'] = alloc.levels.flatMap((l) => Array.from(l));
  tf.tidy(() => {
    out['scores'] = arr(model.scores(batch.seq, batch.gru, batch.users));
    out['lossTraining'] = arr(model.loss(batch, trainingCtx()));
  });
  const adam = new GroupedAdam(1e-2, 5e-2, 0);
  const ctx = trainingCtx();
  out['stepLosses'] = [trainStep(model, adam, batch, ctx), trainStep(model, adam, batch, ctx)];
  tf.tidy(() => {
    out['scoresAfter'] = arr(model.scores(batch.seq, batch.gru, batch.users));
    out['lossAfter'] = arr(model.loss(batch, { training: false, seed: () => 0 }));
  });
  out['variablesAfterHash'] = [hashVariables(model.variables)];
  adam.dispose();
  disposeChordBatch(batch);
  model.dispose();
  return out;
}

const CASES: Array<[string, () => Record_]> = [
  ['base sasrec', () => pinBase('sasrec')],
  ['base caser', () => pinBase('caser')],
];
for (const kind of ['sasrec', 'caser'] as const) {
  for (const [method, bits] of [
    ['quant', undefined],
    ['quant', 3],
    ['custom', undefined],
    ['weighted', undefined],
    ['chord', undefined],
    ['chord', 3],
  ] as Array<[ChordMethod, number | undefined]>) {
    CASES.push([`${method}${bits === undefined ? '' : ` a${bits}`} ${kind}`, () => pinChord(kind, method, bits)]);
  }
}

const BACKENDS: BackendName[] = ['wasm', 'cpu'];

const expected: Record<string, Record<string, Record_>> = existsSync(FIXTURE) ? JSON.parse(readFileSync(FIXTURE, 'utf8')) : {};
const recorded: Record<string, Record<string, Record_>> = {};

/** Index and size of the first bitwise difference, or undefined when equal. */
function firstDiff(got: number[], want: number[]): string | undefined {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  let max = 0;
  let first = -1;
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(want[i], got[i])) {
      if (first < 0) first = i;
      max = Math.max(max, Math.abs(got[i]! - want[i]!));
    }
  }
  return first < 0 ? undefined : `first at ${first} (${got[first]} vs ${want[first]}), max |diff| ${max}`;
}

for (const backend of BACKENDS) {
  describe(`pinned numbers (${backend})`, () => {
    for (const [name, run] of CASES) {
      it(name, async () => {
        await initBackend(backend);
        const got = run();
        (recorded[backend] ??= {})[name] = got;
        if (UPDATE) return;
        const want = expected[backend]?.[name];
        expect(want, `no pinned numbers for ${backend}/${name}: record them with PIN_UPDATE=1`).toBeDefined();
        expect(Object.keys(got).sort()).toEqual(Object.keys(want!).sort());
        const diffs = Object.keys(got)
          .map((k) => [k, firstDiff(got[k]!, want![k]!)] as const)
          .filter(([, d]) => d !== undefined);
        expect(diffs).toEqual([]);
      }, 60_000);
    }
  });
}

if (UPDATE) {
  describe('record', () => {
    it('writes the fixture', () => {
      expect(Object.keys(recorded).sort()).toEqual([...BACKENDS].sort());
      // One line per recorded array, so a re-recording diffs by case and quantity.
      const body = JSON.stringify(recorded, null, 1).replace(/\[[^\[\]{}]*\]/g, (a) => JSON.stringify(JSON.parse(a)));
      writeFileSync(FIXTURE, body + '\n');
    });
  });
}
