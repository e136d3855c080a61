/**
 * Which code trained a run: the git commit of the checkout it ran in, and whether tracked source
 * files differed from it. A reproduction takes days on this machine and the code moves under it,
 * so every training.json records this and the results file counts runs per commit.
 */
import { execFileSync } from 'node:child_process';

export interface CodeRevision {
  readonly commit: string;
  /** Tracked files other than results/ (which `reproduce` rewrites itself) differ from the commit. */
  readonly dirty: boolean;
}

/** The revision of the git checkout at `dir`, or null outside one (or without git). */
export function codeRevision(dir = process.cwd()): CodeRevision | null {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const commit = git('rev-parse', 'HEAD');
    const changed = git('status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)results');
    return { commit, dirty: changed !== '' };
  } catch {
    return null;
  }
}
