/**
 * `Slice`, `Unpack` and `SplitV` for the tfjs 'wasm' backend without its whole-input copy.
 *
 * tfjs-backend-wasm 4.22's Slice starts with `backend.readSync(x)`, a copy of the entire input,
 * whatever the slice's size, and Unpack/SplitV call it once per output. Unstacking a GRU's
 * [20, 512, 32] input projections therefore copied 20 x 1.3 MB (14 ms instead of well under one),
 * and every slice of a large activation paid the same. These kernels copy only the slice, from a
 * view of the wasm heap; the values are the same bytes, so results are bit-identical.
 * Page-safe (no Node imports).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Numeric = Float32Array | Int32Array | Uint8Array;

/**
 * Copies the box `begin` + `size` of `x` (row-major, `shape`) into `out`, in contiguous runs:
 * the trailing axes the box spans fully are merged into one run, the leading ones iterated.
 */
export function copySlice(x: Numeric, shape: readonly number[], begin: readonly number[], size: readonly number[], out: Numeric): void {
  const rank = shape.length;
  if (rank === 0) {
    out.set(x.subarray(0, 1));
    return;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape[i + 1]!;
  // k: the outermost axis of the contiguous run (every axis after it is taken whole).
  let k = rank - 1;
  while (k > 0 && begin[k] === 0 && size[k] === shape[k]) k--;
  const run = size[k]! * strides[k]!;
  if (run === 0) return;
  const index = new Array<number>(k).fill(0);
  let o = 0;
  for (;;) {
    let off = begin[k]! * strides[k]!;
    for (let i = 0; i < k; i++) off += (begin[i]! + index[i]!) * strides[i]!;
    out.set(x.subarray(off, off + run), o);
    o += run;
    let i = k - 1;
    while (i >= 0 && ++index[i]! === size[i]!) index[i--] = 0;
    if (i < 0) return;
  }
}

function sliceKernel(backend: BackendWasm, x: tf.TensorInfo, begin: readonly number[], size: readonly number[]): tf.TensorInfo {
  // makeOutput may grow the wasm heap: both views are taken after it.
  const out = backend.makeOutput([...size], x.dtype);
  copySlice(backend.typedArrayFromHeap(x) as Numeric, x.shape, begin, size, backend.typedArrayFromHeap(out) as Numeric);
  return out;
}

let registered = false;

/**
 * Replaces the three kernels for 'wasm' (string tensors keep the original ones). Idempotent; the
 * wasm backend's own kernels must be registered already (importing the package does that).
 */
export function registerWasmSliceKernels(): void {
  if (registered) return;
  registered = true;
  const replace = (kernelName: string, kernelFunc: (args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }) => tf.TensorInfo | tf.TensorInfo[]) => {
    const original = tf.getKernel(kernelName, 'wasm');
    if (!original) throw new Error(`tfjs-backend-wasm has no ${kernelName} kernel to replace`);
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: (args) => {
        const x = (args.inputs['x'] ?? args.inputs['value']) as tf.TensorInfo;
        return x.dtype === 'string' ? original.kernelFunc(args) : kernelFunc(args);
      },
    });
  };
  replace(tf.Slice, ({ inputs, attrs, backend }) => {
    const x = inputs['x'] as tf.TensorInfo;
    const { begin, size } = attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size) as [number[], number[]];
    return sliceKernel(backend as BackendWasm, x, b, s);
  });
  replace(tf.Unpack, ({ inputs, attrs, backend }) => {
    const value = inputs['value'] as tf.TensorInfo;
    const rank = value.shape.length;
    const axis = ((attrs as unknown as { axis: number }).axis + rank) % rank;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const begin = new Array<number>(rank).fill(0);
    const size = [...value.shape];
    size[axis] = 1;
    return Array.from({ length: value.shape[axis]! }, (_, i) => {
      begin[axis] = i;
      const { dataId, dtype } = sliceKernel(backend as BackendWasm, value, begin, size);
      return { dataId, dtype, shape: outShape };
    });
  });
  replace(tf.SplitV, ({ inputs, attrs, backend }) => {
    const x = inputs['x'] as tf.TensorInfo;
    const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const a = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, a);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[a] = s;
      const out = sliceKernel(backend as BackendWasm, x, begin, size);
      begin[a]! += s;
      return out;
    });
  });
}
