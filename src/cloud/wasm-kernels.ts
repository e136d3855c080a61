/**
 * The two hot loops of the batched hypernet as WebAssembly SIMD (f64x2), assembled here byte by
 * byte (no toolchain, no binary file in the repo).
 *
 * Exactness: wasm has no implicit fused multiply-add, and f64x2.mul / f64x2.add are IEEE double
 * operations lane by lane, so every lane performs exactly the scalar sequence of core's
 * `Hypernet` (bias, then += w·x in ascending order, in a double; float32 rounding where core
 * stores into a Float32Array). The lanes only run independent sums side by side: two batch
 * items per vector in dense, two channels of one item in massSel.
 *
 *   dense(w, b, xt, out, rows, cols, np, rowStride, itemStride)
 *     w: f64 [rows/4, cols, 4] (blocks of DENSE_ROWS rows, interleaved per column: see
 *        tileWeights); b: f64 [rows]; xt: f64 [cols, np] (inputs as columns);
 *     out: the value of (row r, item i) = float32(b[r] + Σ_c w[r,c]·xt[c,i]), widened to f64, is
 *        stored at out + r·rowStride + i·itemStride (byte strides: [rows, np] and [np, rows]
 *        layouts both work).
 *     rows must be a multiple of DENSE_ROWS (pad with zero rows), np even.
 *     Tiles: DENSE_ROWS rows × 2 vectors (4 items) while 4 items remain, then DENSE_ROWS rows ×
 *     1 vector. Several rows per tile keep independent sums in flight even for a batch of one or
 *     two (one row per pass left a single add chain, latency-bound: 0.5 ms for one z).
 *     Measured on the SASRec benchmark heads (5,760 rows × 64): 42 µs per item at 64 items and
 *     79 µs at 2, against 50 and 133 µs for one row × 4 vectors; float32 weights widened on load
 *     (half the bytes) measured slower (62 µs), the extra convert costing more than the cache saves.
 *   massSel(u, v, idx, count, R, out)
 *     rank-2 element mass S_j = Σ_k |float32(u_j0·v_k0 + u_j1·v_k1)| of one item for the
 *     channels listed in idx (i32 [count], count even: an odd list repeats its last channel):
 *     u: f64 [C, 2] (U of the item's layer, item-major), v: f64 [R, 2]; S_j goes to out + 8j.
 *     MASS_PAIRS_PER_PASS channel pairs share each V load, then one pair at a time.
 *     About 0.5 ns per element here, as the earlier two-items-per-vector kernel; per item and
 *     channel list because allocation computes S only for the channels it needs.
 * All pointers are byte offsets into the imported memory `env.mem`.
 */

const I32 = 0x7f;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

// Instructions (https://webassembly.github.io/spec/core/binary/instructions.html).
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const tee = (i: number) => [0x22, ...uleb(i)];
const i32c = (v: number) => [0x41, ...sleb(v)];
const ADD = [0x6a];
const MUL = [0x6c];
const GE_S = [0x4e];
const SUB = [0x6b];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128load = (offset = 0) => [...simd(0x00), 4, ...uleb(offset)];
const load64splat = (offset = 0) => [...simd(0x0a), 3, ...uleb(offset)];
const store64lane = (lane: number) => [...simd(0x5b), 3, 0, lane];
const V128_ZERO = [...simd(0x0c), ...new Array<number>(16).fill(0)];
const DEMOTE = simd(0x5e); // f32x4.demote_f64x2_zero
const PROMOTE = simd(0x5f); // f64x2.promote_low_f32x4
const VABS = simd(0xec);
const VADD = simd(0xf0);
const VMUL = simd(0xf2);
const ROUND_F32 = [...DEMOTE, ...PROMOTE];

/** for (;;) { if (counter >= limit) break; body; counter += step } */
function loop(counter: number, limit: number[], step: number, body: number[]): number[] {
  return [
    0x02, 0x40, 0x03, 0x40,
    ...get(counter), ...limit, ...GE_S, 0x0d, 1,
    ...body,
    ...get(counter), ...i32c(step), ...ADD, ...set(counter),
    0x0c, 0, 0x0b, 0x0b,
  ];
}

/** Rows per dense tile; weight matrices are padded to a multiple of it. */
export const DENSE_ROWS = 4;

function denseBody(): number[] {
  // params 0..8: w b xt out rows cols np rowStride itemStride
  // i32 locals 9..16: r i wp xp npBytes wEnd op t; v128 locals 17..: acc[q][v] (4×2), x0 x1, wv
  const RT = DENSE_ROWS;
  const [w, b, xt, out, rows, cols, np, rowStride, itemStride] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [r, i, wp, xp, npBytes, wEnd, op, t] = [9, 10, 11, 12, 13, 14, 15, 16];
  const acc = (q: number, v: number) => 17 + q * 2 + v;
  const x = (v: number) => 17 + RT * 2 + v;
  const wv = 17 + RT * 2 + 2;
  const tile = (vectors: number) => {
    const init = Array.from({ length: RT }, (_, q) => [
      ...get(b), ...get(r), ...i32c(8), ...MUL, ...ADD, ...load64splat(8 * q), ...set(acc(q, 0)),
      ...(vectors > 1 ? [...get(acc(q, 0)), ...set(acc(q, 1))] : []),
    ]).flat();
    const step = [
      ...Array.from({ length: vectors }, (_, v) => [...get(xp), ...v128load(16 * v), ...set(x(v))]).flat(),
      ...Array.from({ length: RT }, (_, q) => [
        ...get(wp), ...load64splat(8 * q), ...set(wv),
        ...Array.from({ length: vectors }, (_, v) => [...get(acc(q, v)), ...get(wv), ...get(x(v)), ...VMUL, ...VADD, ...set(acc(q, v))]).flat(),
      ]).flat(),
      ...get(xp), ...get(npBytes), ...ADD, ...set(xp),
    ];
    // out + (r+q)·rowStride + (i+2v+lane)·itemStride, built up in op (row) and t (item).
    const stores = Array.from({ length: RT }, (_, q) => [
      ...get(out), ...get(r), ...i32c(q), ...ADD, ...get(rowStride), ...MUL, ...ADD,
      ...get(i), ...get(itemStride), ...MUL, ...ADD, ...set(op),
      ...Array.from({ length: vectors }, (_, v) => [
        ...get(acc(q, v)), ...ROUND_F32, ...set(acc(q, v)),
        ...get(op), ...i32c(2 * v), ...get(itemStride), ...MUL, ...ADD, ...tee(t), ...get(acc(q, v)), ...store64lane(0),
        ...get(t), ...get(itemStride), ...ADD, ...get(acc(q, v)), ...store64lane(1),
      ]).flat(),
    ]).flat();
    return [
      ...init,
      // This row block's weights start at w + r·cols·8 bytes (RT doubles per column).
      ...get(w), ...get(r), ...get(cols), ...MUL, ...i32c(8), ...MUL, ...ADD, ...tee(wp),
      ...get(cols), ...i32c(8 * RT), ...MUL, ...ADD, ...set(wEnd),
      ...get(xt), ...get(i), ...i32c(8), ...MUL, ...ADD, ...set(xp),
      ...loop(wp, get(wEnd), 8 * RT, step),
      ...stores,
    ];
  };
  const body = [
    ...get(np), ...i32c(8), ...MUL, ...set(npBytes),
    ...loop(r, get(rows), RT, [
      ...i32c(0), ...set(i),
      ...loop(i, [...get(np), ...i32c(3), ...SUB], 4, tile(2)),
      ...loop(i, get(np), 2, tile(1)),
    ]),
    0x0b,
  ];
  return [...vec([[...uleb(8), I32], [...uleb(RT * 2 + 3), V128]]), ...body];
}

/** Channel pairs per pass of massSel's main loop. */
export const MASS_PAIRS_PER_PASS = 4;

function massSelBody(): number[] {
  // params 0..5: u v idx count R out; i32 locals 6..: c vp vEnd, a_q b_q (q < Q); v128: x y, A_q B_q S_q
  const [u, v, idx, count, R, out] = [0, 1, 2, 3, 4, 5];
  const Q = MASS_PAIRS_PER_PASS;
  const [c, vp, vEnd] = [6, 7, 8];
  const a = (q: number) => 9 + 2 * q;
  const b = (q: number) => 10 + 2 * q;
  const v0 = 9 + 2 * Q;
  const [x, y] = [v0, v0 + 1];
  const A = (q: number) => v0 + 2 + 3 * q;
  const B = (q: number) => v0 + 3 + 3 * q;
  const S = (q: number) => v0 + 4 + 3 * q;
  const i32load = [0x28, 2, 0];
  const f64load = (offset: number) => [0x2b, 3, ...uleb(offset)];
  const SPLAT = simd(0x14);
  const REPLACE1 = [...simd(0x22), 1];
  // (u[2a + r], u[2b + r]): channel a in lane 0, channel b in lane 1.
  const pairOf = (q: number, r: number) => [
    ...get(u), ...get(a(q)), ...i32c(16), ...MUL, ...ADD, ...f64load(8 * r), ...SPLAT,
    ...get(u), ...get(b(q)), ...i32c(16), ...MUL, ...ADD, ...f64load(8 * r), ...REPLACE1,
  ];
  const pass = (pairs: number) => {
    const setup = Array.from({ length: pairs }, (_, q) => [
      ...get(idx), ...get(c), ...i32c(2 * q), ...ADD, ...i32c(4), ...MUL, ...ADD, ...i32load, ...set(a(q)),
      ...get(idx), ...get(c), ...i32c(2 * q + 1), ...ADD, ...i32c(4), ...MUL, ...ADD, ...i32load, ...set(b(q)),
      ...pairOf(q, 0), ...set(A(q)),
      ...pairOf(q, 1), ...set(B(q)),
      ...V128_ZERO, ...set(S(q)),
    ]).flat();
    const overK = loop(vp, get(vEnd), 16, [
      ...get(vp), ...load64splat(0), ...set(x),
      ...get(vp), ...load64splat(8), ...set(y),
      ...Array.from({ length: pairs }, (_, q) => [
        ...get(S(q)),
        ...get(A(q)), ...get(x), ...VMUL,
        ...get(B(q)), ...get(y), ...VMUL,
        ...VADD, ...ROUND_F32, ...VABS, ...VADD, ...set(S(q)),
      ]).flat(),
    ]);
    const stores = Array.from({ length: pairs }, (_, q) => [
      ...get(out), ...get(a(q)), ...i32c(8), ...MUL, ...ADD, ...get(S(q)), ...store64lane(0),
      ...get(out), ...get(b(q)), ...i32c(8), ...MUL, ...ADD, ...get(S(q)), ...store64lane(1),
    ]).flat();
    return [...setup, ...get(v), ...set(vp), ...overK, ...stores];
  };
  const body = [
    ...get(v), ...get(R), ...i32c(16), ...MUL, ...ADD, ...set(vEnd),
    ...i32c(0), ...set(c),
    ...loop(c, [...get(count), ...i32c(2 * Q - 1), ...SUB], 2 * Q, pass(Q)),
    ...loop(c, get(count), 2, pass(1)),
    0x0b,
  ];
  return [...vec([[...uleb(3 + 2 * Q), I32], [...uleb(2 + 3 * Q), V128]]), ...body];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const nineI32 = [0x60, ...vec(new Array(9).fill([I32])), ...vec([])];
  const sixI32 = [0x60, ...vec(new Array(6).fill([I32])), ...vec([])];
  const code = (body: number[]) => [...uleb(body.length), ...body];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([nineI32, sixI32])),
    ...section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([[0], [1]])),
    ...section(7, vec([[...name('dense'), 0x00, 0], [...name('massSel'), 0x00, 1]])),
    ...section(10, vec([code(denseBody()), code(massSelBody())])),
  ]);
}

/**
 * A [rows, cols] weight matrix in dense's tiled layout, as doubles: rows padded with zeros to a
 * multiple of DENSE_ROWS, then per block of DENSE_ROWS rows, column by column, the block's rows
 * side by side (so one tile reads consecutive values).
 */
export function tileWeights(w: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const padded = Math.ceil(rows / DENSE_ROWS) * DENSE_ROWS;
  const out = new Float64Array(padded * cols);
  for (let r = 0; r < rows; r++) {
    const block = Math.floor(r / DENSE_ROWS) * DENSE_ROWS * cols;
    const q = r % DENSE_ROWS;
    for (let c = 0; c < cols; c++) out[block + c * DENSE_ROWS + q] = w[r * cols + c]!;
  }
  return out;
}

export interface WasmKernels {
  readonly memory: WebAssembly.Memory;
  dense(w: number, b: number, xt: number, out: number, rows: number, cols: number, np: number, rowStride: number, itemStride: number): void;
  massSel(u: number, v: number, idx: number, count: number, R: number, out: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
function kernelModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = moduleBytes();
    compiled = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

/** An instance with its own memory of at least `bytes` bytes; null without wasm SIMD. */
export function createWasmKernels(bytes: number): WasmKernels | null {
  const module = kernelModule();
  if (!module) return null;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) + 1 });
  const instance = new WebAssembly.Instance(module, { env: { mem: memory } });
  const e = instance.exports as unknown as Omit<WasmKernels, 'memory'>;
  return { memory, dense: e.dense, massSel: e.massSel };
}
