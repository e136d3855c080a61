/**
 * reproduce's run queue: tfjs-wasm trains on one thread, so a machine with N cores is kept busy by
 * N runs at once rather than by threads inside one run.
 */

/**
 * Starts `runs` in order, at most `jobs` at a time, each as soon as `ready(run)` holds (a
 * frozen-pretrained run waits for its Base). After a failure no run starts; the first failure is
 * thrown once the running ones have ended. A run that can never become ready is an error.
 */
export async function runQueue<R>(runs: readonly R[], jobs: number, ready: (run: R) => boolean, start: (run: R) => Promise<void>): Promise<void> {
  if (!Number.isInteger(jobs) || jobs < 1) throw new RangeError(`jobs ${jobs} must be a positive integer`);
  const pending = [...runs];
  const running = new Set<Promise<void>>();
  let failed = false;
  let failure: unknown;
  for (;;) {
    while (!failed && running.size < jobs) {
      const i = pending.findIndex(ready);
      if (i < 0) break;
      const [run] = pending.splice(i, 1);
      const p: Promise<void> = start(run!)
        .catch((e: unknown) => {
          if (!failed) failure = e;
          failed = true;
        })
        .finally(() => running.delete(p));
      running.add(p);
    }
    if (running.size === 0) break;
    await Promise.race(running);
  }
  if (failed) throw failure;
  if (pending.length > 0) throw new Error(`${pending.length} runs never became ready to start`);
}
