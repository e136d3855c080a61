/**
 * `npm run bench:gpu`, page side: every path measured in one page, one after the other for cold
 * starts, then interleaved in blocks for the warm timings so that load on a shared machine hits
 * all paths alike.
 *
 *   1. cold start, chord_wgsl: requestDevice + GpuRerankEngine.create (pipelines, uploads)
 *      + applyStrategy + first rerank; cold start, tfjs webgpu: backend init + uploads + first
 *      rerank (tfjs is untouched before this); then the tfjs wasm backend the same way.
 *   2. warm-up per path, then `reps` timed reranks per path in blocks of `block`, round robin.
 *   3. adaptation (engine.applyStrategy over alternating strategies), then one fine-tune step on
 *      each tfjs backend (the fastest is the reference), then the memory of each weights layout.
 * Every path ranks the same history and candidates; the results are cross-checked at the end.
 */
import { createForward, dequantizeLayers, rerank as cpuRerank } from '../../../src/core/forward/index.ts';
import { type FrozenLayer } from '../../../src/core/frozen.ts';
import { packLayer, type PackedLayer } from '../../../src/core/packing.ts';
import type { Strategy } from '../../../src/core/strategy.ts';
import { acquireGpu } from '../../../src/gpu/device.ts';
import { GpuRerankEngine } from '../../../src/gpu/engine.ts';
import type { WeightMemory } from '../../../src/gpu/quantized-weights.ts';
import { adaptHostMs, measureMemory } from './memory.ts';
import { benchModel, chordLikeStrategy, frozenParamTotal, frozenWeights, workload } from './model.ts';
import { ratio, type Summary, summarize, timed } from './stats.ts';
import { type TfjsBackend, useBackend, wasmFlavour } from './tfjs-backends.ts';
import { timeFinetuneSteps, TfjsReranker, type TopK } from './tfjs-paths.ts';

export interface BenchOptions {
  readonly seed?: number;
  readonly numItems?: number;
  readonly candidates?: number;
  /** Top k returned by every path. */
  readonly k?: number;
  readonly warmup?: number;
  readonly reps?: number;
  /** Reranks per path before switching to the next path. */
  readonly block?: number;
  readonly adaptReps?: number;
  readonly finetuneWarmup?: number;
  readonly finetuneReps?: number;
  /** Progress lines (the driver prints them). */
  readonly log?: (line: string) => void;
}

const DEFAULTS = {
  seed: 7,
  numItems: 1200,
  candidates: 100,
  k: 10,
  warmup: 30,
  reps: 100,
  block: 10,
  adaptReps: 12,
  finetuneWarmup: 3,
  finetuneReps: 10,
};

type PathName = 'chord_wgsl' | 'tfjs_webgpu_fp32' | 'tfjs_wasm_fp32' | 'cpu_path';

interface Path {
  readonly name: PathName;
  readonly backend?: TfjsBackend;
  readonly rerank: () => Promise<TopK>;
}

/** The CPU path of CHORD: core's packing of the same strategy, dequantized, core's forward. */
function cpuPath(model: ReturnType<typeof benchModel>, frozen: readonly FrozenLayer[], strategy: Strategy) {
  const packed = new Map<string, PackedLayer>();
  frozen.forEach((f, l) => {
    const levels = strategy.layers[l]!.levels;
    const bits = Uint8Array.from(levels, (v) => strategy.levelTable[v]!);
    packed.set(f.spec.name, packLayer(f.weights, f.spec.outChannels, f.spec.rowLength, bits));
  });
  return createForward(model.config, model.tensors, dequantizeLayers(packed));
}

function overlap(a: readonly number[], b: readonly number[]): number {
  const set = new Set(b);
  return a.filter((x) => set.has(x)).length;
}

function engineWeightMemory(engine: GpuRerankEngine): WeightMemory | undefined {
  // Engines that expose their weights' memory report it directly (see the report's note).
  return 'weightMemory' in engine ? (engine.weightMemory as WeightMemory) : undefined;
}

/** Runs `work` with GPUQueue.submit and compute-pass dispatch calls counted (then restored). */
async function countGpuCalls(work: () => Promise<void>): Promise<{ submits: number; dispatches: number }> {
  const counts = { submits: 0, dispatches: 0 };
  const submit = GPUQueue.prototype.submit;
  const dispatch = GPUComputePassEncoder.prototype.dispatchWorkgroups;
  GPUQueue.prototype.submit = function (this: GPUQueue, ...args: Parameters<GPUQueue['submit']>) {
    counts.submits++;
    return submit.apply(this, args);
  };
  GPUComputePassEncoder.prototype.dispatchWorkgroups = function (
    this: GPUComputePassEncoder,
    ...args: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>
  ) {
    counts.dispatches++;
    return dispatch.apply(this, args);
  };
  try {
    await work();
  } finally {
    GPUQueue.prototype.submit = submit;
    GPUComputePassEncoder.prototype.dispatchWorkgroups = dispatch;
  }
  return counts;
}

export async function runBenchGpu(options: BenchOptions = {}) {
  const o = { ...DEFAULTS, ...options };
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();

  // ---- Inputs (untimed): model, frozen weights, strategies, workload ----
  const model = benchModel(o.seed, o.numItems);
  const regen = await timed(() => frozenWeights(model));
  const frozen = regen.value;
  const strategies = [0, 1, 2].map((i) => chordLikeStrategy(model, o.seed * 100 + i));
  const strategy = strategies[0]!.strategy;
  const { history, candidates } = workload(model, o.seed, o.candidates);
  const nextItem = 1 + ((history[history.length - 1]! * 7) % model.numItems);
  const cpu = cpuPath(model, frozen, strategy);

  // ---- 1. Cold starts ----
  log('cold start: chord_wgsl');
  const chordCold = { device: 0, create: 0, adapt: 0, firstRerank: 0 };
  const t0 = performance.now();
  const gpu = await acquireGpu();
  chordCold.device = performance.now() - t0;
  let t = performance.now();
  const engine = await GpuRerankEngine.create(gpu.device, model.config, model.tensors, frozen, { maxCandidates: o.candidates });
  chordCold.create = performance.now() - t;
  t = performance.now();
  await engine.applyStrategy(strategy);
  chordCold.adapt = performance.now() - t;
  t = performance.now();
  const chordFirst = await engine.rerank(history, candidates, o.k);
  chordCold.firstRerank = performance.now() - t;
  const chordColdMs = performance.now() - t0;

  const tfjsCold: Record<TfjsBackend, { init: number; upload: number; firstRerank: number; total: number }> = {
    webgpu: { init: 0, upload: 0, firstRerank: 0, total: 0 },
    wasm: { init: 0, upload: 0, firstRerank: 0, total: 0 },
  };
  const rerankers = {} as Record<TfjsBackend, TfjsReranker>;
  const firsts = {} as Record<TfjsBackend, TopK>;
  for (const backend of ['webgpu', 'wasm'] as const) {
    log(`cold start: tfjs ${backend}`);
    const c = tfjsCold[backend];
    const s0 = performance.now();
    await useBackend(backend);
    c.init = performance.now() - s0;
    let s = performance.now();
    rerankers[backend] = new TfjsReranker(model, frozen);
    c.upload = performance.now() - s;
    s = performance.now();
    firsts[backend] = await rerankers[backend].rerank(history, candidates, o.k);
    c.firstRerank = performance.now() - s;
    c.total = performance.now() - s0;
  }

  // ---- 2. Warm reranks ----
  const paths: Path[] = [
    { name: 'chord_wgsl', rerank: async () => engine.rerank(history, candidates, o.k) },
    { name: 'tfjs_webgpu_fp32', backend: 'webgpu', rerank: () => rerankers.webgpu.rerank(history, candidates, o.k) },
    { name: 'tfjs_wasm_fp32', backend: 'wasm', rerank: () => rerankers.wasm.rerank(history, candidates, o.k) },
    {
      name: 'cpu_path',
      rerank: async () => {
        const r = cpuRerank(cpu, history, candidates, o.k);
        return { ids: Array.from(r.order, (i) => candidates[i]!), scores: Float32Array.from(r.order, (i) => r.scores[i]!) };
      },
    },
  ];
  const samples = Object.fromEntries(paths.map((p) => [p.name, [] as number[]])) as Record<PathName, number[]>;
  const last = {} as Record<PathName, TopK>;
  for (const p of paths) {
    log(`warm-up: ${p.name} x ${o.warmup}`);
    if (p.backend) await useBackend(p.backend);
    for (let i = 0; i < o.warmup; i++) await p.rerank();
  }
  const submits0 = engine.submits;
  const readbacks0 = engine.readbacks;
  log(`timed: ${o.reps} reranks per path in blocks of ${o.block}`);
  for (let done = 0; done < o.reps; done += o.block) {
    for (const p of paths) {
      if (p.backend) await useBackend(p.backend);
      for (let i = 0; i < Math.min(o.block, o.reps - done); i++) {
        const r = await timed(p.rerank);
        samples[p.name].push(r.ms);
        last[p.name] = r.value;
      }
    }
  }
  const chordReranks = samples.chord_wgsl.length;
  const submitsPerRerank = (engine.submits - submits0) / chordReranks;
  const readbacksPerRerank = (engine.readbacks - readbacks0) / chordReranks;

  // ---- 3. Adaptation, fine-tuning, memory ----
  log(`adapt: engine.applyStrategy x ${o.adaptReps}`);
  await engine.applyStrategy(strategies[1]!.strategy);
  const adaptSamples: number[] = [];
  // Queue submits and compute dispatches issued while adapting, counted at the WebGPU API.
  const adaptCalls = await countGpuCalls(async () => {
    for (let i = 0; i < o.adaptReps; i++) {
      const s = strategies[i % strategies.length]!.strategy;
      adaptSamples.push((await timed(() => engine.applyStrategy(s))).ms);
    }
  });
  await engine.applyStrategy(strategy);
  const afterAdapt = await engine.rerank(history, candidates, o.k);

  const finetune = await timeFinetuneSteps(model, frozen, [...history, nextItem], ['webgpu', 'wasm'], {
    warmup: o.finetuneWarmup,
    reps: o.finetuneReps,
    log,
    label: 'fine-tune step',
  });
  const fastest = (['webgpu', 'wasm'] as const)
    .filter((b) => finetune[b])
    .sort((a, b) => finetune[a]!.p50 - finetune[b]!.p50)[0]!;

  log('memory: weights layouts');
  const memory = await measureMemory(
    gpu.device,
    frozen,
    () => frozenWeights(model).map((f) => f.weights),
    [strategies[1]!.strategy, strategies[2]!.strategy, strategy],
  );
  const fp32Bytes = 4 * frozenParamTotal(model);
  const engineMemory = engineWeightMemory(engine);
  const chordMemory = engineMemory ?? memory.configs['any_capacity']!;

  engine.destroy();
  for (const r of Object.values(rerankers)) r.dispose();
  gpu.device.destroy();

  // ---- Report ----
  const rerankMs = Object.fromEntries(paths.map((p) => [p.name, summarize(samples[p.name])])) as Record<PathName, Summary>;
  const adaptMs = summarize(adaptSamples);
  const fitMemory = memory.configs['fit']!;
  const channels = model.layers.reduce((s, l) => s + l.outChannels, 0);
  return {
    device: gpu.adapterDescription,
    model: {
      backbone: 'sasrec',
      ...model.config.dims,
      numItems: model.numItems,
      quantizable_layers: model.layers.length,
      channels,
      frozen_params: frozenParamTotal(model),
    },
    candidates: o.candidates,
    seq_len: history.length,
    k: o.k,
    strategy: {
      level_table: [...strategy.levelTable],
      beta: strategy.beta,
      average_bits: Math.round(strategies[0]!.averageBits * 1000) / 1000,
      adapt_strategies_average_bits: strategies.map((s) => Math.round(s.averageBits * 1000) / 1000),
    },
    rerank_ms: rerankMs,
    adapt_ms: {
      ...adaptMs,
      what:
        'GpuRerankEngine.applyStrategy: host tables + frozen upload + one submit of two dispatches (quantize + pack, ' +
        'exact fix-up of near-tie codes), waited for + uniforms (+ new bind groups when the words buffer changes size)',
      submits_per_adapt: adaptCalls.submits / o.adaptReps,
      dispatches_per_adapt: adaptCalls.dispatches / o.adaptReps,
      host_tables_p50: Math.round(adaptHostMs(frozen, strategy) * 1000) / 1000,
      by_layout_p50: Object.fromEntries(Object.entries(memory.configs).map(([k, v]) => [k, v.adaptMsP50])),
    },
    finetune_step_ms: { p50: finetune[fastest]!.p50, backend: fastest, by_backend: finetune },
    cold_start_ms: {
      chord_wgsl: Math.round(chordColdMs),
      tfjs_webgpu_fp32: Math.round(tfjsCold.webgpu.total),
      tfjs_wasm_fp32: Math.round(tfjsCold.wasm.total),
      breakdown: {
        chord_wgsl: {
          request_device: Math.round(chordCold.device),
          create_compile_upload: Math.round(chordCold.create),
          adapt: Math.round(chordCold.adapt),
          first_rerank: Math.round(chordCold.firstRerank),
        },
        tfjs_webgpu_fp32: {
          backend_init: Math.round(tfjsCold.webgpu.init),
          upload: Math.round(tfjsCold.webgpu.upload),
          first_rerank: Math.round(tfjsCold.webgpu.firstRerank),
        },
        tfjs_wasm_fp32: {
          backend_init: Math.round(tfjsCold.wasm.init),
          upload: Math.round(tfjsCold.wasm.upload),
          first_rerank: Math.round(tfjsCold.wasm.firstRerank),
        },
        frozen_regeneration_from_seed: Math.round(regen.ms * 10) / 10,
      },
    },
    submits_per_rerank: submitsPerRerank,
    readbacks_per_rerank: readbacksPerRerank,
    resident_weight_bytes: {
      chord: chordMemory.resident,
      fp32: fp32Bytes,
      chord_peak_during_adapt: chordMemory.peakAdapt,
      chord_source: engineMemory ? 'GpuRerankEngine.weightMemory' : "QuantizedModelWeights as GpuRerankEngine creates it (wordCapacity 'any', frozen transient)",
      chord_fit: fitMemory.resident,
      chord_fit_peak_during_adapt: fitMemory.peakAdapt,
      by_layout: memory.configs,
    },
    ratios: {
      rerank_p50_tfjs_webgpu_over_chord: ratio(rerankMs.tfjs_webgpu_fp32.p50, rerankMs.chord_wgsl.p50),
      rerank_p50_tfjs_wasm_over_chord: ratio(rerankMs.tfjs_wasm_fp32.p50, rerankMs.chord_wgsl.p50),
      rerank_p50_cpu_over_chord: ratio(rerankMs.cpu_path.p50, rerankMs.chord_wgsl.p50),
      finetune_step_over_adapt_p50: ratio(finetune[fastest]!.p50, adaptMs.p50),
      finetune_wasm_step_over_adapt_p50: finetune.wasm ? ratio(finetune.wasm.p50, adaptMs.p50) : null,
      finetune_webgpu_step_over_adapt_p50: finetune.webgpu ? ratio(finetune.webgpu.p50, adaptMs.p50) : null,
      fp32_over_chord_resident: ratio(fp32Bytes, chordMemory.resident),
      fp32_over_chord_fit_resident: ratio(fp32Bytes, fitMemory.resident),
      cold_start_tfjs_webgpu_over_chord: ratio(tfjsCold.webgpu.total, chordColdMs),
    },
    goals: {
      chord_3x_faster_than_tfjs_webgpu: rerankMs.tfjs_webgpu_fp32.p50 >= 3 * rerankMs.chord_wgsl.p50,
      adapt_50x_faster_than_finetune: finetune[fastest]!.p50 >= 50 * adaptMs.p50,
      adapt_50x_faster_than_tfjs_webgpu_finetune: finetune.webgpu ? finetune.webgpu.p50 >= 50 * adaptMs.p50 : null,
      resident_le_eighth_of_fp32: chordMemory.resident * 8 <= fp32Bytes,
      resident_fit_le_eighth_of_fp32: fitMemory.resident * 8 <= fp32Bytes,
    },
    checks: {
      chord_topk_equals_cpu_path: last.chord_wgsl.ids.join() === last.cpu_path.ids.join(),
      chord_cold_equals_warm: chordFirst.ids.join() === last.chord_wgsl.ids.join(),
      chord_after_readapt_equals_warm: afterAdapt.ids.join() === last.chord_wgsl.ids.join(),
      tfjs_webgpu_topk_equals_wasm: last.tfjs_webgpu_fp32.ids.join() === last.tfjs_wasm_fp32.ids.join(),
      tfjs_cold_equals_warm: firsts.webgpu.ids.join() === last.tfjs_webgpu_fp32.ids.join(),
      topk_overlap_chord_vs_fp32: overlap(last.chord_wgsl.ids, last.tfjs_wasm_fp32.ids),
      fit_packing_identical_to_any: memory.fitMatchesAny,
    },
    protocol: {
      warmup_per_path: o.warmup,
      timed_per_path: o.reps,
      block: o.block,
      adapt_reps: o.adaptReps,
      finetune_warmup: o.finetuneWarmup,
      finetune_reps: o.finetuneReps,
      tfjs_wasm: wasmFlavour(),
      order: 'cold chord, cold tfjs webgpu, cold tfjs wasm, warm-up, interleaved timed blocks, adapt, fine-tune, memory',
      page_seconds: Math.round((performance.now() - started) / 100) / 10,
    },
  };
}

export type BenchGpuReport = Awaited<ReturnType<typeof runBenchGpu>>;
