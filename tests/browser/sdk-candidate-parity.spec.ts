// The candidate rule on both backends: a table of extreme and mistyped candidate embeddings
// reranked by the public Reranker on WebGPU and on the CPU, in one page. Every list must either be
// refused by both with the same typed error, or ranked by both in the same order with finite
// scores (equal up to float32 rounding of a different summation order). Prints its count of
// cases and failures.
import { expect, test } from '@playwright/test';
import { candidateBound, representationL1Bound } from '../../src/core/forward/index.ts';
import { frozenWeightsByName, generateFrozenWeights } from '../../src/core/frozen.ts';
import type { EmbeddingSpec } from './pages/reranker.ts';
import { RerankerTestServers } from './pages/reranker.server.ts';

const PAGE = '/tests/browser/pages/reranker.html';
let servers: RerankerTestServers;

test.beforeAll(async ({}, info) => {
  servers = await RerankerTestServers.start([new URL(info.project.use.baseURL!).origin]);
});
test.afterAll(async () => servers?.close());

interface Spec {
  readonly id: string;
  readonly embedding: EmbeddingSpec;
  readonly bias?: unknown;
}

interface ParityCase {
  readonly name: string;
  readonly candidates: readonly Spec[];
  /** 'ranked', or the code both backends must refuse the list with. */
  readonly expect: 'ranked' | 'FORWARD_BAD_CANDIDATE' | 'RERANK_BAD_INPUT';
}

type Outcome = { ok: true; ranked: { id: string; score: number }[] } | { ok: false; code: string; message: string };

function cases(d: number, rows: number[][], maxE: number, maxBias: number): ParityCase[] {
  const fill = (v: unknown) => Array.from({ length: d }, () => v);
  const scaled = (row: number[], k: number) => row.map((v) => v * k);
  const signs = (row: number[], k: number) => row.map((v) => (v >= 0 ? k : -k));
  const ordinary = rows.slice(0, 4).map((e, i): Spec => ({ id: `plain-${i}`, embedding: e }));
  const near = 0.999;
  const refused = (name: string, bad: Spec, code: ParityCase['expect'] = 'FORWARD_BAD_CANDIDATE'): ParityCase => ({
    name,
    candidates: [...ordinary, bad],
    expect: code,
  });
  return [
    { name: 'ordinary rows of the item table', candidates: rows.map((e, i) => ({ id: `row-${i}`, embedding: e })), expect: 'ranked' },
    {
      name: 'embeddings at the magnitude bound',
      candidates: [
        ...ordinary,
        { id: 'max+', embedding: fill(maxE * near) },
        { id: 'max-', embedding: fill(-maxE * near) },
        { id: 'max-signs', embedding: signs(rows[5]!, maxE * near) },
        { id: 'max-signs-neg', embedding: signs(rows[5]!, -maxE * near) },
        { id: 'half-max', embedding: signs(rows[6]!, (maxE * near) / 2) },
      ],
      expect: 'ranked',
    },
    {
      name: 'biases at the bound',
      candidates: [
        ...ordinary,
        { id: 'bias+', embedding: rows[7]!, bias: maxBias * near },
        { id: 'bias-', embedding: rows[7]!, bias: -maxBias * near },
        { id: 'bias+max', embedding: signs(rows[8]!, maxE * near), bias: maxBias * near },
        { id: 'bias-max', embedding: signs(rows[8]!, -maxE * near), bias: -maxBias * near },
      ],
      expect: 'ranked',
    },
    {
      name: 'one direction at magnitudes 1e-30 .. 1e30',
      candidates: [-30, -20, -10, -1, 0, 1, 10, 20, 30].map((p) => ({ id: `1e${p}`, embedding: scaled(rows[9]!, 10 ** p) })),
      expect: 'ranked',
    },
    {
      name: 'subnormal, zero and negative-zero embeddings (ties by position)',
      candidates: [
        { id: 'sub', embedding: fill(1e-40) },
        { id: 'zero', embedding: fill(0) },
        { id: 'neg-zero', embedding: fill(-0) },
        { id: 'tiny-normal', embedding: fill(1e-37) },
        { id: 'sub-bias', embedding: fill(0), bias: -1e-41 },
        ...ordinary,
      ],
      expect: 'ranked',
    },
    {
      name: 'the same values as Array, Float32Array, Float64Array (ties by position)',
      candidates: [
        { id: 'f64', embedding: { typed: 'Float64Array', values: rows[10]! } },
        { id: 'array', embedding: rows[10]! },
        { id: 'f32', embedding: { typed: 'Float32Array', values: rows[10]! } },
        { id: 'f64-tenths', embedding: { typed: 'Float64Array', values: rows[11]!.map((v) => Math.round(v * 10) / 10 + 0.1) } },
        ...ordinary,
      ],
      expect: 'ranked',
    },
    {
      name: 'Int8Array embeddings',
      candidates: [
        { id: 'i8-a', embedding: { typed: 'Int8Array', values: rows[12]!.map((v) => Math.round(v * 100)) } },
        { id: 'i8-b', embedding: { typed: 'Int8Array', values: rows[13]!.map((v) => Math.round(v * -100)) } },
        ...ordinary,
      ],
      expect: 'ranked',
    },
    {
      name: 'duplicates (ties by position)',
      candidates: [...ordinary, ...ordinary.map((c) => ({ ...c, id: `${c.id}-again` }))],
      expect: 'ranked',
    },
    refused('all 3e38 (a legal float32)', { id: 'bad', embedding: fill(3e38) }),
    refused('all -3e38', { id: 'bad', embedding: fill(-3e38) }),
    refused('just over the bound', { id: 'bad', embedding: [maxE * 1.01, ...fill(0).slice(1)] }),
    refused('1e39 (not a float32)', { id: 'bad', embedding: [1e39, ...fill(0).slice(1)] }),
    refused('Infinity', { id: 'bad', embedding: [Infinity, ...fill(0).slice(1)] }),
    refused('NaN', { id: 'bad', embedding: [NaN, ...fill(0).slice(1)] }),
    refused('numeric strings', { id: 'bad', embedding: fill('1') }),
    refused('nulls', { id: 'bad', embedding: fill(null) }),
    refused('bias "5"', { id: 'bad', embedding: rows[1]!, bias: '5' }),
    refused('bias null', { id: 'bad', embedding: rows[1]!, bias: null }),
    refused('bias 3e38', { id: 'bad', embedding: rows[1]!, bias: 3e38 }),
    refused('bias over the bound', { id: 'bad', embedding: rows[1]!, bias: maxBias * 1.01 }),
    refused('BigInt64Array', { id: 'bad', embedding: { typed: 'BigInt64Array', values: fill('1') as string[] } }),
    refused('wrong length', { id: 'bad', embedding: [...rows[1]!, 0] }),
    refused('Float64Array of 1e300', { id: 'bad', embedding: { typed: 'Float64Array', values: fill(1e300) as number[] } }),
    refused('an id that is not a string', { id: 7 as unknown as string, embedding: rows[1]! }, 'RERANK_BAD_INPUT'),
  ];
}

function same(gpu: Outcome, cpu: Outcome, want: ParityCase['expect']): string | null {
  const describe = (o: Outcome) => (o.ok ? `ranked ${o.ranked.map((x) => `${x.id}=${x.score.toPrecision(3)}`).join(' ')}` : o.code);
  if (want !== 'ranked') {
    if (gpu.ok || cpu.ok) return `expected ${want}; webgpu ${describe(gpu)} | cpu ${describe(cpu)}`;
    return gpu.code === want && cpu.code === want ? null : `expected ${want}; webgpu ${gpu.code}, cpu ${cpu.code}`;
  }
  if (!gpu.ok || !cpu.ok) return `expected a ranking; webgpu ${gpu.ok ? 'ok' : `${gpu.code} ${gpu.message}`}, cpu ${cpu.ok ? 'ok' : `${cpu.code} ${cpu.message}`}`;
  const g = gpu.ranked;
  const c = cpu.ranked;
  if (g.map((x) => x.id).join() !== c.map((x) => x.id).join()) return `order differs: webgpu ${g.map((x) => x.id).join(' ')} | cpu ${c.map((x) => x.id).join(' ')}`;
  for (const [i, x] of g.entries()) {
    const y = c[i]!;
    if (!Number.isFinite(x.score) || !Number.isFinite(y.score)) return `non-finite score for ${x.id}: webgpu ${x.score}, cpu ${y.score}`;
    if (Math.abs(x.score - y.score) > 1e-4 * Math.max(1, Math.abs(y.score))) return `score of ${x.id}: webgpu ${x.score}, cpu ${y.score}`;
  }
  return null;
}

test('WebGPU and CPU refuse the same candidates and rank every accepted list alike', async ({ page }) => {
  await page.goto(PAGE);
  await page.waitForSelector('body[data-ready="1"]');
  const a = servers.artifact;
  const base = { model: servers.modelUrl, strategyEndpoint: servers.endpoint, budget: null, persist: false, drift: { warmupClicks: 1000 } };
  for (const [name, device] of [['gpu', 'webgpu'], ['cpu', 'cpu']] as const) {
    const created = await page.evaluate(([n, o]) => window.chordReranker.create(n, o as never), [name, { ...base, device }] as const);
    expect(created).toMatchObject({ ok: true, backend: device });
    await page.evaluate(([n, ids]) => window.chordReranker.observe(n, ids), [name, a.itemsOfTheme(1).slice(0, 4)] as const);
  }

  const d = (a.manifest.dims as { hidden: number }).hidden;
  const emb = a.backbone.get('item_emb')!.data;
  const rows = Array.from({ length: 20 }, (_, i) => Array.from(emb.subarray((i + 1) * d, (i + 2) * d)));
  const bound = candidateBound(representationL1Bound(a.manifest, a.backbone, frozenWeightsByName(generateFrozenWeights(a.manifest))));
  const table = cases(d, rows, bound.maxAbsEmbedding, bound.maxAbsBias);
  const failures: string[] = [];
  for (const c of table) {
    const run = (n: string) => page.evaluate(([nn, cs]) => window.chordReranker.rerankEmbeddings(nn, cs as never), [n, c.candidates] as const) as Promise<Outcome>;
    const problem = same(await run('gpu'), await run('cpu'), c.expect);
    if (problem) failures.push(`${c.name}: ${problem}`);
  }
  console.log(`CPU/WebGPU candidate parity: ${table.length} cases, ${failures.length} failures (bound |e| <= ${bound.maxAbsEmbedding.toPrecision(3)}, |bias| <= ${bound.maxAbsBias.toPrecision(3)})`);
  expect(failures).toEqual([]);
});
