import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { benchPanels, renderSvg, type BenchGpuFile } from '../../tools/bench/chart.ts';

const committed = JSON.parse(readFileSync('results/bench-gpu.json', 'utf8')) as BenchGpuFile;

describe('bench chart', () => {
  it('draws one bar per path with the p50 the benchmark file holds, longer for slower', () => {
    const svg = renderSvg(benchPanels(committed), committed.device);
    const bars = [...svg.matchAll(/<rect x="(\d+)" y="[\d.]+" width="([\d.]+)" height="\d+" fill="[^"]+" data-ms="([\d.]+)"\/>/g)].map((m) => ({
      width: Number(m[2]),
      ms: Number(m[3]),
    }));
    expect(bars.map((b) => b.ms)).toEqual([
      committed.rerank_ms.chord_wgsl.p50,
      committed.rerank_ms.tfjs_webgpu_fp32.p50,
      committed.rerank_ms.tfjs_wasm_fp32.p50,
      committed.rerank_ms.cpu_path.p50,
      committed.adapt_ms.p50,
      committed.finetune_step_ms.by_backend.webgpu!.p50,
      committed.finetune_step_ms.by_backend.wasm!.p50,
    ]);
    const byMs = [...bars].sort((a, b) => a.ms - b.ms);
    for (let i = 1; i < byMs.length; i++) expect(byMs[i]!.width).toBeGreaterThanOrEqual(byMs[i - 1]!.width);
  });

  it('the committed picture is the committed benchmark file drawn', () => {
    expect(readFileSync('results/bench-gpu.svg', 'utf8')).toBe(renderSvg(benchPanels(committed), committed.device));
  });

  it('leaves out the bar of a backend whose fine-tune step was not measured', () => {
    const wasmOnly = { ...committed, finetune_step_ms: { by_backend: { wasm: committed.finetune_step_ms.by_backend.wasm! } } };
    const adaptPanel = benchPanels(wasmOnly)[1]!;
    expect(adaptPanel.bars.map((b) => b.label)).toEqual(['CHORD adapt (quantize + pack)', 'fine-tune step, tfjs-wasm']);
  });

  it('refuses a benchmark file without a positive time', () => {
    const broken = { ...committed, adapt_ms: { p50: 0 } };
    expect(() => benchPanels(broken)).toThrow(RangeError);
  });
});
