/**
 * `npm run bench:gpu`, shop-scale section (page side, run in a fresh page so tfjs starts cold):
 * SASRec hidden 64, maxLen 50 over a catalogue of `numItems` (18,357 = Amazon Sports) with the
 * 8-bit item table, every path side by side in one page:
 *
 *   1. cold starts: the SDK as a shop loads it (createReranker on the model folder written by
 *      shop-model.ts: download, SHA-256, quantize the table, IndexedDB, engine, first rerank) on a
 *      first visit (empty IndexedDB) and a return visit; then, on the basis of the existing
 *      section's cold starts (model in memory), the CHORD engine and tfjs-webgpu / tfjs-wasm.
 *   2. warm reranks of 100 and 1,000 candidates and of the full catalogue, interleaved in blocks:
 *      chord_wgsl (8-bit table read in the kernels), chord_wgsl_f32_table (the same values
 *      dequantized once and uploaded as float32), tfjs_webgpu_fp32 and tfjs_wasm_fp32 (the fp32
 *      model, src/model's forward), cpu_path (core's forward on the 8-bit table's values).
 *   3. adapt: WebGPU (engine.applyStrategy) and the CPU path in TypeScript (quantize + pack every
 *      layer; and the CPU backend's quantize + dequantize) against one fine-tune step of the same
 *      model on tfjs-wasm and tfjs-webgpu.
 *   4. resident weight memory: packed layers + item table, against the fp32 model's.
 */
import { createForward, dequantizeLayers, scoreCandidates, topK } from '../../../src/core/forward/index.ts';
import { dequantizeItemTable, quantizeItemTable } from '../../../src/core/item-table.ts';
import { packLayer, type PackedLayer } from '../../../src/core/packing.ts';
import type { Strategy } from '../../../src/core/strategy.ts';
import type { FrozenLayer } from '../../../src/core/frozen.ts';
import type { TensorMap } from '../../../src/core/tensor-file.ts';
import { quantizedLayerWeights } from '../../../src/device/backend-cpu.ts';
import { createReranker } from '../../../src/device/index.ts';
import { STORE_DB_NAME } from '../../../src/device/store.ts';
import { acquireGpu } from '../../../src/gpu/device.ts';
import { GpuRerankEngine } from '../../../src/gpu/engine.ts';
import { type BenchModel, benchModel, chordLikeStrategy, frozenParamTotal, frozenWeights, workload } from './model.ts';
import { ratio, type Summary, summarize, timed } from './stats.ts';
import { useBackend } from './tfjs-backends.ts';
import { timeFinetuneSteps, TfjsReranker, type TopK } from './tfjs-paths.ts';

export interface ShopScaleOptions {
  /** URL of the model folder (manifest.json, items.json, backbone.*, gru.*) shop-model.ts wrote. */
  readonly modelUrl: string;
  readonly numItems: number;
  readonly seed: number;
  /** Bytes of the folder's page files (from the driver). */
  readonly pageFiles?: Record<string, number>;
  /** The same model's page files in the float32 layout (item_emb in backbone.bin, manifest version 1), for comparison. */
  readonly pageFilesFp32Layout?: Record<string, number>;
  readonly k?: number;
  readonly warmup?: number;
  readonly reps?: number;
  readonly block?: number;
  readonly adaptReps?: number;
  readonly finetuneWarmup?: number;
  readonly finetuneReps?: number;
  readonly log?: (line: string) => void;
}

const DEFAULTS = { k: 10, warmup: 5, reps: 20, block: 5, adaptReps: 10, finetuneWarmup: 2, finetuneReps: 5 };

const PATHS = ['chord_wgsl', 'chord_wgsl_f32_table', 'tfjs_webgpu_fp32', 'tfjs_wasm_fp32', 'cpu_path'] as const;
type PathName = (typeof PATHS)[number];
const SIZES = ['candidates_100', 'candidates_1000', 'full_catalogue'] as const;
type SizeName = (typeof SIZES)[number];

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => resolve();
  });
}

/** Quantize + pack every layer to `strategy` in TypeScript (core's packer): the CPU path's adapt. */
function packAll(frozen: readonly FrozenLayer[], strategy: Strategy): Map<string, PackedLayer> {
  const packed = new Map<string, PackedLayer>();
  frozen.forEach((f, l) => {
    const bits = Uint8Array.from(strategy.layers[l]!.levels, (v) => strategy.levelTable[v]!);
    packed.set(f.spec.name, packLayer(f.weights, f.spec.outChannels, f.spec.rowLength, bits));
  });
  return packed;
}

function overlap(a: readonly number[], b: readonly number[]): number {
  const set = new Set(b);
  return a.filter((x) => set.has(x)).length;
}

export async function runShopScale(options: ShopScaleOptions) {
  const o = { ...DEFAULTS, ...options };
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const N = o.numItems;

  // ---- Inputs (untimed) ----
  const model = benchModel(o.seed, N);
  const d = model.config.dims.hidden;
  const frozen = frozenWeights(model);
  const strategies = [0, 1, 2].map((i) => chordLikeStrategy(model, o.seed * 100 + i));
  const strategy = strategies[0]!.strategy;
  const quantizeTable = await timed(() => quantizeItemTable(model.tensors.get('item_emb')!.data, N + 1, d));
  const table = quantizeTable.value;
  const tensorsQ8: TensorMap = new Map(model.tensors);
  tensorsQ8.set('item_emb', { shape: [N + 1, d], data: dequantizeItemTable(table) });
  const modelQ8: BenchModel = { ...model, tensors: tensorsQ8 };
  const { history, candidates: c1000 } = workload(model, o.seed, 1000);
  const c100 = c1000.slice(0, 100);
  const candidatesOf = { candidates_100: c100, candidates_1000: c1000 } as const;

  // ---- 1. Cold starts ----
  log(`shop scale (${N} items): cold start through createReranker (first visit, then return visit)`);
  const sdkCold: Record<string, Record<string, number | string>> = {};
  for (const visit of ['first_visit', 'return_visit'] as const) {
    if (visit === 'first_visit') await deleteDatabase(STORE_DB_NAME);
    const t0 = performance.now();
    const reranker = await createReranker({
      model: o.modelUrl,
      strategyEndpoint: location.origin,
      device: 'webgpu',
      budget: null,
      maxCandidates: 1000,
      history: history.map((i) => `item-${i}`),
    });
    const created = performance.now() - t0;
    const t1 = performance.now();
    await reranker.rerank(c100.map((i) => `item-${i}`), { k: o.k });
    const first = performance.now() - t1;
    const t2 = performance.now();
    await reranker.recommend({ k: o.k });
    const firstFull = performance.now() - t2;
    sdkCold[visit] = {
      create_ms: Math.round(created),
      first_rerank_100_ms: Math.round(first),
      total_to_first_rerank_ms: Math.round(created + first),
      first_full_catalogue_ms: Math.round(firstFull),
      item_table_source: reranker.memory.itemTable.source,
      backend: reranker.backend,
    };
    reranker.dispose();
  }

  log('shop scale: cold start, engine basis (model in memory): chord_wgsl, tfjs webgpu, tfjs wasm');
  const t0 = performance.now();
  const gpu = await acquireGpu();
  const engine = await GpuRerankEngine.create(gpu.device, modelQ8.config, modelQ8.tensors, frozen, { maxCandidates: 1000, itemTable: table });
  await engine.applyStrategy(strategy);
  await engine.rerank(history, c100, o.k);
  const chordColdMs = performance.now() - t0;
  const engineF32 = await GpuRerankEngine.create(gpu.device, modelQ8.config, modelQ8.tensors, frozen, { maxCandidates: 1000 });
  await engineF32.applyStrategy(strategy);

  const tfjsCold: Record<'webgpu' | 'wasm', number> = { webgpu: 0, wasm: 0 };
  const tfjs = {} as Record<'webgpu' | 'wasm', TfjsReranker>;
  for (const backend of ['webgpu', 'wasm'] as const) {
    const s0 = performance.now();
    await useBackend(backend);
    tfjs[backend] = new TfjsReranker(model, frozen);
    await tfjs[backend].rerank(history, c100, o.k);
    tfjsCold[backend] = performance.now() - s0;
  }
  const layersQ = dequantizeLayers(packAll(frozen, strategy));
  const cpu = createForward(modelQ8.config, modelQ8.tensors, layersQ);
  // The same quantized layers with the float32 item table: what the 8-bit table changes in the ranking.
  const cpuFp32Table = createForward(model.config, model.tensors, layersQ);
  const cpuTop = (f: typeof cpu, size: SizeName): number[] => {
    const ids = size === 'full_catalogue' ? allIds : candidatesOf[size];
    const scores = scoreCandidates(f.represent(history), f.scoring, ids);
    return Array.from(topK(scores, o.k), (i) => ids[i]!);
  };
  const allIds = Uint32Array.from({ length: N }, (_, i) => i + 1);

  // ---- 2. Warm reranks: every path at every size ----
  const run = (path: PathName, size: SizeName): Promise<TopK> => {
    const full = size === 'full_catalogue';
    const list = full ? [] : candidatesOf[size];
    switch (path) {
      case 'chord_wgsl':
      case 'chord_wgsl_f32_table': {
        const e = path === 'chord_wgsl' ? engine : engineF32;
        return (full ? e.recommend(history, o.k) : e.rerank(history, list, o.k)).then((r) => ({ ids: r.ids, scores: r.scores }));
      }
      case 'tfjs_webgpu_fp32':
      case 'tfjs_wasm_fp32': {
        const r = tfjs[path === 'tfjs_webgpu_fp32' ? 'webgpu' : 'wasm'];
        return full ? r.recommend(history, o.k) : r.rerank(history, list, o.k);
      }
      case 'cpu_path': {
        const rep = cpu.represent(history);
        const ids = full ? allIds : list;
        const scores = scoreCandidates(rep, cpu.scoring, ids);
        const order = topK(scores, o.k);
        return Promise.resolve({ ids: Array.from(order, (i) => ids[i]!), scores: Float32Array.from(order, (i) => scores[i]!) });
      }
    }
  };
  const backendOf = (p: PathName) => (p === 'tfjs_webgpu_fp32' ? 'webgpu' : p === 'tfjs_wasm_fp32' ? 'wasm' : null);
  const samples = {} as Record<SizeName, Record<PathName, number[]>>;
  const last = {} as Record<SizeName, Record<PathName, TopK>>;
  for (const size of SIZES) {
    samples[size] = Object.fromEntries(PATHS.map((p) => [p, [] as number[]])) as Record<PathName, number[]>;
    last[size] = {} as Record<PathName, TopK>;
    for (const p of PATHS) {
      const b = backendOf(p);
      if (b) await useBackend(b);
      for (let i = 0; i < o.warmup; i++) await run(p, size);
    }
    log(`shop scale: ${size}: ${o.reps} timed reranks per path in blocks of ${o.block}`);
    for (let done = 0; done < o.reps; done += o.block) {
      for (const p of PATHS) {
        const b = backendOf(p);
        if (b) await useBackend(b);
        for (let i = 0; i < Math.min(o.block, o.reps - done); i++) {
          const r = await timed(() => run(p, size));
          samples[size][p].push(r.ms);
          last[size][p] = r.value;
        }
      }
    }
  }

  // ---- 3. Adapt ----
  log(`shop scale: adapt x ${o.adaptReps} (WebGPU, CPU quantize + pack, CPU backend apply)`);
  const adaptGpu: number[] = [];
  const adaptCpuPack: number[] = [];
  const adaptCpuApply: number[] = [];
  for (let i = 0; i < o.adaptReps; i++) {
    const s = strategies[i % strategies.length]!.strategy;
    adaptGpu.push((await timed(() => engine.applyStrategy(s))).ms);
    adaptCpuPack.push((await timed(() => packAll(frozen, s))).ms);
    adaptCpuApply.push((await timed(() => quantizedLayerWeights(frozen, s))).ms);
  }
  await engine.applyStrategy(strategy);
  const nextItem = 1 + ((history[history.length - 1]! * 7) % N);
  const finetune = await timeFinetuneSteps(model, frozen, [...history, nextItem], ['wasm', 'webgpu'], {
    warmup: o.finetuneWarmup,
    reps: o.finetuneReps,
    log,
    label: 'shop scale: fine-tune step',
  });

  // ---- 4. Memory ----
  const layersFp32 = 4 * frozenParamTotal(model);
  const tableFp32 = (N + 1) * d * 4;
  const fp32 = layersFp32 + tableFp32;
  const chordLayers = engine.weightMemory.resident;
  const chordTable = engine.itemTableMemory.bytes;
  const f32Table = engineF32.itemTableMemory.bytes;

  engine.destroy();
  engineF32.destroy();
  for (const r of Object.values(tfjs)) r.dispose();
  gpu.device.destroy();

  // ---- Report ----
  const rerankMs = Object.fromEntries(
    SIZES.map((size) => [size, Object.fromEntries(PATHS.map((p) => [p, summarize(samples[size][p])]))]),
  ) as Record<SizeName, Record<PathName, Summary>>;
  const speedup = Object.fromEntries(
    SIZES.map((size) => {
      const r = rerankMs[size];
      return [
        size,
        {
          tfjs_webgpu_over_chord: ratio(r.tfjs_webgpu_fp32.p50, r.chord_wgsl.p50),
          tfjs_wasm_over_chord: ratio(r.tfjs_wasm_fp32.p50, r.chord_wgsl.p50),
          cpu_path_over_chord: ratio(r.cpu_path.p50, r.chord_wgsl.p50),
          chord_f32_table_over_chord: ratio(r.chord_wgsl_f32_table.p50, r.chord_wgsl.p50),
        },
      ];
    }),
  ) as unknown as Record<SizeName, Record<string, number>>;
  const adapt = { webgpu: summarize(adaptGpu), cpu_quantize_pack: summarize(adaptCpuPack), cpu_backend_apply: summarize(adaptCpuApply) };
  const checks = Object.fromEntries(
    SIZES.map((size) => {
      const l = last[size];
      return [
        size,
        {
          chord_vs_cpu_path_top_k_identical: l.chord_wgsl.ids.every((id, i) => id === l.cpu_path.ids[i]),
          chord_vs_chord_f32_table_identical: l.chord_wgsl.ids.every((id, i) => id === l.chord_wgsl_f32_table.ids[i]),
          chord_vs_tfjs_webgpu_fp32_top_k_overlap: overlap(l.chord_wgsl.ids, l.tfjs_webgpu_fp32.ids),
          // CPU forward, same quantized layers: top k with the 8-bit table vs with the float32 table.
          item_table_8bit_vs_fp32_top_k_overlap: overlap(cpuTop(cpu, size), cpuTop(cpuFp32Table, size)),
          tfjs_webgpu_vs_wasm_top_k_overlap: overlap(l.tfjs_webgpu_fp32.ids, l.tfjs_wasm_fp32.ids),
        },
      ];
    }),
  );
  const filesBytes = (files: Record<string, number>) => ({ total: Object.values(files).reduce((a, b) => a + b, 0), by_file: files });
  const downloadBytes = options.pageFiles
    ? {
        ...filesBytes(options.pageFiles),
        ...(options.pageFilesFp32Layout ? { fp32_layout: filesBytes(options.pageFilesFp32Layout) } : {}),
      }
    : null;
  return {
    model: { backbone: 'sasrec', ...model.config.dims, numItems: N, frozen_params: frozenParamTotal(model), item_table: [N + 1, d] },
    k: o.k,
    seq_len: history.length,
    strategy_average_bits: Math.round(strategies[0]!.averageBits * 1000) / 1000,
    download_bytes: downloadBytes,
    item_table: {
      scheme: 'int8 codes, symmetric, one f16 scale per row (src/core/item-table.ts)',
      bytes_8bit: table.bytes.byteLength,
      bytes_fp32: tableFp32,
      quantize_ms: Math.round(quantizeTable.ms * 10) / 10,
    },
    cold_start_ms: {
      sdk: sdkCold,
      engine_basis: {
        chord_wgsl: Math.round(chordColdMs),
        tfjs_webgpu_fp32: Math.round(tfjsCold.webgpu),
        tfjs_wasm_fp32: Math.round(tfjsCold.wasm),
        what: 'model in memory: chord = requestDevice + engine create (compile, uploads incl. the 8-bit table) + adapt + first rerank of 100; tfjs = backend init + uploads + first rerank of 100',
      },
    },
    rerank_ms: rerankMs,
    speedup_p50: speedup,
    adapt_ms: {
      ...adapt,
      what: 'webgpu: GpuRerankEngine.applyStrategy; cpu_quantize_pack: core packLayer on every layer (per-channel min-max quantize + mixed-width pack) in TypeScript; cpu_backend_apply: what CpuBackend.applyStrategy computes (quantize + dequantize every layer to f32)',
    },
    finetune_step_ms: finetune,
    resident_weight_bytes: {
      chord: chordLayers + chordTable,
      chord_quantized_layers: chordLayers,
      chord_item_table_8bit: chordTable,
      chord_f32_table: chordLayers + f32Table,
      fp32: fp32,
      fp32_layers: layersFp32,
      fp32_item_table: tableFp32,
    },
    ratios: {
      fp32_over_chord_resident: ratio(fp32, chordLayers + chordTable),
      fp32_over_chord_f32_table_resident: ratio(fp32, chordLayers + f32Table),
      finetune_wasm_step_over_cpu_adapt_p50: finetune.wasm ? ratio(finetune.wasm.p50, adapt.cpu_quantize_pack.p50) : null,
      finetune_wasm_step_over_cpu_backend_apply_p50: finetune.wasm ? ratio(finetune.wasm.p50, adapt.cpu_backend_apply.p50) : null,
      finetune_wasm_step_over_webgpu_adapt_p50: finetune.wasm ? ratio(finetune.wasm.p50, adapt.webgpu.p50) : null,
      finetune_webgpu_step_over_webgpu_adapt_p50: finetune.webgpu ? ratio(finetune.webgpu.p50, adapt.webgpu.p50) : null,
      cold_start_tfjs_webgpu_over_chord: ratio(tfjsCold.webgpu, chordColdMs),
    },
    goals: {
      chord_3x_faster_than_tfjs_webgpu_every_size: SIZES.every((s) => rerankMs[s].tfjs_webgpu_fp32.p50 >= 3 * rerankMs[s].chord_wgsl.p50),
      resident_weights_at_most_quarter_of_fp32: 4 * (chordLayers + chordTable) <= fp32,
      cpu_adapt_50x_faster_than_tfjs_wasm_finetune: finetune.wasm ? finetune.wasm.p50 >= 50 * adapt.cpu_quantize_pack.p50 : null,
    },
    checks,
    protocol: {
      warmup_per_path: o.warmup,
      timed_per_path: o.reps,
      block: o.block,
      adapt_reps: o.adaptReps,
      finetune_warmup: o.finetuneWarmup,
      finetune_reps: o.finetuneReps,
      order: 'fresh page: SDK cold first/return visit, engine-basis cold chord/tfjs webgpu/tfjs wasm, then per size warm-up and interleaved timed blocks, adapt, fine-tune',
      page_seconds: Math.round((performance.now() - started) / 100) / 10,
    },
  };
}

export type ShopScaleReport = Awaited<ReturnType<typeof runShopScale>>;
