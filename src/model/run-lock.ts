/**
 * One training process per run folder. `train --resume` continues whatever checkpoint the folder
 * holds, so two processes on one folder (two `reproduce` invocations selecting the same run, or a
 * run started again while it trains) would write each other's checkpoints and artifact. The lock is
 * proper-lockfile's: a folder `<out>/train.lock` whose time the holder refreshes; it is removed when
 * the process exits, and one left by a killed process counts as free once it is older than STALE_MS.
 */
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { ChordTrainError } from './chord/errors.ts';

/**
 * Long enough that a holder busy in one synchronous stretch (a full-catalogue evaluation on a large
 * set takes minutes) or paused (kill -STOP) does not lose its lock to a second process.
 */
const STALE_MS = 10 * 60_000;
const UPDATE_MS = 30_000;

/** Where the lock of run folder `out` lives. */
export function runLockPath(out: string): string {
  return join(out, 'train.lock');
}

/**
 * Takes the lock of run folder `out` (which must exist) and returns its release; a folder another
 * live process holds is CHORD_RUN_BUSY. `warn` hears when the lock was lost while held (the holder
 * stalled past STALE_MS): training goes on, as nothing it has written is wrong, and the release
 * then does nothing.
 */
export async function lockRun(out: string, warn: (line: string) => void = (line) => console.error(line)): Promise<() => Promise<void>> {
  const lockfilePath = runLockPath(out);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(out, {
      lockfilePath,
      realpath: false,
      stale: STALE_MS,
      update: UPDATE_MS,
      onCompromised: (e) => warn(`warning: the lock ${lockfilePath} was lost while training (${e.message}); another process may now train into ${out}`),
    });
  } catch (e) {
    if ((e as { code?: string }).code !== 'ELOCKED') throw e;
    throw new ChordTrainError(
      'CHORD_RUN_BUSY',
      `${out} is being trained by another process (${lockfilePath} is held). Wait for it to end; a lock left by a process that was killed frees itself after ${STALE_MS / 60_000} minutes.`,
    );
  }
  // A lock lost while held (warned about above) has nothing left to release: the run's own outcome stands.
  return () =>
    release().catch((e: unknown) => {
      const code = (e as { code?: string }).code;
      if (code !== 'ERELEASED' && code !== 'ENOTACQUIRED') throw e;
    });
}
