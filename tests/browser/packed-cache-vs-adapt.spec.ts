// One-off measurement for issue 20 (kept in history, deleted with the packed-weights cache): what a
// cache hit in src/device/store.ts would cost against what it would save. For the default SASRec
// (seeded frozen weights, 4-level strategy) in this Chromium: the GPU adapt (QuantizedModelWeights,
// frozen upload + quantize + pack, one submit, awaited) against a hit's lower bound, getPacked
// (IndexedDB read + SHA-256 check + validation) plus writing words / ranges / chan to the GPU.
// and what a miss would add to every new strategy (read back, hash, store). Medians, ratios only
// (WebGPU is SwiftShader here).
// @ts-nocheck -- page.evaluate imports modules by their URL on the vite server.
import { expect, test } from '@playwright/test';

test('packed-weights cache hit vs adapt (ratios)', async ({ page }) => {
  await page.goto('/tests/browser/pages/index.html');
  const r = await page.evaluate(async () => {
    const { backboneLayers, DEFAULT_SASREC_DIMS } = await import('/src/core/backbones.ts');
    const { generateFrozenWeights } = await import('/src/core/frozen.ts');
    const { acquireGpu } = await import('/src/gpu/device.ts');
    const { QuantizedModelWeights } = await import('/src/gpu/quantized-weights.ts');
    const { WeightStore } = await import('/src/device/store.ts');
    const { readPacked } = await import('/tests/browser/pages/weights-probes.ts');
    const { mulberry32 } = await import('/tests/fixtures/mulberry32.ts');
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const specs = backboneLayers({ backbone: 'sasrec', dims: DEFAULT_SASREC_DIMS });
    const frozen = generateFrozenWeights({ seed: 1, layers: specs });
    const layers = specs.map(({ name, outChannels, rowLength }) => ({ name, outChannels, rowLength }));
    const rand = mulberry32(7);
    const strategy = {
      levelTable: [2, 4, 6, 8] as const,
      beta: 0.125,
      layers: layers.map((l) => ({ name: l.name, levels: Uint8Array.from({ length: l.outChannels }, () => Math.floor(rand() * 4)) })),
    };
    const { device } = await acquireGpu();
    const weights = await QuantizedModelWeights.create(device, layers, frozen.map((f) => f.weights), { wordCapacity: 'fit' });
    const N = 30;
    await weights.adapt(strategy);
    const adaptMs: number[] = [];
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      await weights.adapt(strategy);
      adaptMs.push(performance.now() - t);
    }
    const store = await WeightStore.open({ dbName: 'chord-packed-bench' });
    // What a miss adds to every new strategy: read the packed layers back, hash and store them.
    const storeMs: number[] = [];
    let packed: Awaited<ReturnType<typeof readPacked>>[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      packed = [];
      for (const l of layers) packed.push(await readPacked(weights, l.name));
      await store.putPacked({ modelId: 'bench', version: '1', strategyHash: i.toString(16).padStart(64, '0') }, packed);
      storeMs.push(performance.now() - t);
    }
    const key = { modelId: 'bench', version: '1', strategyHash: 'a'.repeat(64) };
    const put = await store.putPacked(key, packed);
    const expect = { layers: layers.map(({ outChannels, rowLength }) => ({ outChannels, rowLength })) };
    await store.getPacked(key, expect);
    const getMs: number[] = [];
    let status = '';
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      const got = await store.getPacked(key, expect);
      getMs.push(performance.now() - t);
      status = got.status;
    }
    // The GPU half of a hit: the stored words, (min, max) pairs and u16 channels written to buffers.
    const words = packed.reduce((s, p) => s + p.words.length, 0);
    const channels = packed.reduce((s, p) => s + p.outChannels, 0);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const bufs = [words * 4, channels * 8, Math.ceil(channels / 2) * 4].map((size) => device.createBuffer({ size, usage }));
    const uploadMs: number[] = [];
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      const allWords = new Uint32Array(words);
      const ranges = new Float32Array(channels * 2);
      const chan = new Uint16Array(Math.ceil(channels / 2) * 2);
      let w = 0;
      let c = 0;
      for (const p of packed) {
        allWords.set(p.words, w);
        for (let q = 0; q < p.outChannels; q++) {
          ranges[2 * (c + q)] = p.zero[q]!;
          ranges[2 * (c + q) + 1] = p.max[q]!;
          chan[c + q] = p.meta[q * 4]!;
        }
        w += p.words.length;
        c += p.outChannels;
      }
      device.queue.writeBuffer(bufs[0]!, 0, allWords);
      device.queue.writeBuffer(bufs[1]!, 0, ranges);
      device.queue.writeBuffer(bufs[2]!, 0, chan);
      await device.queue.onSubmittedWorkDone();
      uploadMs.push(performance.now() - t);
    }
    weights.destroy();
    device.destroy();
    store.close();
    const a = median(adaptMs);
    const g = median(getMs);
    const u = median(uploadMs);
    return { put: put.stored, status, weights: frozen.reduce((s, f) => s + f.weights.length, 0), getOverAdapt: g / a, hitOverAdapt: (g + u) / a, uploadOverAdapt: u / a, missExtraOverAdapt: median(storeMs) / a };
  });
  console.log(JSON.stringify(r));
  expect(r.status).toBe('hit');
});
