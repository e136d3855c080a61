import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BITSTREAM_ERROR_CODES, decodeStrategy, encodeStrategy } from '../../src/core/bitstream.ts';
import { FuzzRng, randomValidSample, runBitstreamFuzz, runBitstreamFuzzCase } from '../../tools/fuzz/fuzz-bitstream.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BITSTREAM = '../../src/core/bitstream.ts';
const FUZZ = '../../tools/fuzz/fuzz-bitstream.ts';

describe('bitstream fuzzer', () => {
  it('runs 10,000 cases with 0 crashes and reaches every decode check', () => {
    const r = runBitstreamFuzz({ cases: 10_000, seed: 1 });
    expect(r.cases).toBe(10_000);
    expect(r.failures).toEqual([]);
    expect(r.crashes).toBe(0);
    const total = Object.values(r.outcomes).reduce((a, b) => a + b, 0);
    expect(total).toBe(10_000);
    // Every code the decoder can raise from bytes ('BITSTREAM_BAD_HASH' and 'BITSTREAM_BAD_BETA' are encode-only,
    // 'BITSTREAM_NOT_BYTES' is for callers passing no bytes at all) and successes.
    const notFromBytes: readonly string[] = ['BITSTREAM_BAD_HASH', 'BITSTREAM_BAD_BETA', 'BITSTREAM_NOT_BYTES'];
    const decodeCodes = BITSTREAM_ERROR_CODES.filter((c) => !notFromBytes.includes(c));
    for (const code of [...decodeCodes, 'ok']) expect(r.outcomes[code] ?? 0, code).toBeGreaterThan(20);
    expect(r.outcomes['crash']).toBeUndefined();
  });

  it('is deterministic per seed and replays single cases', () => {
    const a = runBitstreamFuzz({ cases: 500, seed: 99 });
    const b = runBitstreamFuzz({ cases: 500, seed: 99 });
    const c = runBitstreamFuzz({ cases: 500, seed: 100 });
    expect(a.outcomes).toEqual(b.outcomes);
    expect(a.outcomes).not.toEqual(c.outcomes);
    const one = runBitstreamFuzzCase(99, 123);
    const again = runBitstreamFuzzCase(99, 123);
    expect(Array.from(one.input)).toEqual(Array.from(again.input));
    expect(one.kind).toBe(again.kind);
    expect(one.crash).toBeNull();
  });

  it('reports progress', () => {
    const seen: number[] = [];
    runBitstreamFuzz({ cases: 250, seed: 3, progressEvery: 100, onProgress: (done) => seen.push(done) });
    expect(seen).toEqual([100, 200, 250]);
  });

  it('generates valid samples that decode to what was encoded', () => {
    const rng = new FuzzRng(5);
    let offTables = 0;
    for (let i = 0; i < 50; i++) {
      const s = randomValidSample(rng);
      if (s.strategy.levelTable[0] === 0) offTables++;
      const d = decodeStrategy(s.bytes, { modelId: s.modelId, layers: s.manifest });
      expect(d.strategy.layers.map((l) => l.name)).toEqual(s.manifest.map((l) => l.name));
      expect(encodeStrategy(d.strategy, d)).toEqual(s.bytes);
    }
    // Tables starting at the off level (0 bits) are among the valid samples.
    expect(offTables).toBeGreaterThan(0);
  });
});

describe('bitstream fuzzer against broken decoders', () => {
  afterEach(() => {
    vi.doUnmock(BITSTREAM);
    vi.resetModules();
  });

  async function fuzzWith(
    broken: (real: typeof decodeStrategy) => typeof decodeStrategy,
  ): Promise<ReturnType<typeof runBitstreamFuzz>> {
    vi.resetModules();
    vi.doMock(BITSTREAM, async (importOriginal) => {
      const real = await importOriginal<typeof import('../../src/core/bitstream.ts')>();
      return { ...real, decodeStrategy: broken(real.decodeStrategy) };
    });
    const fuzz = (await import(FUZZ)) as typeof import('../../tools/fuzz/fuzz-bitstream.ts');
    return fuzz.runBitstreamFuzz({ cases: 2000, seed: 1, maxFailures: 3 });
  }

  it('counts a stray exception as a crash and records the input', async () => {
    const r = await fuzzWith((real) => (bytes, e) => {
      if (bytes.length > 0 && bytes.length % 7 === 0) throw new TypeError('boom');
      return real(bytes, e);
    });
    expect(r.crashes).toBeGreaterThan(50);
    expect(r.failures).toHaveLength(3);
    const f = r.failures[0]!;
    expect(f.reason).toContain('TypeError: boom');
    expect(f.inputLength % 7).toBe(0);
    expect(f.hex).toMatch(/^[0-9a-f]+$/);
    expect(f.hex.length).toBe(2 * f.inputLength);
  });

  it('catches a decoder that accepts trailing bytes', async () => {
    const r = await fuzzWith((real) => (bytes, e) => {
      for (let n = bytes.length; n >= 0; n--) {
        try {
          return real(bytes.subarray(0, n), e);
        } catch (err) {
          if (n === bytes.length && (err as { code?: string }).code !== 'BITSTREAM_TRAILING_BYTES') throw err;
        }
      }
      return real(bytes, e);
    });
    expect(r.crashes).toBeGreaterThan(0);
    expect(r.failures.some((f) => f.reason.includes('BITSTREAM_TRAILING_BYTES'))).toBe(true);
  });
});

describe('fuzz CLI', () => {
  const run = promisify(execFile);

  it('prints "N cases, K crashes" last and exits 0', async () => {
    const { stdout } = await run('npx', ['tsx', 'tools/fuzz/fuzz-bitstream-cli.ts', '--cases', '2000'], {
      cwd: ROOT,
      timeout: 120_000,
    });
    const lines = stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('2000 cases, 0 crashes');
    expect(lines.at(-2)).toMatch(/^seed 1, /);
  }, 130_000);

  it('exits 2 on bad arguments', async () => {
    const err = await run('npx', ['tsx', 'tools/fuzz/fuzz-bitstream-cli.ts', '--cases', 'many'], {
      cwd: ROOT,
      timeout: 120_000,
    }).catch((e: unknown) => e as { code: number; stderr: string });
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toContain('--cases must be an integer');
  }, 130_000);
});
