/**
 * Deployment evaluation split over worker threads (`train --workers N`'s final evaluation, the
 * strategy study's rankings): each user's ranking through the deployment path is independent of
 * every other user's, so the users are dealt out by history length (each part gets the set's
 * spread of lengths) and each thread ranks its part on its own copy of the deployment; this thread
 * ranks part 0. The parts merge in user order, so the metrics and ranks equal one thread's exactly.
 *
 * DeployOptions' per-user functions cannot cross threads: strategyUser and strategyHistory are
 * resolved here for the users of each part and sent as arrays; a strategyControl crosses by name
 * (NamedControl), and one given as a function is refused.
 *
 * Messages (this thread → worker; the worker answers each `rank` with one `rows` or `error`):
 *   init  in workerData: the deployment without its Hypernet object (rebuilt from the artifact)
 *   rank  the set, the part's users, the options with per-user arrays
 */
import type { UserRanks } from '../evaluate.ts';
import { usersWithTarget } from '../evaluate.ts';
import type { HistorySet } from './data.ts';
import {
  mergeDeploymentRows,
  portableDeployment,
  rankDeploymentRows,
  type DeployedEval,
  type Deployment,
  type DeploymentRows,
  type DeployOptions,
  type NamedControl,
} from './deployed.ts';
import { ChordTrainError } from './errors.ts';
import { RequestWorker } from './worker-thread.ts';

/** DeployOptions for the users of one part, its per-user functions as arrays (structured-cloneable). */
export interface PartOptions {
  readonly gruWindow: number;
  readonly budget?: number;
  readonly activationBits?: number;
  /** Per user of the part (same order): whose history the strategy comes from. */
  readonly strategyUsers?: Int32Array;
  /** Per user of the part (same order): the clicks the strategy comes from. */
  readonly strategyHistories?: readonly Int32Array[];
  readonly strategyControl?: NamedControl;
}

export interface RankRequest {
  readonly type: 'rank';
  readonly set: HistorySet;
  readonly users: Int32Array;
  readonly options: PartOptions;
}

export interface RowsReply extends DeploymentRows {
  readonly type: 'rows';
}

/** `users` dealt out into `parts` parts by history length: part k gets the k-th, (k + parts)-th, … shortest. */
export function dealUsersByLength(set: HistorySet, users: readonly number[], parts: number): number[][] {
  // Stable: equal lengths keep user order.
  const byLength = [...users].sort((a, b) => set.histories[a]!.length - set.histories[b]!.length);
  const out = Array.from({ length: parts }, () => [] as number[]);
  byLength.forEach((u, i) => out[i % parts]!.push(u));
  return out;
}

/** The options of one part: DeployOptions' per-user functions evaluated for its users. */
export function partOptions(opts: DeployOptions, users: readonly number[]): PartOptions {
  const { gruWindow, budget, activationBits, strategyUser, strategyHistory, strategyControl } = opts;
  if (typeof strategyControl === 'function') {
    throw new ChordTrainError('CHORD_BAD_OPTION', 'a strategy control given as a function cannot cross to worker threads: name it (NamedControl) or evaluate on one thread');
  }
  return {
    gruWindow,
    ...(budget === undefined ? {} : { budget }),
    ...(activationBits === undefined ? {} : { activationBits }),
    ...(strategyUser ? { strategyUsers: Int32Array.from(users, (u) => strategyUser(u)) } : {}),
    ...(strategyHistory ? { strategyHistories: users.map((u) => Int32Array.from(strategyHistory(u))) } : {}),
    ...(strategyControl ? { strategyControl } : {}),
  };
}

/** DeployOptions again from a part's options, for the part's users only. */
export function deployOptionsOf(part: PartOptions, users: ArrayLike<number>): DeployOptions {
  const index = new Map(Array.from(users, (u, i) => [u, i]));
  const at = (u: number): number => {
    const i = index.get(u);
    if (i === undefined) throw new ChordTrainError('CHORD_BAD_OPTION', `user ${u} is not in this part`);
    return i;
  };
  const { strategyUsers, strategyHistories } = part;
  return {
    gruWindow: part.gruWindow,
    ...(part.budget === undefined ? {} : { budget: part.budget }),
    ...(part.activationBits === undefined ? {} : { activationBits: part.activationBits }),
    ...(strategyUsers ? { strategyUser: (u: number) => strategyUsers[at(u)]! } : {}),
    ...(strategyHistories ? { strategyHistory: (u: number) => strategyHistories[at(u)]! } : {}),
    ...(part.strategyControl ? { strategyControl: part.strategyControl } : {}),
  };
}

const WORKER_URL = new URL('./deploy-worker.ts', import.meta.url);

/** This thread plus `count − 1` worker threads, each with a copy of one deployment. */
export class DeploymentWorkers {
  private constructor(
    private readonly dep: Deployment,
    private readonly workers: readonly RequestWorker<RowsReply>[],
  ) {}

  /** Starts `count − 1` worker threads (count ≥ 1; 1 ranks on this thread alone) for `dep`. */
  static start(dep: Deployment, count: number): DeploymentWorkers {
    if (!Number.isInteger(count) || count < 1) throw new ChordTrainError('CHORD_BAD_OPTION', `evaluation workers must be a positive integer, got ${count}`);
    const data = count > 1 ? portableDeployment(dep) : undefined;
    const workers = Array.from({ length: count - 1 }, () => new RequestWorker<RowsReply>(WORKER_URL, data, 'evaluation worker'));
    return new DeploymentWorkers(dep, workers);
  }

  get count(): number {
    return this.workers.length + 1;
  }

  /** evaluateAndRankDeployment(dep, set, opts), its users split over the threads. */
  async evaluateAndRank(set: HistorySet, opts: DeployOptions): Promise<{ result: DeployedEval; ranks: UserRanks }> {
    const [mine, ...theirs] = dealUsersByLength(set, usersWithTarget(set), this.count);
    // Every part's options before any thread starts, so a refused option fails first.
    const options = theirs.map((users) => partOptions(opts, users));
    if (typeof opts.strategyControl === 'function') partOptions(opts, []);
    const replies = this.workers.map((w, i) =>
      w.request({ type: 'rank', set, users: Int32Array.from(theirs[i]!), options: options[i]! } satisfies RankRequest),
    );
    // Settled before this thread's part can throw, so no reply is left unhandled.
    const settled = Promise.allSettled(replies);
    let own: DeploymentRows;
    try {
      own = rankDeploymentRows(this.dep, set, opts, mine!);
    } finally {
      await settled;
    }
    const rows = await Promise.all(replies);
    return mergeDeploymentRows([own, ...rows]);
  }

  async evaluate(set: HistorySet, opts: DeployOptions): Promise<DeployedEval> {
    return (await this.evaluateAndRank(set, opts)).result;
  }

  async rank(set: HistorySet, opts: DeployOptions): Promise<UserRanks> {
    return (await this.evaluateAndRank(set, opts)).ranks;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

/** Runs `f` with `dep`'s evaluations split over `count` threads (1: this one alone), the threads closed after. */
export async function withDeploymentWorkers<T>(dep: Deployment, count: number, f: (threads: DeploymentWorkers) => Promise<T>): Promise<T> {
  const threads = DeploymentWorkers.start(dep, count);
  try {
    return await f(threads);
  } finally {
    await threads.close();
  }
}
