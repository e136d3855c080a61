/**
 * Buffer plumbing shared by the GPU programs: creation from typed arrays, readback, per-submit
 * transient buffers, and turning a lost device into a typed error instead of a hang.
 */
import { ChordError } from '../core/errors.ts';
import { META_BITS, META_CHANNEL, META_STRIDE, type PackedLayer, validatePackedLayer } from '../core/packing.ts';
import { channelScale } from '../core/quantize.ts';
import { OFF_BITS } from '../core/strategy.ts';
import { GpuDeviceLostError } from './errors.ts';
import { LayerLayoutError } from './packed-layout.ts';

/** Alignment of buffer-range binding offsets (WebGPU's largest minStorageBufferOffsetAlignment). */
const BINDING_ALIGN_BYTES = 256;

/** A GPU command failed validation or ran out of memory (a bug or an oversized model, not a loss). */
export class GpuCommandError extends ChordError<'GpuCommandError'> {
  override readonly name = 'GpuCommandError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('GPU_COMMAND_FAILED', message, options);
  }
}

// ---- Device loss ----

const lostInfos = new WeakMap<GPUDevice, GPUDeviceLostInfo>();
const lostRejections = new WeakMap<GPUDevice, Promise<never>>();

function lostError(info: GPUDeviceLostInfo): GpuDeviceLostError {
  return new GpuDeviceLostError(info.reason, `GPU device lost (${info.reason}): ${info.message}`);
}

/**
 * A promise that rejects with GpuDeviceLostError once `device` is lost (never resolves). Calling it
 * early also lets {@link throwIfLost} answer synchronously afterwards.
 */
export function deviceLoss(device: GPUDevice): Promise<never> {
  let p = lostRejections.get(device);
  if (!p) {
    p = device.lost.then((info) => {
      lostInfos.set(device, info);
      throw lostError(info);
    });
    // Only racers observe it; a loss nobody is waiting for is not an unhandled rejection.
    p.catch(() => undefined);
    lostRejections.set(device, p);
  }
  return p;
}

export function throwIfLost(device: GPUDevice): void {
  const info = lostInfos.get(device);
  if (info) throw lostError(info);
}

/**
 * Awaits GPU work, or rejects with GpuDeviceLostError if the device is lost first. A GPU promise
 * that rejects because of the loss (mapAsync does, sometimes before `device.lost` settles) is also
 * reported as the loss.
 */
export async function awaitGpu<T>(device: GPUDevice, work: Promise<T>): Promise<T> {
  const loss = deviceLoss(device);
  try {
    return await Promise.race([work, loss]);
  } catch (err) {
    if (err instanceof GpuDeviceLostError) throw err;
    const settled = await Promise.race([
      loss.catch((e: unknown) => e),
      new Promise((resolve) => setTimeout(resolve, 100, undefined)),
    ]);
    if (settled instanceof GpuDeviceLostError) throw settled;
    throw err;
  }
}

/** Runs `encode` inside validation and out-of-memory error scopes; throws GpuCommandError on either. */
export async function withErrorScopes<T>(device: GPUDevice, what: string, encode: () => T): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: { value: T } | { error: unknown };
  try {
    result = { value: encode() };
  } catch (error) {
    result = { error };
  }
  // Scopes must be popped whatever happened, innermost (validation) first.
  const [validation, oom] = await awaitGpu(device, Promise.all([device.popErrorScope(), device.popErrorScope()]));
  if ('error' in result) throw result.error;
  const gpuError = validation ?? oom;
  if (gpuError) throw new GpuCommandError(`${what}: ${gpuError.message}`, { cause: gpuError });
  return result.value;
}

// ---- Buffers ----

/** Usage of model buffers: bound as storage, written by the queue, readable for checks. */
export function storageUsage(): number {
  // GPUBufferUsage is a browser global, so it is read at call time (this module loads in Node too).
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
}

/** A buffer holding `data` (length padded to 4 bytes), created mapped so no queue write is needed. */
export function createBufferFrom(
  device: GPUDevice,
  data: ArrayBufferView,
  usage: number,
  label?: string,
): GPUBuffer {
  const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
  const buffer = device.createBuffer({ label, size, usage, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buffer.unmap();
  return buffer;
}

/** Byte size of a binding (an omitted size means "to the end of the buffer"). */
export function bindingSize(b: GPUBufferBinding): number {
  return b.size ?? b.buffer.size - (b.offset ?? 0);
}

/**
 * Copies buffer ranges to one staging buffer in a single submit and maps it; one ArrayBuffer per
 * range. Rejects with GpuDeviceLostError if the device is lost meanwhile.
 */
export async function readBuffers(device: GPUDevice, ranges: readonly GPUBufferBinding[]): Promise<ArrayBuffer[]> {
  throwIfLost(device);
  const sizes = ranges.map(bindingSize);
  const offsets: number[] = [];
  let total = 0;
  for (const size of sizes) {
    if (size % 4 !== 0) throw new RangeError(`readback size ${size} is not a multiple of 4`);
    offsets.push(total);
    total += size;
  }
  const staging = device.createBuffer({
    label: 'readback',
    size: Math.max(4, total),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const enc = device.createCommandEncoder({ label: 'readback' });
    ranges.forEach((r, i) => {
      if (sizes[i]! > 0) enc.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, offsets[i]!, sizes[i]!);
    });
    device.queue.submit([enc.finish()]);
    await awaitGpu(device, staging.mapAsync(GPUMapMode.READ));
    const mapped = staging.getMappedRange();
    return sizes.map((size, i) => mapped.slice(offsets[i]!, offsets[i]! + size));
  } finally {
    staging.destroy();
  }
}

/**
 * Buffers that live for one submit (uniforms, uploads). Destroying them right after `submit` is
 * allowed: WebGPU keeps a destroyed buffer alive for work already submitted.
 */
export class TransientBuffers {
  readonly #buffers: GPUBuffer[] = [];
  constructor(private readonly device: GPUDevice) {}

  from(data: ArrayBufferView, usage: number, label?: string): GPUBuffer {
    const b = createBufferFrom(this.device, data, usage, label);
    this.#buffers.push(b);
    return b;
  }

  uniform(data: ArrayBufferView, label?: string): GPUBuffer {
    return this.from(data, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label);
  }

  create(size: number, usage: number, label?: string): GPUBuffer {
    const b = this.device.createBuffer({ size: Math.max(4, Math.ceil(size / 4) * 4), usage, label });
    this.#buffers.push(b);
    return b;
  }

  destroyAll(): void {
    for (const b of this.#buffers.splice(0)) b.destroy();
  }
}

// ---- Packed layers on the GPU ----

/**
 * One packed layer on the GPU in the layout of src/gpu/packed-layout.ts: `words` (core's packed
 * words from element `wordStart`), `ranges` (vec2<u32>: min and max as f32 bits) and `chan` (u16
 * original channel per packed position, two per u32), both from packed position `tableStart`.
 * Kernels derive widths and word offsets from `groups` (core's (bits, start, end)*, a CPU copy
 * for the dispatchers) and the step from (min, max, bits).
 */
export interface PackedLayerBindings {
  readonly outChannels: number;
  readonly rowLength: number;
  readonly groups: Uint32Array;
  readonly words: GPUBufferBinding;
  readonly wordStart: number;
  readonly ranges: GPUBufferBinding;
  readonly chan: GPUBufferBinding;
  readonly tableStart: number;
}

export interface UploadedPackedLayer {
  readonly bindings: PackedLayerBindings;
  destroy(): void;
}

const f32Bits = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0]!;

/**
 * Uploads a layer packed on the CPU (core's packLayer / packQuantized) into one buffer with
 * aligned sections. The GPU layout keeps no step per channel, so every scale must be core's
 * channelScale(zero, max, bits), as packLayer makes it (0 for an off channel, whose zero and max
 * validatePackedLayer holds at +0), and min / max must not be -0 (core normalises them): anything
 * else is refused with LayerLayoutError.
 */
export function uploadPackedLayer(device: GPUDevice, packed: PackedLayer): UploadedPackedLayer {
  validatePackedLayer(packed);
  const n = packed.outChannels;
  const ranges = new Uint32Array(2 * n);
  const chan = new Uint16Array(2 * Math.ceil(n / 2));
  for (let p = 0; p < n; p++) {
    const zero = packed.zero[p]!;
    const max = packed.max[p]!;
    if (Object.is(zero, -0) || Object.is(max, -0)) throw new LayerLayoutError(`packed position ${p}: min or max is -0`);
    const bits = packed.meta[p * META_STRIDE + META_BITS]!;
    const expected = bits === OFF_BITS ? 0 : channelScale(zero, max, bits);
    if (f32Bits(packed.scale[p]!) !== f32Bits(expected)) {
      throw new LayerLayoutError(`packed position ${p}: scale ${packed.scale[p]} is not channelScale(${zero}, ${max}, ${bits}) = ${expected}`);
    }
    ranges[2 * p] = f32Bits(zero);
    ranges[2 * p + 1] = f32Bits(max);
    chan[p] = packed.meta[p * META_STRIDE + META_CHANNEL]!;
  }
  const parts = [packed.words, ranges, chan] as const;
  const offsets: number[] = [];
  let size = 0;
  for (const part of parts) {
    offsets.push(size);
    size = Math.ceil((size + Math.max(4, part.byteLength)) / BINDING_ALIGN_BYTES) * BINDING_ALIGN_BYTES;
  }
  const buffer = device.createBuffer({ label: 'packed layer', size, usage: storageUsage(), mappedAtCreation: true });
  const bytes = new Uint8Array(buffer.getMappedRange());
  parts.forEach((part, i) => bytes.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), offsets[i]));
  buffer.unmap();
  const range = (i: number): GPUBufferBinding => ({ buffer, offset: offsets[i]!, size: Math.max(4, parts[i]!.byteLength) });
  return {
    bindings: {
      outChannels: n,
      rowLength: packed.rowLength,
      groups: packed.groups.slice(),
      words: range(0),
      wordStart: 0,
      ranges: range(1),
      chan: range(2),
      tableStart: 0,
    },
    destroy: () => buffer.destroy(),
  };
}
