import { describe, expect, it } from 'vitest';
import { runQueue } from '../../src/model/reproduce/queue.ts';

const tick = () => new Promise<void>((r) => setTimeout(r, 5));

describe('runQueue', () => {
  it('runs at most `jobs` at once and starts a run only when it is ready', async () => {
    const done = new Set<string>();
    const log: string[] = [];
    let active = 0;
    let peak = 0;
    // b-pre needs b; a and b and c are free.
    const ready = (r: string) => r !== 'b-pre' || done.has('b');
    await runQueue(['b', 'b-pre', 'a', 'c'], 2, ready, async (r) => {
      log.push(`start ${r}`);
      peak = Math.max(peak, ++active);
      await tick();
      active--;
      done.add(r);
    });
    expect(peak).toBe(2);
    expect(done.size).toBe(4);
    expect(log.indexOf('start b-pre')).toBeGreaterThan(log.indexOf('start a'));
    expect(log.slice(0, 2)).toEqual(['start b', 'start a']);
  });

  it('starts nothing after a failure and throws it once the running runs end', async () => {
    const started: string[] = [];
    const finished: string[] = [];
    const run = runQueue(['x', 'y', 'z'], 2, () => true, async (r) => {
      started.push(r);
      await tick();
      if (r === 'x') throw new Error('x broke');
      await tick();
      finished.push(r);
    });
    await expect(run).rejects.toThrow('x broke');
    expect(started).toEqual(['x', 'y']);
    expect(finished).toEqual(['y']);
  });

  it('refuses runs that can never start, and a bad job count', async () => {
    await expect(runQueue(['p'], 1, () => false, async () => {})).rejects.toThrow(/never became ready/);
    await expect(runQueue(['p'], 0, () => true, async () => {})).rejects.toThrow(RangeError);
  });
});
