/**
 * Hostile input to the page-side API in Node: extreme and mistyped candidate embeddings against
 * the CPU scoring and the public Reranker, null arguments, and decodeStrategy given no bytes.
 * Every accepted input must give finite scores; every refused one a typed error. Each table
 * prints its count of cases and failures. (The same candidates on WebGPU:
 * tests/browser/sdk-candidate-parity.spec.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeStrategy, encodeStrategy } from '../../src/core/bitstream.ts';
import { scoreCandidatesWithEmbeddings } from '../../src/core/forward/index.ts';
import type { CandidateEmbedding } from '../../src/core/forward/index.ts';
import { createReranker } from '../../src/device/index.ts';
import type { Reranker } from '../../src/device/index.ts';
import { RerankerTestServers } from '../browser/pages/reranker.server.ts';

function report(name: string, cases: number, failures: string[]): void {
  console.log(`${name}: ${cases} cases, ${failures.length} failures`);
  expect(failures).toEqual([]);
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    return (e as { code?: string }).code ?? `untyped ${(e as Error).name}: ${(e as Error).message}`;
  }
}

async function codeOfAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'accepted';
  } catch (e) {
    return (e as { code?: string }).code ?? `untyped ${(e as Error).name}: ${(e as Error).message}`;
  }
}

const fill = <T,>(n: number, v: T): T[] => Array.from({ length: n }, () => v);

/** Candidates every path must refuse (FORWARD_BAD_CANDIDATE), for representations of length `dim`. */
function refusedCandidates(dim: number): [string, unknown][] {
  const alternating = Array.from({ length: dim }, (_, i) => (i % 2 ? -3e38 : 3e38));
  const withHole: number[] = fill(dim, 0.5);
  delete withHole[1];
  return [
    ['all 3e38 (a legal float32)', { id: 'a', embedding: fill(dim, 3e38) }],
    ['all -3e38', { id: 'a', embedding: fill(dim, -3e38) }],
    ['alternating ±3e38', { id: 'a', embedding: alternating }],
    ['one 1e39 (not a float32)', { id: 'a', embedding: [1e39, ...fill(dim - 1, 0)] }],
    ['Float32Array of 3e38', { id: 'a', embedding: new Float32Array(dim).fill(3e38) }],
    ['Float64Array with 1e300', { id: 'a', embedding: Float64Array.from(fill(dim, 1e300)) }],
    ['Infinity', { id: 'a', embedding: [Infinity, ...fill(dim - 1, 0)] }],
    ['NaN', { id: 'a', embedding: [...fill(dim - 1, 0), NaN] }],
    ['numeric strings', { id: 'a', embedding: fill(dim, '1') }],
    ['nulls', { id: 'a', embedding: fill(dim, null) }],
    ['one null', { id: 'a', embedding: [null, ...fill<number | null>(dim - 1, 0.1)] }],
    ['a hole', { id: 'a', embedding: withHole }],
    ['booleans', { id: 'a', embedding: fill(dim, true) }],
    ['BigInt64Array', { id: 'a', embedding: new BigInt64Array(dim) }],
    ['a string as embedding', { id: 'a', embedding: 'x'.repeat(dim) }],
    ['null embedding', { id: 'a', embedding: null }],
    ['wrong length', { id: 'a', embedding: fill(dim + 1, 0.1) }],
    ['bias "5"', { id: 'a', embedding: fill(dim, 0.1), bias: '5' }],
    ['bias null', { id: 'a', embedding: fill(dim, 0.1), bias: null }],
    ['bias 1e39', { id: 'a', embedding: fill(dim, 0.1), bias: 1e39 }],
    ['bias 3e38', { id: 'a', embedding: fill(dim, 0.1), bias: 3e38 }],
    ['bias NaN', { id: 'a', embedding: fill(dim, 0.1), bias: NaN }],
  ];
}

describe('CPU scoring of candidate embeddings (core)', () => {
  const rep = Float32Array.from({ length: 8 }, (_, i) => (i % 3) - 0.75);

  it('refuses every hostile candidate with FORWARD_BAD_CANDIDATE and never returns a non-finite score', () => {
    const failures: string[] = [];
    const cases = refusedCandidates(rep.length);
    for (const [name, candidate] of cases) {
      let got: string;
      try {
        const scores = scoreCandidatesWithEmbeddings(rep, [candidate as CandidateEmbedding]);
        got = `accepted with score ${scores[0]}`;
      } catch (e) {
        got = (e as { code?: string }).code ?? `untyped ${String(e)}`;
      }
      if (got !== 'FORWARD_BAD_CANDIDATE') failures.push(`${name}: ${got}`);
    }
    report('CPU hostile candidates', cases.length, failures);
  });

  it('accepts any typed array of numbers, and scores the float32 values of what it accepts', () => {
    const values = [0.1, -0.2, 0.3, 1 / 3, 1e-3, -7, 2, 1e-40];
    const want = scoreCandidatesWithEmbeddings(rep, [{ id: 'f32', embedding: Float32Array.from(values), bias: 0.25 }])[0]!;
    const failures: string[] = [];
    const forms: [string, ArrayLike<number>][] = [
      ['Array', values],
      ['Float64Array', Float64Array.from(values)],
      ['Float32Array', Float32Array.from(values)],
    ];
    for (const [name, embedding] of forms) {
      const got = scoreCandidatesWithEmbeddings(rep, [{ id: name, embedding, bias: 0.25 }])[0];
      if (got !== want) failures.push(`${name}: ${got}, Float32Array gives ${want}`);
    }
    const ints = scoreCandidatesWithEmbeddings(rep, [{ id: 'i8', embedding: Int8Array.from([1, -2, 3, 0, 0, 0, 0, 0]) }])[0];
    if (ints !== Math.fround(rep[0]! - 2 * rep[1]! + 3 * rep[2]!)) failures.push(`Int8Array: ${ints}`);
    report('CPU accepted forms', forms.length + 1, failures);
  });
});

describe('Reranker (CPU, Node) under hostile arguments', () => {
  let servers: RerankerTestServers;
  let r: Reranker;
  beforeAll(async () => {
    servers = await RerankerTestServers.start([]);
    r = await createReranker({ model: servers.modelUrl, strategyEndpoint: servers.endpoint, device: 'cpu', budget: null, persist: false, drift: { warmupClicks: 1000 } });
  });
  afterAll(async () => {
    r?.dispose();
    await servers?.close();
  });

  it('refuses hostile candidates and null options with typed errors before scoring', async () => {
    const d = (servers.artifact.manifest.dims as { hidden: number }).hidden;
    const ids = servers.artifact.items.slice(1, 6);
    const failures: string[] = [];
    const cases: [string, () => Promise<unknown>, string][] = [
      ['rerank(ids, null)', () => r.rerank(ids, null as never), 'RERANK_BAD_INPUT'],
      ['rerank(ids, 5)', () => r.rerank(ids, 5 as never), 'RERANK_BAD_INPUT'],
      ['rerank(null)', () => r.rerank(null as never), 'RERANK_BAD_INPUT'],
      ['rerank([null])', () => r.rerank([null] as never), 'RERANK_BAD_INPUT'],
      ...refusedCandidates(d).map(([name, c]): [string, () => Promise<unknown>, string] => [name, () => r.rerank([c] as never), 'FORWARD_BAD_CANDIDATE']),
    ];
    for (const [name, call, want] of cases) {
      const got = await codeOfAsync(call);
      if (got !== want) failures.push(`${name}: expected ${want}, got ${got}`);
    }
    report('Reranker hostile arguments', cases.length, failures);
  });

  it('accepts a Float64Array embedding and ranks it as the same Float32Array', async () => {
    const d = (servers.artifact.manifest.dims as { hidden: number }).hidden;
    const emb = servers.artifact.backbone.get('item_emb')!.data;
    const rows = [3, 9, 17].map((i) => Array.from(emb.subarray(i * d, (i + 1) * d), (v) => v + 1e-9));
    const as64 = await r.rerank(rows.map((e, i) => ({ id: `c${i}`, embedding: Float64Array.from(e) })));
    const as32 = await r.rerank(rows.map((e, i) => ({ id: `c${i}`, embedding: Float32Array.from(e) })));
    expect(as64).toEqual(as32);
    expect(as64.every((x) => Number.isFinite(x.score))).toBe(true);
  });
});

describe('decodeStrategy without bytes', () => {
  it('answers every non-Uint8Array with a typed BitstreamError', () => {
    const valid = encodeStrategy(
      { levelTable: [2, 4, 6, 8], beta: 0.5, layers: [{ name: 'l0', levels: Uint8Array.from([0, 1, 2, 3]) }] },
      { modelId: 'm', frozenWeightsHash: '0'.repeat(64) },
    );
    const cases: [string, () => unknown, string][] = [
      ['null', () => decodeStrategy(null as never), 'BITSTREAM_NOT_BYTES'],
      ['undefined', () => decodeStrategy(undefined as never), 'BITSTREAM_NOT_BYTES'],
      ['a string', () => decodeStrategy('CHRD'.padEnd(80, 'x') as never), 'BITSTREAM_NOT_BYTES'],
      ['an ArrayBuffer', () => decodeStrategy(valid.buffer as never), 'BITSTREAM_NOT_BYTES'],
      ['an array of bytes', () => decodeStrategy(Array.from(valid) as never), 'BITSTREAM_NOT_BYTES'],
      ['an array-like object', () => decodeStrategy({ length: 80 } as never), 'BITSTREAM_NOT_BYTES'],
      ['a DataView', () => decodeStrategy(new DataView(valid.buffer) as never), 'BITSTREAM_NOT_BYTES'],
      ['expected layers null', () => decodeStrategy(valid, { layers: null as never }), 'accepted'],
      ['expected layers 5', () => decodeStrategy(valid, { layers: 5 as never }), 'BITSTREAM_LAYER_MISMATCH'],
      ['expect null', () => decodeStrategy(valid, null as never), 'accepted'],
    ];
    const failures = cases.flatMap(([name, call, want]) => {
      const got = codeOf(call);
      return got === want ? [] : [`${name}: expected ${want}, got ${got}`];
    });
    report('decodeStrategy without bytes', cases.length, failures);
  });
});
