/**
 * `npm run bench:chart`: draws the committed GPU benchmark (results/bench-gpu.json) as
 * results/bench-gpu.svg, the README's benchmark picture. It draws only what the file holds (p50
 * of each path, in ms), on a log scale because the paths differ by two orders of magnitude.
 *
 *   npm run bench:chart -- [--in results/bench-gpu.json] [--out results/bench-gpu.svg]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface P50 {
  readonly p50: number;
}

/** The part of tools/bench/bench-gpu.ts's report that the chart reads. */
export interface BenchGpuFile {
  readonly device: string;
  readonly candidates: number;
  readonly rerank_ms: Record<'chord_wgsl' | 'tfjs_webgpu_fp32' | 'tfjs_wasm_fp32' | 'cpu_path', P50>;
  readonly adapt_ms: P50;
  /** A backend whose fine-tune step was not measured (tfjs-webgpu absent, say) has no bar. */
  readonly finetune_step_ms: { readonly by_backend: Partial<Record<'webgpu' | 'wasm', P50>> };
}

export interface Bar {
  readonly label: string;
  readonly ms: number;
  /** The CHORD path (drawn in the accent colour). */
  readonly chord: boolean;
}

export interface Panel {
  readonly title: string;
  readonly bars: readonly Bar[];
}

export function benchPanels(r: BenchGpuFile): Panel[] {
  for (const [what, v] of [
    ...Object.entries(r.rerank_ms),
    ['adapt', r.adapt_ms],
    ...Object.entries(r.finetune_step_ms.by_backend).filter(([, v]) => v !== undefined),
  ] as [string, P50][]) {
    if (!(Number.isFinite(v.p50) && v.p50 > 0)) throw new RangeError(`${what}: p50 ${v.p50} is not a positive number of ms`);
  }
  return [
    {
      title: `Rerank ${r.candidates} candidates (p50)`,
      bars: [
        { label: 'CHORD WGSL kernels', ms: r.rerank_ms.chord_wgsl.p50, chord: true },
        { label: 'fp32 SASRec, tfjs-webgpu', ms: r.rerank_ms.tfjs_webgpu_fp32.p50, chord: false },
        { label: 'fp32 SASRec, tfjs-wasm', ms: r.rerank_ms.tfjs_wasm_fp32.p50, chord: false },
        { label: 'CHORD TypeScript CPU path', ms: r.rerank_ms.cpu_path.p50, chord: true },
      ],
    },
    {
      title: 'A new strategy: adapt vs one fine-tune step (p50)',
      bars: [
        { label: 'CHORD adapt (quantize + pack)', ms: r.adapt_ms.p50, chord: true },
        ...(['webgpu', 'wasm'] as const).flatMap((b) => {
          const step = r.finetune_step_ms.by_backend[b];
          return step ? [{ label: `fine-tune step, tfjs-${b}`, ms: step.p50, chord: false }] : [];
        }),
      ],
    },
  ];
}

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Horizontal bars, one panel under the other, bar length log10(ms) over a shared axis. */
export function renderSvg(panels: readonly Panel[], device: string): string {
  const width = 760;
  const labelW = 230;
  const plotW = 440;
  const barH = 18;
  const gap = 8;
  const all = panels.flatMap((p) => p.bars.map((b) => b.ms));
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const x = (ms: number) => labelW + (plotW * Math.log10(ms / lo)) / Math.log10(hi / lo);
  const out: string[] = [];
  let y = 30;
  out.push(`<text x="10" y="18" font-weight="bold">chord-rerank: ${escape(device)} (ms, log scale; shorter is faster)</text>`);
  for (const panel of panels) {
    y += 16;
    out.push(`<text x="10" y="${y}" font-weight="bold">${escape(panel.title)}</text>`);
    y += 8;
    for (const bar of panel.bars) {
      const w = Math.max(1, x(bar.ms) - labelW);
      out.push(
        `<text x="${labelW - 8}" y="${y + barH - 5}" text-anchor="end">${escape(bar.label)}</text>`,
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${bar.chord ? '#d9480f' : '#868e96'}" data-ms="${bar.ms}"/>`,
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + barH - 5}">${bar.ms} ms</text>`,
      );
      y += barH + gap;
    }
  }
  y += 4;
  // The grid goes under the bars: drawn first, after the title.
  const grid: string[] = [];
  for (let t = lo; t <= hi; t *= 10) {
    grid.push(`<line x1="${x(t).toFixed(1)}" y1="40" x2="${x(t).toFixed(1)}" y2="${y}" stroke="#dee2e6"/>`);
    out.push(`<text x="${x(t).toFixed(1)}" y="${y + 14}" text-anchor="middle">${t}</text>`);
  }
  out.splice(1, 0, ...grid);
  const height = y + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}

/** The chart of a bench-gpu report, as bench:gpu writes it beside its JSON and bench:chart redraws it. */
export function benchChartSvg(report: BenchGpuFile): string {
  return renderSvg(benchPanels(report), report.device);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      in: { type: 'string', default: 'results/bench-gpu.json' },
      out: { type: 'string', default: 'results/bench-gpu.svg' },
    },
  });
  const report = JSON.parse(readFileSync(resolve(values.in!), 'utf8')) as BenchGpuFile;
  writeFileSync(resolve(values.out!), benchChartSvg(report));
  console.log(`wrote ${values.out}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
