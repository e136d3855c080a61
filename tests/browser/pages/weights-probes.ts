/**
 * Checks' and benchmarks' access to QuantizedModelWeights beyond the production path (adapt, then
 * kernels binding layer()): read a layer back in core's PackedLayer shape, and run one layer's
 * standalone mixed-bit matmul. Library code never imports this file; the browser test pages and the
 * GPU benchmark do. Both compile their own kernels (packed_scales, matmul_mixed) on first use, so an
 * engine that never calls them never compiles them.
 */
import { GROUP_STRIDE, META_STRIDE, type PackedLayer, valuesPerWord, wordsPerRow } from '../../../src/core/packing.ts';
import { awaitGpu, readBuffers, storageUsage, TransientBuffers, withErrorScopes } from '../../../src/gpu/buffers.ts';
import { encodeMixedMatmul, type MixedMatmulArgs, mixedMatmulProgram } from '../../../src/gpu/matmul-program.ts';
import { groupWordStarts } from '../../../src/gpu/packed-layout.ts';
import { encodePackedScales, packedScalesProgram } from '../../../src/gpu/packed-scales-program.ts';
import { getPipeline } from '../../../src/gpu/pipeline-cache.ts';
import type { QuantizedModelWeights } from '../../../src/gpu/quantized-weights.ts';

/** Words a layer packs into under its width groups (bits, start, end)*. */
function packedWordCount(groups: Uint32Array, rowLength: number): number {
  let words = 0;
  for (let i = 0; i < groups.length; i += GROUP_STRIDE) words += (groups[i + 2]! - groups[i + 1]!) * wordsPerRow(groups[i]!, rowLength);
  return words;
}

/**
 * y [rows, outChannels] = x [rows, rowLength] . deq(W_layer)^T (+ bias) with the standalone kernel
 * (shaders/matmul_mixed.wgsl): uploads x and bias, one submit, one readback. Throws as the weights
 * do (WeightsStateError before adapt or after destroy, GpuDeviceLostError) and MatmulArgumentError.
 */
export async function layerMatmul(
  weights: QuantizedModelWeights,
  ref: number | string,
  x: Float32Array,
  rows: number,
  bias?: Float32Array,
): Promise<Float32Array> {
  const { device } = weights;
  weights.layer(ref); // refuses before adapt(), after destroy() or device loss, before any GPU work
  const pipeline = await awaitGpu(device, getPipeline(device, mixedMatmulProgram));
  const layer = weights.layer(ref);
  const transient = new TransientBuffers(device);
  try {
    const usage = storageUsage();
    const y = await withErrorScopes(device, 'matmul', () => {
      const xBuf = transient.from(x, usage, 'matmul x');
      const yBuf = transient.create(rows * layer.outChannels * 4, usage, 'matmul y');
      const args: MixedMatmulArgs = {
        layer,
        rows,
        x: { buffer: xBuf, size: x.byteLength },
        y: { buffer: yBuf },
        ...(bias ? { bias: { buffer: transient.from(bias, usage, 'matmul bias'), size: bias.byteLength } } : {}),
      };
      const encoder = device.createCommandEncoder({ label: 'matmul' });
      const pass = encoder.beginComputePass({ label: 'matmul' });
      encodeMixedMatmul(device, pass, pipeline, args, transient);
      pass.end();
      device.queue.submit([encoder.finish()]);
      return yBuf;
    });
    const [data] = await readBuffers(device, [{ buffer: y, size: rows * layer.outChannels * 4 }]);
    return new Float32Array(data!);
  } finally {
    transient.destroyAll();
  }
}

/**
 * Reads a layer back into core's PackedLayer shape: words, min and max and the channel order as
 * stored; meta's widths and word offsets derived from the width groups as the kernels derive them;
 * the steps as the kernels recompute them (shaders/packed_scales.wgsl).
 */
export async function readPacked(weights: QuantizedModelWeights, ref: number | string): Promise<PackedLayer> {
  const { device } = weights;
  weights.layer(ref); // refuses before adapt(), after destroy() or device loss, before any GPU work
  const pipeline = await awaitGpu(device, getPipeline(device, packedScalesProgram));
  const bindings = weights.layer(ref);
  const { outChannels: n, rowLength, groups, tableStart } = bindings;
  const wordCount = packedWordCount(groups, rowLength);
  const transient = new TransientBuffers(device);
  try {
    const scaleBuffer = await withErrorScopes(device, 'readPacked', () => {
      const encoder = device.createCommandEncoder({ label: 'packed scales' });
      const pass = encoder.beginComputePass();
      const out = encodePackedScales(device, pass, pipeline, bindings, transient, storageUsage());
      pass.end();
      device.queue.submit([encoder.finish()]);
      return out;
    });
    const firstPair = tableStart & ~1;
    const [words, ranges, chan, scales] = await readBuffers(device, [
      { buffer: bindings.words.buffer, offset: bindings.wordStart * 4, size: Math.max(4, wordCount * 4) },
      { buffer: bindings.ranges.buffer, offset: tableStart * 8, size: n * 8 },
      { buffer: bindings.chan.buffer, offset: firstPair * 2, size: Math.ceil((tableStart + n - firstPair) / 2) * 4 },
      { buffer: scaleBuffer, size: n * 4 },
    ]);
    const minMax = new Uint32Array(ranges!);
    const channels = new Uint16Array(chan!, (tableStart - firstPair) * 2, n);
    const meta = new Uint32Array(n * META_STRIDE);
    const position = new Uint32Array(n);
    const zero = new Uint32Array(n);
    const max = new Uint32Array(n);
    const starts = groupWordStarts(groups, rowLength);
    for (let i = 0, g = 0; i < groups.length; i += GROUP_STRIDE, g++) {
      const bits = groups[i]!;
      for (let p = groups[i + 1]!; p < groups[i + 2]!; p++) {
        const ch = channels[p]!;
        meta.set([ch, bits, starts[g]! + (p - groups[i + 1]!) * wordsPerRow(bits, rowLength), valuesPerWord(bits)], p * META_STRIDE);
        // A corrupt table shows up as a position that does not invert meta's channel.
        if (ch < n) position[ch] = p;
        zero[p] = minMax[2 * p]!;
        max[p] = minMax[2 * p + 1]!;
      }
    }
    return {
      outChannels: n,
      rowLength,
      words: new Uint32Array(words!, 0, wordCount),
      meta,
      scale: new Float32Array(scales!),
      zero: new Float32Array(zero.buffer),
      max: new Float32Array(max.buffer),
      position,
      groups: groups.slice(),
    };
  } finally {
    transient.destroyAll();
  }
}
