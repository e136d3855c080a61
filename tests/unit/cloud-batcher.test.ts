import { describe, expect, it } from 'vitest';
import { MicroBatcher } from '../../src/cloud/batcher.ts';
import type { ItemResult } from '../../src/cloud/batcher.ts';

function recorder(fail?: (x: number) => boolean) {
  const batches: number[][] = [];
  const run = (items: number[]): ItemResult<number>[] => {
    batches.push([...items]);
    return items.map((x) => (fail?.(x) ? { ok: false, error: new Error(`bad ${x}`) } : { ok: true, value: x * 10 }));
  };
  return { batches, run };
}

describe('MicroBatcher', () => {
  it('collects items submitted within the window into one batch', async () => {
    const { batches, run } = recorder();
    const sizes: number[] = [];
    const b = new MicroBatcher(run, { windowMs: 20, maxBatch: 100, onBatch: (n) => sizes.push(n) });
    const answers = await Promise.all([1, 2, 3, 4].map((x) => b.submit(x)));
    expect(answers).toEqual([10, 20, 30, 40]);
    expect(batches).toEqual([[1, 2, 3, 4]]);
    expect(sizes).toEqual([4]);
  });

  it('runs at once when maxBatch items are queued, without waiting for the window', async () => {
    const { batches, run } = recorder();
    const b = new MicroBatcher(run, { windowMs: 60_000, maxBatch: 3 });
    const started = Date.now();
    const answers = await Promise.all([1, 2, 3].map((x) => b.submit(x)));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(answers).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(b.pending).toBe(0);
  });

  it('with windowMs 0 batches what one event-loop turn submitted', async () => {
    const { batches, run } = recorder();
    const b = new MicroBatcher(run, { windowMs: 0, maxBatch: 10 });
    const first = Promise.all([b.submit(1), b.submit(2)]);
    await first;
    await b.submit(3);
    expect(batches).toEqual([[1, 2], [3]]);
  });

  it('rejects only the items that failed', async () => {
    const { run } = recorder((x) => x === 2);
    const b = new MicroBatcher(run, { windowMs: 5, maxBatch: 10 });
    const settled = await Promise.allSettled([1, 2, 3].map((x) => b.submit(x)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason.message).toBe('bad 2');
  });

  it('rejects the whole batch when the batch function throws or miscounts', async () => {
    const boom = new MicroBatcher<number, number>(() => { throw new Error('boom'); }, { windowMs: 5, maxBatch: 10 });
    const a = await Promise.allSettled([boom.submit(1), boom.submit(2)]);
    expect(a.map((s) => s.status === 'rejected' && s.reason.message)).toEqual(['boom', 'boom']);
    const short = new MicroBatcher<number, number>(() => [{ ok: true, value: 1 }], { windowMs: 5, maxBatch: 10 });
    const b = await Promise.allSettled([short.submit(1), short.submit(2)]);
    expect(b.map((s) => s.status)).toEqual(['rejected', 'rejected']);
  });

  it('flush() runs the queue now instead of at the end of the window', async () => {
    const { batches, run } = recorder();
    const b = new MicroBatcher(run, { windowMs: 60_000, maxBatch: 2 });
    const p = [b.submit(1)];
    expect(b.pending).toBe(1);
    b.flush();
    expect(await p[0]).toBe(10);
    expect(batches).toEqual([[1]]);
  });

  it('validates its options', () => {
    const { run } = recorder();
    expect(() => new MicroBatcher(run, { windowMs: -1, maxBatch: 1 })).toThrow(RangeError);
    expect(() => new MicroBatcher(run, { windowMs: 1, maxBatch: 0 })).toThrow(RangeError);
    expect(() => new MicroBatcher(run, { windowMs: 1, maxBatch: 1, maxInFlight: 0 })).toThrow(RangeError);
  });
});

/** An asynchronous batch function whose batches finish only when the test says so. */
function gated() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const run = (items: number[]): Promise<ItemResult<number>[]> => {
    batches.push([...items]);
    return new Promise((resolve) => gates.push(() => resolve(items.map((x) => ({ ok: true, value: x * 10 })))));
  };
  const turn = () => new Promise((r) => setImmediate(r));
  return { batches, gates, run, turn };
}

describe('MicroBatcher with an asynchronous batch function', () => {
  it('keeps at most maxInFlight batches running; what queues meanwhile goes as one batch the moment one finishes', async () => {
    const { batches, gates, run, turn } = gated();
    const b = new MicroBatcher(run, { windowMs: 0, maxBatch: 10, maxInFlight: 1 });
    const first = b.submit(1);
    await turn();
    expect(batches).toEqual([[1]]);
    expect(b.running).toBe(1);
    // Arrivals while the batch runs queue up (no window of their own) ...
    const later = [2, 3, 4].map((x) => b.submit(x));
    await turn();
    await turn();
    expect(batches).toEqual([[1]]);
    expect(b.pending).toBe(3);
    // ... and leave together, at once, when it finishes.
    gates[0]!();
    expect(await first).toBe(10);
    await turn();
    expect(batches).toEqual([[1], [2, 3, 4]]);
    gates[1]!();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
    expect(b.running).toBe(0);
  });

  it('splits a long queue into maxBatch-sized batches, only as many at once as allowed', async () => {
    const { batches, gates, run, turn } = gated();
    const b = new MicroBatcher(run, { windowMs: 60_000, maxBatch: 2, maxInFlight: 2 });
    const answers = Promise.all([1, 2, 3, 4, 5, 6, 7].map((x) => b.submit(x)));
    await turn();
    expect(batches).toEqual([[1, 2], [3, 4]]);
    expect(b.pending).toBe(3);
    gates[0]!();
    await turn();
    expect(batches).toEqual([[1, 2], [3, 4], [5, 6]]);
    gates[1]!();
    gates[2]!();
    await turn();
    await turn();
    expect(batches).toEqual([[1, 2], [3, 4], [5, 6], [7]]);
    gates[3]!();
    expect(await answers).toEqual([10, 20, 30, 40, 50, 60, 70]);
  });

  it('flush() starts everything queued whatever is in flight (shutdown)', async () => {
    const { batches, gates, run, turn } = gated();
    const b = new MicroBatcher(run, { windowMs: 60_000, maxBatch: 2, maxInFlight: 1 });
    const answers = Promise.all([1, 2, 3, 4, 5].map((x) => b.submit(x)));
    await turn();
    expect(batches).toEqual([[1, 2]]);
    b.flush();
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    expect(b.pending).toBe(0);
    for (const g of gates) g();
    expect(await answers).toEqual([10, 20, 30, 40, 50]);
  });

  it('rejects every item of a batch whose promise rejects, and goes on with the next batch', async () => {
    let calls = 0;
    const b = new MicroBatcher<number, number>(
      async (items) => {
        if (calls++ === 0) throw new Error('worker died');
        return items.map((x) => ({ ok: true, value: x }));
      },
      { windowMs: 1, maxBatch: 10, maxInFlight: 1 },
    );
    const first = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(first.map((s) => s.status === 'rejected' && s.reason.message)).toEqual(['worker died', 'worker died']);
    expect(await b.submit(3)).toBe(3);
    expect(b.running).toBe(0);
  });
});
