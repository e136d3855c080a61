/**
 * One training run end to end, as the `train` CLI drives it: build the model for a method,
 * train with early stopping on validation, export the artifact directory, read it back with
 * core's parsers and evaluate it through the deployment path (valid + test, masked + unmasked,
 * optionally at lower bit budgets via T), and record everything in training.json.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BackboneKind } from '../../core/backbones.ts';
import { generateFrozenWeights } from '../../core/frozen.ts';
import { isHypernetMethod, type Method } from '../../core/methods.ts';
import { buildManifest } from '../../core/manifest.ts';
import type { TensorMap } from '../../core/tensor-file.ts';
import type { SplitDataset } from '../../data/types.ts';
import type { Backbone } from '../backbone.ts';
import { createCaser } from '../caser.ts';
import { loadTensorSet } from '../checkpoint.ts';
import type { EvalResult } from '../evaluate.ts';
import { readArtifact, slugify, writeArtifact, type ArtifactFiles } from '../export.ts';
import { createBaseModel } from '../model.ts';
import { ITEM_LOSS_DEFAULTS, NegativeSampler, type ItemLossSpec } from '../item-loss.ts';
import { countParams, type ParamMap } from '../params.ts';
import { createSasrec } from '../sasrec.ts';
import { codeRevision, type CodeRevision } from '../provenance.ts';
import { VALIDATED_TRAINING } from '../training-defaults.ts';
import type { SelectionMetric } from '../train.ts';
import { chordExamples, historyWindows, sampleUsers, testHistories, validationHistories, VALIDATION_SAMPLE_SEED, type HistorySet } from './data.ts';
import { withDeploymentWorkers } from './deploy-workers.ts';
import { anotherUser, prepareDeployment, type DeployedEval } from './deployed.ts';
import { ChordTrainError } from './errors.ts';
import { evaluateUsers, modelScorer, type UserScorer } from './evaluate.ts';
import { scoresToHost } from '../evaluate.ts';
import { createGruParams, gruTensors } from './gru.ts';
import { hypernetConfig, hypernetTensors } from './hypernet.ts';
import { CHORD_DEFAULTS, createChordModel, type ChordBackbone, type ChordModel, type ChordOptions } from './model.ts';
import { trainLoop, type LoopResult, type Trainable } from './loop.ts';
import { dataParallelRefusal, DataParallelSteps, type ReplicaSpec } from './parallel.ts';
import { uniformLevelTable } from '../../core/strategy-controls.ts';

/** ChordOptions' model settings (Base uses only the seed; zDim sizes its GRU) and the run's. */
export interface RunOptions extends Omit<ChordOptions, 'method'> {
  readonly backbone: BackboneKind;
  readonly method: Method;
  readonly dataName: string;
  readonly epochs: number;
  readonly patience: number;
  readonly batchSize: number;
  readonly lr: number;
  /** Learning rate of hypernet + GRU; default lr. */
  readonly hyperLr?: number;
  readonly weightDecay: number;
  readonly dropout: number;
  readonly evalEvery: number;
  readonly metric: SelectionMetric;
  readonly maxLen: number;
  /** Caser's user embedding (see CaserConfig.userEmbedding); default RUN_DEFAULTS.caserUser. */
  readonly caserUser?: 'table' | 'shared';
  /** 'pretrained': frozen weights (and initial parameters) from a Base run's best checkpoint. */
  readonly init: 'random' | 'pretrained';
  readonly pretrainedDir?: string;
  /** Extra deployment budgets (average bits) evaluated through T on the test set. */
  readonly budgets: readonly number[];
  readonly out: string;
  readonly modelId?: string;
  readonly resume: boolean;
  /**
   * The checkout whose code this process runs, recorded in training.json; read when runTraining
   * starts where unset (train reads it once at its own start, before a Base it trains first).
   */
  readonly code?: CodeRevision | null;
  readonly maxStepsPerEpoch?: number;
  /** The training loss (full softmax by default, or a sampled loss: item-loss.ts). */
  readonly loss?: ItemLossSpec;
  /**
   * Users validated after each epoch: all of them up to this many, else a fixed seeded sample of
   * this size (the same users in every run on the dataset). The final valid and test evaluations
   * always rank every user.
   */
  readonly validUsers?: number;
  /**
   * The paper's protocol, labelled as not a result: after each validation also rank the test users
   * (the same number as validation ranks) and record it per epoch in training.json's history.
   * Selection stays on validation; the run trains exactly as without it.
   */
  readonly watchTest?: boolean;
  /**
   * SASRec Base or Quant trained on CHORD's examples (windows ending every zTargets items, each
   * training only its last zTargets targets) instead of every target of every window: a control
   * that gives a uniform model whatever CHORD's examples alone are worth.
   */
  readonly chordExamples?: boolean;
  /**
   * Standardize z before the hypernet trunk (chord/hypernet.ts): the GRU state saturates, so
   * users differ in a small part of z. Exported folded into the trunk: artifacts stay as they are.
   */
  readonly zNorm?: boolean;
  /** Batches of similar window length, cut to their longest window (loop.ts LoopOptions.lengthBuckets); 0 = off. */
  readonly lengthBuckets?: number;
  /**
   * Threads the run uses (default 1): each step is split over them (parallel.ts) unless the loss
   * couples a batch's rows (--z-norm, --contrast: then it trains on this thread), and the final
   * evaluation always is (deploy-workers.ts). How a run computes, not what: not a setting, so a run
   * resumes with any count.
   */
  readonly workers?: number;
  readonly progress: boolean;
  readonly command: string;
  readonly log: (line: string) => void;
}

export const RUN_DEFAULTS = {
  ...VALIDATED_TRAINING,
  weightDecay: 0,
  evalEvery: 1,
  metric: 'ndcg10' as SelectionMetric,
  maxLen: 50,
  ...CHORD_DEFAULTS,
  init: 'random' as const,
  // One shared user row: a shopper on the page has no row of its own, and on ML-100K the per-user
  // table (scored with its mean at deployment) lost to it on validation (results/ml-100k.md).
  caserUser: 'shared' as 'table' | 'shared',
  budgets: [] as number[],
  loss: ITEM_LOSS_DEFAULTS,
  validUsers: 10_000,
  resume: false,
  progress: false,
};

export interface RunResult {
  readonly artifactDir: string;
  readonly training: Record<string, unknown>;
  readonly loop: LoopResult;
  readonly valid: DeployedEval;
  readonly test: DeployedEval;
}

function caserUser(o: Pick<RunOptions, 'caserUser'>): 'table' | 'shared' {
  return o.caserUser ?? RUN_DEFAULTS.caserUser;
}

/** A run's backbone for dataset `ds` (also what bench:train times). */
export function makeBackbone(o: Pick<RunOptions, 'backbone' | 'dropout' | 'maxLen' | 'caserUser'>, ds: Pick<SplitDataset, 'numItems' | 'numUsers'>): ChordBackbone {
  const common = { numItems: ds.numItems, numUsers: ds.numUsers, dropout: o.dropout };
  return o.backbone === 'sasrec' ? createSasrec({ ...common, maxLen: o.maxLen }) : createCaser({ ...common, userEmbedding: caserUser(o) });
}

/** The best checkpoint of a Base run: its <out>/checkpoint, or a checkpoint directory itself. */
function loadPretrained(dir: string): TensorMap {
  for (const d of [join(dir, 'checkpoint'), dir]) {
    if (existsSync(join(d, 'best.json'))) return loadTensorSet(d, 'best');
  }
  throw new ChordTrainError('CHORD_BAD_OPTION', `no best.json in ${dir} or ${join(dir, 'checkpoint')}`);
}

/** What training and export need from either kind of model. */
interface RunModel extends Trainable {
  readonly params: ParamMap;
  readonly gru: ParamMap;
  /** fp32 trained layer weights (Base) to ship; undefined when the frozen weights apply. */
  shippedWeights(): TensorMap | undefined;
  scorer(set: HistorySet): UserScorer;
  hypernet(): ArtifactFiles['hypernet'];
  dispose(): void;
}

function hostTensors(map: ParamMap, names: readonly string[]): TensorMap {
  const out: TensorMap = new Map();
  for (const n of names) out.set(n, { shape: [...map[n]!.shape], data: new Float32Array(map[n]!.dataSync()) });
  return out;
}

/** A data-parallel worker's copy of the run's model (parallel.ts); its weights come with each step. */
export function buildReplica(spec: ReplicaSpec): Trainable & { dispose(): void } {
  const o = { ...(spec.options as unknown as Omit<RunOptions, 'log'>), log: () => {} };
  const backbone = makeBackbone(o, spec);
  return buildModel(o, backbone, o.init === 'pretrained' ? loadPretrained(o.pretrainedDir!) : undefined);
}

/**
 * ChordOptions' quantization settings, in the key order state.json's settings have always had:
 * a resume compares settings as JSON text, so another order would refuse existing checkpoints.
 */
function quantSettings(o: RunOptions) {
  const { levelTable, beta, lambda, temperature, uniformBits, zDim, hyperHidden, rank, gruWindow, zTargets, contrast, contrastMargin } = o;
  return { levelTable, beta, lambda, temperature, uniformBits, zDim, hyperHidden, rank, gruWindow, zTargets, contrast, contrastMargin };
}

function buildModel(o: RunOptions, backbone: ChordBackbone, pretrained: TensorMap | undefined): RunModel {
  const layers = backbone.layers();
  if (o.method === 'base') {
    const base = createBaseModel(backbone, o.seed);
    const itemEmb = base.params['item_emb']!;
    const gru = createGruParams(itemEmb.shape[1]!, o.zDim, o.seed);
    return {
      variables: base.variables,
      params: base.params,
      gru,
      loss: (batch, ctx) => base.loss(batch, ctx),
      shippedWeights: () => hostTensors(base.weights, layers.map((l) => l.name)),
      scorer: (set) => (users) => {
        const { seq, seqLen } = historyWindows(set, users, backbone.inputLen, 1, backbone.acceptsShortWindows);
        return scoresToHost(() => base.scores(tf.tensor2d(seq, [users.length, seqLen], 'int32'), tf.tensor1d(Array.from(users), 'int32')));
      },
      hypernet: () => undefined,
      dispose: () => tf.dispose([...Object.values(base.variables), ...Object.values(gru)]),
    };
  }
  const frozen = new Map<string, Float32Array>();
  if (pretrained) {
    for (const l of layers) {
      const t = pretrained.get(l.name);
      if (!t) throw new ChordTrainError('CHORD_BAD_OPTION', `pretrained checkpoint has no layer ${l.name}`);
      frozen.set(l.name, t.data);
    }
  } else {
    for (const l of generateFrozenWeights({ seed: o.seed, layers })) frozen.set(l.spec.name, l.weights);
  }
  const options: ChordOptions = {
    method: o.method,
    ...quantSettings(o),
    ...(o.activationBits === undefined ? {} : { activationBits: o.activationBits }),
    ...(o.zNorm ? { zNorm: true } : {}),
    seed: o.seed,
  };
  const initParams = pretrained ? new Map([...pretrained].map(([k, v]) => [k, v.data])) : undefined;
  const model: ChordModel = createChordModel(backbone, frozen, options, initParams);
  return {
    variables: model.variables,
    params: model.params,
    gru: model.gru,
    loss: (batch, ctx) => model.loss(batch, ctx),
    shippedWeights: () => (pretrained ? new Map(layers.map((l) => [l.name, { shape: [...l.shape], data: frozen.get(l.name)! }])) : undefined),
    scorer: (set) => modelScorer(model, set, o.gruWindow),
    hypernet: () => {
      if (o.method === 'quant') return uniformHypernet(o, layers);
      const shape = model.hypernetShape!;
      return {
        config: hypernetConfig(shape, { levelTable: o.levelTable, beta: o.beta, lambda: o.lambda }),
        tensors: hypernetTensors(shape, model.hyper),
      };
    },
    dispose: () => model.dispose(),
  };
}

/**
 * 'quant' as a servable hypernet: method custom, β = 0 (no channel leaves the lowest tier) and a
 * level table starting at the uniform width, all-zero tensors. Every z then gets the uniform
 * strategy through the normal server and page code.
 */
function uniformHypernet(o: RunOptions, layers: ReturnType<Backbone['layers']>): NonNullable<ArtifactFiles['hypernet']> {
  const u = o.uniformBits;
  if (u > 5) throw new ChordTrainError('CHORD_BAD_OPTION', `uniform ${u} bits cannot start a level table`);
  const levelTable = uniformLevelTable(u);
  const shape = { method: 'custom' as const, zDim: o.zDim, hidden: 1, rank: 1, layers: layers.map((l) => ({ name: l.name, outChannels: l.outChannels, rowLength: l.rowLength })) };
  const tensors: TensorMap = new Map();
  tensors.set('hyper.trunk.w', { shape: [1, o.zDim], data: new Float32Array(o.zDim) });
  tensors.set('hyper.trunk.b', { shape: [1], data: new Float32Array(1) });
  for (const l of layers) {
    tensors.set(`hyper.F.${l.name}.w`, { shape: [l.outChannels, 1], data: new Float32Array(l.outChannels) });
    tensors.set(`hyper.F.${l.name}.b`, { shape: [l.outChannels], data: new Float32Array(l.outChannels) });
  }
  return { config: hypernetConfig(shape, { levelTable, beta: 0, lambda: { up: 0, down: 0 } }), tensors };
}

/** Backbone tensors as the page loads them (Caser: user_emb_mean instead of the user table). */
function backboneTensors(backbone: Backbone, params: ParamMap, shipped: TensorMap | undefined): TensorMap {
  const out: TensorMap = new Map();
  for (const name of Object.keys(params).sort()) {
    const v = params[name]!;
    const data = new Float32Array(v.dataSync());
    if (backbone.kind === 'caser' && name === 'user_emb') {
      const [users, d] = v.shape as [number, number];
      const mean = new Float32Array(d);
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let u = 0; u < users; u++) s += data[u * d + j]!;
        mean[j] = s / users;
      }
      out.set('user_emb_mean', { shape: [d], data: mean });
      continue;
    }
    out.set(name, { shape: [...v.shape], data });
  }
  if (shipped) for (const [k, t] of shipped) out.set(k, t);
  return out;
}

function metricsLine(label: string, r: EvalResult): string {
  const f = (x: number) => x.toFixed(4);
  return (
    `${label}: unmasked NDCG@5 ${f(r.unmasked.ndcg5)} NDCG@10 ${f(r.unmasked.ndcg10)} HR@5 ${f(r.unmasked.hr5)} HR@10 ${f(r.unmasked.hr10)}` +
    ` | masked NDCG@5 ${f(r.masked.ndcg5)} NDCG@10 ${f(r.masked.ndcg10)} HR@5 ${f(r.masked.hr5)} HR@10 ${f(r.masked.hr10)}`
  );
}

export async function runTraining(o: RunOptions, ds: SplitDataset): Promise<RunResult> {
  const t0 = performance.now();
  // Read before training: a checkout moved to another commit while this process trains must not claim the run.
  const code = o.code === undefined ? codeRevision() : o.code;
  if (o.init === 'pretrained' && o.method === 'base') throw new ChordTrainError('CHORD_BAD_OPTION', '--init pretrained needs a quantized method');
  if (o.init === 'pretrained' && !o.pretrainedDir) throw new ChordTrainError('CHORD_BAD_OPTION', '--init pretrained needs --pretrained <base run dir>');
  if (o.activationBits !== undefined && o.method === 'base') {
    throw new ChordTrainError('CHORD_BAD_OPTION', '--w3a3 applies to the quantized methods, not to fp32 Base');
  }
  const backbone = makeBackbone(o, ds);
  const loss = o.loss ?? RUN_DEFAULTS.loss;
  const validUsers = o.validUsers ?? RUN_DEFAULTS.validUsers;
  const valid = validationHistories(ds);
  const test = testHistories(ds);
  const validDuring = sampleUsers(valid, validUsers, VALIDATION_SAMPLE_SEED);
  const testDuring = o.watchTest ? sampleUsers(test, validUsers, VALIDATION_SAMPLE_SEED) : undefined;
  const lengthBuckets = o.lengthBuckets ?? 0;
  if (o.chordExamples && (isHypernetMethod(o.method) || o.backbone !== 'sasrec')) {
    throw new ChordTrainError('CHORD_BAD_OPTION', `--chord-examples is for SASRec Base or Quant (CHORD's own examples), not ${o.backbone} ${o.method}`);
  }
  if (o.zNorm && !isHypernetMethod(o.method)) {
    throw new ChordTrainError('CHORD_BAD_OPTION', `--z-norm standardizes the hypernet's input; ${o.method} has no hypernet`);
  }
  if (lengthBuckets > 0 && !backbone.acceptsShortWindows) {
    throw new ChordTrainError('CHORD_BAD_OPTION', `--length-buckets needs a backbone whose windows can be cut (SASRec), not ${o.backbone}`);
  }
  const pretrained = o.init === 'pretrained' ? loadPretrained(o.pretrainedDir!) : undefined;
  const model = buildModel(o, backbone, pretrained);
  const tag = o.method === 'base' || o.method === 'quant' ? '' : `-b${String(o.beta).replace('.', '')}-l${o.levelTable.join('')}`;
  // Quant on CHORD's examples is another model than Quant: its own id, so both can be served side by side.
  const modelId = o.modelId ?? slugify(`${o.backbone}-${o.dataName}-${o.method}${tag}${o.chordExamples ? '-examples' : ''}${o.init === 'pretrained' ? '-pre' : ''}-s${o.seed}`);
  const settings = {
    data: o.dataName,
    backbone: o.backbone,
    method: o.method,
    seed: o.seed,
    batchSize: o.batchSize,
    lr: o.lr,
    ...(o.hyperLr === undefined ? {} : { hyperLr: o.hyperLr }),
    weightDecay: o.weightDecay,
    dropout: o.dropout,
    maxLen: o.maxLen,
    ...quantSettings(o),
    init: o.init,
    activationBits: o.activationBits ?? null,
    metric: o.metric,
    // Only for a shared-row Caser: a table-row run keeps the settings it had before the option
    // existed (its checkpoints still resume), and a shared-row run refuses a table-row checkpoint.
    ...(o.backbone === 'caser' && caserUser(o) === 'shared' ? { caserUser: 'shared' } : {}),
    // Only where they differ from what every earlier run did, so those checkpoints still resume.
    ...(loss.kind === 'softmax' ? {} : { loss }),
    ...(validDuring === valid ? {} : { validUsers }),
    ...(lengthBuckets > 0 ? { lengthBuckets } : {}),
    ...(o.chordExamples ? { chordExamples: true } : {}),
    ...(o.zNorm ? { zNorm: true } : {}),
  };
  o.log(`model ${modelId}: ${countParams(model.variables)} trainable parameters`);
  if (validDuring !== valid) o.log(`validation during training: a seeded sample of ${validUsers} of ${ds.numUsers} users`);
  if (loss.kind !== 'softmax') o.log(`loss: ${loss.kind}, ${loss.negatives} negatives per step${loss.kind === 'sampled' ? ` (${loss.sampler})` : `, t ${loss.gbceT}`}`);
  const sampler = loss.kind === 'softmax' ? undefined : new NegativeSampler(loss, ds.numItems, ds.train);
  // Only a method with a hypernet has z in its loss. Base and Quant keep every target of every
  // window, as Base always did, unless chordExamples asks for CHORD's windows.
  const windows = { gruLen: o.gruWindow, zTargets: isHypernetMethod(o.method) || o.chordExamples ? o.zTargets : backbone.inputLen };
  const workers = o.workers ?? 1;
  let parallel: DataParallelSteps | undefined;
  const refusal = dataParallelRefusal(o);
  if (workers > 1 && refusal) {
    o.log(`${workers} threads for the final evaluation; the steps run on one (${refusal}, which couples a batch's rows)`);
  } else if (workers > 1) {
    const { log: _log, ...options } = o;
    const backend = tf.getBackend();
    if (backend !== 'wasm' && backend !== 'cpu') throw new ChordTrainError('CHORD_BAD_OPTION', `--workers needs the wasm or cpu backend, not ${backend}`);
    parallel = DataParallelSteps.start(
      {
        options: options as unknown as Record<string, unknown>,
        numItems: ds.numItems,
        numUsers: ds.numUsers,
        backend,
        ...(sampler ? { logExpected: sampler.logExpected.dataSync() as Float32Array } : {}),
      },
      workers,
    );
    o.log(`data-parallel: each step split over ${workers} threads`);
  }
  const loop = await trainLoop(
    model,
    (shift) => chordExamples(backbone, ds.train, shift, windows),
    backbone.inputLen,
    () => evaluateUsers(validDuring, ds.numItems, model.scorer(validDuring)),
    {
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      ...(o.hyperLr === undefined ? {} : { hyperLr: o.hyperLr }),
      weightDecay: o.weightDecay,
      seed: o.seed,
      patience: o.patience,
      evalEvery: o.evalEvery,
      metric: o.metric,
      checkpointDir: join(o.out, 'checkpoint'),
      resume: o.resume,
      ...(o.maxStepsPerEpoch === undefined ? {} : { maxStepsPerEpoch: o.maxStepsPerEpoch }),
      ...(sampler ? { negatives: sampler } : {}),
      ...(lengthBuckets > 0 ? { lengthBuckets } : {}),
      ...(parallel ? { parallel } : {}),
      ...(testDuring ? { watchTest: () => evaluateUsers(testDuring, ds.numItems, model.scorer(testDuring)) } : {}),
      settings,
      progress: o.progress,
      log: o.log,
    },
  ).finally(() => parallel?.close());
  sampler?.dispose();
  // Over every epoch of the run, including those before a resume: training steps + validations.
  const trainSeconds = loop.history.reduce((a, e) => a + e.trainSeconds + (e.evalSeconds ?? 0), 0);
  const meanStepCpuSeconds = loop.meanStepCpuSeconds > 0 ? loop.meanStepCpuSeconds : null;

  const manifest = await buildManifest({ ...backbone.config, modelId, numItems: ds.numItems, userDim: o.zDim, seed: o.seed });
  const hypernet = model.hypernet();
  const artifactDir = join(o.out, modelId);
  const training: Record<string, unknown> = {
    format: 'chord-training',
    version: 1,
    modelId,
    method: o.method,
    backbone: o.backbone,
    options: { ...settings, epochs: o.epochs, patience: o.patience, evalEvery: o.evalEvery, budgets: o.budgets, pretrainedDir: o.pretrainedDir },
    data: { name: o.dataName, users: ds.numUsers, items: ds.numItems },
    epochs: { run: loop.epochsRun, best: loop.bestEpoch, stoppedEarly: loop.stoppedEarly },
    // The threads of the session that finished the run (a resumed run may have had another count).
    timing: { trainSeconds, meanStepSeconds: loop.meanStepSeconds, meanStepCpuSeconds, ...(workers > 1 ? { workers } : {}) },
    // The checkout of the session that finished the run, as it started (a resumed run's earlier sessions may have had another).
    code,
    validationDuringTraining: loop.bestValid,
    history: loop.history,
    command: o.command,
  };
  // The float32 layout: training.json's metrics and every later re-evaluation (reproduce, study)
  // rank with the item table as trained, like every run before the 8-bit file existed, so paired
  // comparisons across runs never mix the two tables (`npm run item-table-effect` measures what the
  // 8-bit table moves). A page still quantizes this table to 8 bits when it loads it.
  writeArtifact(artifactDir, {
    manifest,
    items: ds.itemIds,
    backbone: backboneTensors(backbone, model.params, model.shippedWeights()),
    gru: gruTensors(model.gru),
    ...(hypernet ? { hypernet } : {}),
    training,
  }, { itemTable: 'fp32' });
  model.dispose();

  // Everything below reads the artifact as the page and the server would.
  const te = performance.now();
  const dep = await prepareDeployment(readArtifact(artifactDir));
  const deployOpts = { gruWindow: o.gruWindow, ...(o.activationBits === undefined ? {} : { activationBits: o.activationBits }) };
  const { validEval, testEval, budgets, testOthersStrategy } = await withDeploymentWorkers(dep, workers, async (evaluation) => {
    const validEval = await evaluation.evaluate(valid, deployOpts);
    o.log(metricsLine(`valid (deployed, ${validEval.averageBits?.toFixed(3) ?? 'fp32'} bits)`, validEval));
    const testEval = await evaluation.evaluate(test, deployOpts);
    o.log(metricsLine(`test  (deployed, ${testEval.averageBits?.toFixed(3) ?? 'fp32'} bits)`, testEval));
    const budgets: Record<string, DeployedEval> = {};
    for (const b of dep.hypernet ? o.budgets : []) {
      const r = await evaluation.evaluate(test, { ...deployOpts, budget: b });
      budgets[String(b)] = r;
      o.log(metricsLine(`test  (T budget ${b}: ${r.averageBits?.toFixed(3)} bits)`, r));
    }
    // Personalisation check: every user gets the strategy of the next user instead of their own.
    let testOthersStrategy: DeployedEval | undefined;
    if (dep.hypernet && o.method !== 'quant') {
      testOthersStrategy = await evaluation.evaluate(test, { ...deployOpts, strategyUser: anotherUser(ds.numUsers) });
      o.log(metricsLine(`test  (another user's strategy)`, testOthersStrategy));
    }
    return { validEval, testEval, budgets, testOthersStrategy };
  });
  const evalSeconds = (performance.now() - te) / 1000;
  const final = {
    ...training,
    metrics: { valid: validEval, test: testEval, testAtBudget: budgets, ...(testOthersStrategy ? { testOthersStrategy } : {}) },
    timing: {
      trainSeconds,
      finalEvalSeconds: evalSeconds,
      /** This process only (a resumed run's earlier sessions are in trainSeconds). */
      sessionWallSeconds: (performance.now() - t0) / 1000,
      sessionCpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
      meanStepSeconds: loop.meanStepSeconds,
      meanStepCpuSeconds,
      ...(workers > 1 ? { workers } : {}),
    },
  };
  writeArtifact(artifactDir, { ...dep.artifact, training: final }, { itemTable: 'fp32' });
  return { artifactDir, training: final, loop, valid: validEval, test: testEval };
}
