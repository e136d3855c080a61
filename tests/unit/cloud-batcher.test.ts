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
  });
});
