/**
 * The two hot loops of the batched hypernet as WebAssembly SIMD (f64x2), assembled here byte by
 * byte (no toolchain, no binary file in the repo).
 *
 * Exactness: wasm has no implicit fused multiply-add, and f64x2.mul / f64x2.add are IEEE double
 * operations lane by lane, so every lane performs exactly the scalar sequence of core's
 * `Hypernet` (bias, then += w·x in ascending order, in a double; float32 rounding where core
 * stores into a Float32Array). The lanes only run independent sums side by side: two batch
 * items per vector in both kernels.
 *
 *   dense(w, b, xt, out, rows, cols, np)
 *     w: f64 [rows, cols]; b: f64 [rows]; xt: f64 [cols, np] (inputs as columns);
 *     out: f64 [rows, np] = float32(b + w·xt), each value rounded to float32 and widened back.
 *     np must be even (DENSE_VECTORS vectors share each weight load; the rest go 2 at a time).
 *   mass2(u, v, out, C, R, np, items)
 *     rank-2 element mass S_j = Σ_k |float32(u_j0·v_k0 + u_j1·v_k1)| of every item, straight
 *     from dense's output layout: u: f64 [2C, np] (row 2j+r = U[j,r]), v: f64 [2R, np];
 *     out: f64 [C, np], columns 0..items-1 (items even, <= np). C must be a multiple of
 *     MASS_CHANNELS_PER_PASS (rows past 2C are read).
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
const i32c = (v: number) => [0x41, ...sleb(v)];
const ADD = [0x6a];
const MUL = [0x6c];
const GE_S = [0x4e];
const SUB = [0x6b];
const f64load = (offset = 0) => [0x2b, 3, ...uleb(offset)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128load = (offset = 0) => [...simd(0x00), 4, ...uleb(offset)];
const v128store = (offset = 0) => [...simd(0x0b), 4, ...uleb(offset)];
const V128_ZERO = [...simd(0x0c), ...new Array<number>(16).fill(0)];
const SPLAT = simd(0x14);
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

/** Vectors (2 inputs each) that share one weight load in dense's main loop. */
export const DENSE_VECTORS = 4;

function denseBody(): number[] {
  // params 0..6: w b xt out rows cols np; i32 locals 7..12: r i c wp xp npBytes;
  // v128 locals 13..: bias, a_0..a_{V-1}, wv
  const V = DENSE_VECTORS;
  const [w, b, xt, out, rows, cols, np] = [0, 1, 2, 3, 4, 5, 6];
  const [r, i, c, wp, xp, npBytes] = [7, 8, 9, 10, 11, 12];
  const bias = 13;
  const a = (k: number) => 14 + k;
  const wv = 14 + V;
  const acc = (k: number) => [
    ...get(a(k)), ...get(wv), ...get(xp), ...v128load(16 * k), ...VMUL, ...VADD, ...set(a(k)),
  ];
  const overCols = (vectors: number) => loop(c, get(cols), 1, [
    ...get(wp), ...f64load(), ...SPLAT, ...set(wv),
    ...Array.from({ length: vectors }, (_, k) => acc(k)).flat(),
    ...get(wp), ...i32c(8), ...ADD, ...set(wp),
    ...get(xp), ...get(npBytes), ...ADD, ...set(xp),
  ]);
  const block = (vectors: number) => [
    ...Array.from({ length: vectors }, (_, k) => [...get(bias), ...set(a(k))]).flat(),
    ...get(w), ...get(r), ...get(cols), ...MUL, ...i32c(8), ...MUL, ...ADD, ...set(wp),
    ...get(xt), ...get(i), ...i32c(8), ...MUL, ...ADD, ...set(xp),
    ...i32c(0), ...set(c),
    ...overCols(vectors),
    // wp is free again: reuse it as the output address out + (r·np + i)·8.
    ...get(out), ...get(r), ...get(np), ...MUL, ...get(i), ...ADD, ...i32c(8), ...MUL, ...ADD, ...set(wp),
    ...Array.from({ length: vectors }, (_, k) => [...get(wp), ...get(a(k)), ...ROUND_F32, ...v128store(16 * k)]).flat(),
  ];
  const body = [
    ...get(np), ...i32c(8), ...MUL, ...set(npBytes),
    ...loop(r, get(rows), 1, [
      ...get(b), ...get(r), ...i32c(8), ...MUL, ...ADD, ...f64load(), ...SPLAT, ...set(bias),
      ...i32c(0), ...set(i),
      // Blocks of 2V inputs, then blocks of 2 for the rest.
      ...loop(i, [...get(np), ...i32c(2 * V - 1), ...SUB], 2 * V, block(V)),
      ...loop(i, get(np), 2, block(1)),
    ]),
    0x0b,
  ];
  return [...vec([[...uleb(6), I32], [...uleb(V + 2), V128]]), ...body];
}

/** Channels per pass of mass2: independent sums that hide each other's add latency. */
export const MASS_CHANNELS_PER_PASS = 4;

function massBody(): number[] {
  // params 0..6: u v out C R np items; i32 locals 7..13: ip j k ub vb npBytes vp;
  // v128 locals 14..: x y, then per channel of the pass A_q B_q s_q
  const [u, v, out, C, R, np, items] = [0, 1, 2, 3, 4, 5, 6];
  const [ip, j, k, ub, vb, npBytes, vp] = [7, 8, 9, 10, 11, 12, 13];
  const [x, y] = [14, 15];
  const Q = MASS_CHANNELS_PER_PASS;
  const A = (q: number) => 16 + 3 * q;
  const B = (q: number) => 17 + 3 * q;
  const S = (q: number) => 18 + 3 * q;
  // Row r of U/V for the current item pair starts at base + r·npBytes; channel j+q uses U rows 2(j+q), 2(j+q)+1.
  const rowAddr = (base: number, rowTimes: number, plus: number) => [
    ...get(base), ...get(rowTimes), ...i32c(2), ...MUL, ...i32c(plus), ...ADD, ...get(npBytes), ...MUL, ...ADD,
  ];
  const perChannel = (q: number) => [
    ...get(S(q)),
    ...get(A(q)), ...get(x), ...VMUL,
    ...get(B(q)), ...get(y), ...VMUL,
    ...VADD, ...ROUND_F32, ...VABS, ...VADD, ...set(S(q)),
  ];
  // vp walks V two rows (one k) at a time: x = row 2k, y = row 2k + 1.
  const overK = [
    ...get(vb), ...set(vp),
    ...loop(k, get(R), 1, [
      ...get(vp), ...v128load(0), ...set(x),
      ...get(vp), ...get(npBytes), ...ADD, ...v128load(0), ...set(y),
      ...Array.from({ length: Q }, (_, q) => perChannel(q)).flat(),
      ...get(vp), ...get(npBytes), ...i32c(2), ...MUL, ...ADD, ...set(vp),
    ]),
  ];
  const setup = Array.from({ length: Q }, (_, q) => [
    ...rowAddr(ub, j, 2 * q), ...v128load(0), ...set(A(q)),
    ...rowAddr(ub, j, 2 * q + 1), ...v128load(0), ...set(B(q)),
    ...V128_ZERO, ...set(S(q)),
  ]).flat();
  // out row j+q, items ip, ip+1: out + ((j+q)·np + ip)·8
  const stores = Array.from({ length: Q }, (_, q) => [
    ...get(out), ...get(j), ...i32c(q), ...ADD, ...get(npBytes), ...MUL, ...ADD, ...get(ip), ...i32c(8), ...MUL, ...ADD,
    ...get(S(q)), ...v128store(0),
  ]).flat();
  const body = [
    ...get(np), ...i32c(8), ...MUL, ...set(npBytes),
    ...loop(ip, get(items), 2, [
      ...get(u), ...get(ip), ...i32c(8), ...MUL, ...ADD, ...set(ub),
      ...get(v), ...get(ip), ...i32c(8), ...MUL, ...ADD, ...set(vb),
      ...i32c(0), ...set(j),
      ...loop(j, get(C), Q, [...setup, ...i32c(0), ...set(k), ...overK, ...stores]),
    ]),
    0x0b,
  ];
  return [...vec([[...uleb(7), I32], [...uleb(2 + 3 * Q), V128]]), ...body];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const denseType = [0x60, ...vec(new Array(7).fill([I32])), ...vec([])];
  const massType = [0x60, ...vec(new Array(7).fill([I32])), ...vec([])];
  const code = (body: number[]) => [...uleb(body.length), ...body];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([denseType, massType])),
    ...section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([[0], [1]])),
    ...section(7, vec([[...name('dense'), 0x00, 0], [...name('mass2'), 0x00, 1]])),
    ...section(10, vec([code(denseBody()), code(massBody())])),
  ]);
}

export interface WasmKernels {
  readonly memory: WebAssembly.Memory;
  dense(w: number, b: number, xt: number, out: number, rows: number, cols: number, np: number): void;
  mass2(u: number, v: number, out: number, C: number, R: number, np: number, items: number): void;
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

export function wasmKernelsAvailable(): boolean {
  return kernelModule() !== null;
}

/** An instance with its own memory of at least `bytes` bytes; null without wasm SIMD. */
export function createWasmKernels(bytes: number): WasmKernels | null {
  const module = kernelModule();
  if (!module) return null;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) + 1 });
  const instance = new WebAssembly.Instance(module, { env: { mem: memory } });
  const e = instance.exports as unknown as Omit<WasmKernels, 'memory'>;
  return { memory, dense: e.dense, mass2: e.mass2 };
}
