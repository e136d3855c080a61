/**
 * Load time and memory of the strategy server's models, one model at a time, in a fresh Node
 * process (`node --expose-gc`) that does nothing else: what `loadServedModel` (the server's
 * start-up, src/cloud/artifacts.ts) costs per model directory.
 *
 * Per directory, in order: the directory's files are written back and dropped from the page
 * cache (`dd iflag=nocache count=0`, Linux; `resident_bytes_before_load` says what was left),
 * garbage is collected, the peak-RSS mark is reset (/proc/self/clear_refs), the model is loaded
 * (wall time), garbage is collected again and the process's memory compared with before. Every
 * loaded model stays referenced, so the deltas are what the server keeps per model (on its main
 * thread: each compute worker holds one more copy of the hypernet, see bench-server.ts's
 * server RSS figures). `retained` splits what the model object holds by kind.
 *
 * Run by bench-server.ts as a child process: `node --expose-gc --import tsx
 * tools/bench/server-load-probe.ts <dir>...`; prints one JSON array.
 */
import { spawnSync } from 'node:child_process';
import { openSync, closeSync, fdatasyncSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadServedModel } from '../../src/cloud/artifacts.ts';
import type { ServedModel } from '../../src/cloud/artifacts.ts';

const MIB = 1024 * 1024;
const mib = (bytes: number) => Math.round((bytes / MIB) * 100) / 100;

export interface LoadProbe {
  modelId: string;
  /** Bytes of the directory's files on disk. */
  disk_bytes: number;
  /** Page-cache bytes of those files still resident when the load began (0 = a cold read). */
  resident_bytes_before_load: number | null;
  load_ms: number;
  /** CPU time of this process during the load (all threads): less distorted by other load than load_ms. */
  load_cpu_ms: number;
  /** After load and GC, against before: what this process keeps for the model. */
  rss_delta_mib: number;
  heap_used_delta_mib: number;
  /** Memory outside the V8 heap (Buffers, typed arrays' backing stores). */
  external_delta_mib: number;
  /** Highest RSS during the load, above the RSS before it (transient allocations included). */
  peak_rss_over_start_mib: number | null;
  retained: {
    /** Bytes of the files served from memory to pages, by name. */
    served_files: Record<string, number>;
    served_files_total: number;
    /** The hypernet tensors (float32) the compute is built from (kept to start compute workers). */
    hypernet_tensor_bytes: number;
    /**
     * The strategy compute's own memory beyond those tensors: the hypernet's weights as its kernel
     * lays them out (f64, in wasm memory), output buffers and scratch. Each compute worker holds
     * one more compute.
     */
    compute_bytes: number;
    /** Frozen per-channel ranges (T's input). */
    frozen_range_bytes: number;
  };
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with node --expose-gc');
  g();
  g();
}

/** Writes back and drops the page cache of every file in `dir`; returns the bytes still resident (null without fincore). */
function evict(dir: string): number | null {
  const files = readdirSync(dir).map((f) => join(dir, f));
  for (const f of files) {
    const fd = openSync(f, 'r');
    try {
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
  }
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', ...files], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .reduce((s, line) => s + Number(line.trim()), 0);
}

function diskBytes(dir: string): number {
  return readdirSync(dir).reduce((s, f) => s + readFileSync(join(dir, f)).byteLength, 0);
}

/** Resets the process's peak-RSS mark (VmHWM); false where the kernel does not allow it. */
function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function peakRss(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Distinct ArrayBuffers reachable from `root` (own properties, array elements, Map/Set entries). */
function buffersOf(root: unknown): Set<ArrayBufferLike> {
  const seen = new Set<unknown>();
  const out = new Set<ArrayBufferLike>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x !== 'object' || x === null || seen.has(x)) continue;
    seen.add(x);
    if (ArrayBuffer.isView(x)) out.add(x.buffer);
    else if (x instanceof ArrayBuffer) out.add(x);
    else if (x instanceof Map) for (const [k, v] of x) stack.push(k, v);
    else if (x instanceof Set) for (const v of x) stack.push(v);
    else stack.push(...Object.values(x));
  }
  return out;
}

function retained(model: ServedModel): LoadProbe['retained'] {
  const served: Record<string, number> = {};
  for (const [name, f] of model.files) served[name] = f.bytes.byteLength;
  let hyper = 0;
  for (const t of model.computeSpec.hypernetTensors.values()) hyper += t.data.byteLength;
  return {
    served_files: served,
    served_files_total: Object.values(served).reduce((a, b) => a + b, 0),
    hypernet_tensor_bytes: hyper,
    compute_bytes: (() => {
      const spec = buffersOf(model.computeSpec.hypernetTensors);
      let n = 0;
      for (const b of buffersOf(model.compute)) if (!spec.has(b)) n += b.byteLength;
      return n;
    })(),
    frozen_range_bytes: model.frozen.reduce((s, f) => s + f.ranges.byteLength, 0),
  };
}

export async function probeLoads(dirs: readonly string[]): Promise<LoadProbe[]> {
  const keep: ServedModel[] = [];
  const out: LoadProbe[] = [];
  for (const dir of dirs) {
    const disk = diskBytes(dir);
    const resident = evict(dir);
    gc();
    const before = process.memoryUsage();
    const peakReset = resetPeak();
    const t = performance.now();
    const cpu = process.cpuUsage();
    const model = await loadServedModel(dir);
    const loadMs = performance.now() - t;
    const used = process.cpuUsage(cpu);
    const peak = peakReset ? peakRss() : undefined;
    keep.push(model);
    await new Promise((r) => setImmediate(r));
    gc();
    const after = process.memoryUsage();
    out.push({
      modelId: model.modelId,
      disk_bytes: disk,
      resident_bytes_before_load: resident,
      load_ms: Math.round(loadMs * 10) / 10,
      load_cpu_ms: Math.round((used.user + used.system) / 100) / 10,
      rss_delta_mib: mib(after.rss - before.rss),
      heap_used_delta_mib: mib(after.heapUsed - before.heapUsed),
      external_delta_mib: mib(after.external - before.external),
      peak_rss_over_start_mib: peak === undefined ? null : mib(peak - before.rss),
      retained: retained(model),
    });
  }
  return out;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  console.log(JSON.stringify(await probeLoads(process.argv.slice(2))));
}
