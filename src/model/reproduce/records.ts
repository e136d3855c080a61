/**
 * Finished reproduce runs as the repository keeps them: per run, its training.json and the sidecars
 * of its diagnostics (diagnostics.ts), without the weights, in results/runs/<dataset>/<key>.json.gz.
 *
 * A run's artifact lives in .cache/, which a fresh checkout does not have, and a full table takes
 * more machine time than one session has. With the records committed, a later checkout still has
 * every finished run's metrics, per-user ranks and control evaluations: `reproduce` counts a
 * recorded run as finished (while the plan still gives it the settings it trained with), builds
 * the report from records and cached runs alike, and trains only what neither has. A record is
 * written, or rewritten where it changed, for every finished run of the cache each time the report
 * is. A record has no weights, with one exception: a Base's record comes with the weights its
 * frozen-pretrained runs freeze (the checkpoint's best.json and best.bin, as they are, in
 * <key>.best.json and <key>.best.bin beside it), which reproduce puts back into the cache before
 * such a run trains, so every frozen-pretrained run of a seed freezes the same Base in every checkout.
 *
 *   format: chord-run-record, version 1
 *   { format, version, key, artifactHash, training, sidecars: { <sidecar file name>: <sidecar> } }
 *   gzip (no timestamp, so equal records are equal bytes)
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ChordTrainError } from '../chord/errors.ts';
import { artifactHash } from './diagnostics.ts';
import type { FinishedRun, RecordedSidecar, Training } from './plan.ts';

export interface RunRecord {
  format: 'chord-run-record';
  version: 1;
  key: string;
  /** SHA-256 of the artifact the run trained (diagnostics.ts artifactHash): every sidecar here was computed from it. */
  artifactHash: string;
  training: Training;
  /** The run's diagnostics by sidecar file name, as diagnostics.ts writes them. */
  sidecars: Record<string, RecordedSidecar>;
}

/** A record file that is not one (CHORD_BAD_RUN_RECORD): its path and what is wrong, so a damaged file is named, never skipped. */
function badRecord(file: string, why: string): ChordTrainError {
  return new ChordTrainError('CHORD_BAD_RUN_RECORD', `${file}: not a readable run record (${why})`);
}

const SUFFIX = '.json.gz';

/**
 * Writes `value` to `file` as gzipped JSON (no timestamp, so equal values are equal bytes) unless the
 * file holds those bytes already; true when it wrote.
 */
export function writeRecordFile(file: string, value: unknown): boolean {
  mkdirSync(dirname(file), { recursive: true });
  return writeIfChanged(file, gzipSync(`${JSON.stringify(value)}\n`));
}

/**
 * Writes `bytes` to `file` (dated `mtime` where given) unless it holds them already; true when it
 * wrote. Another process may be reading the file: equal bytes stay untouched, new ones arrive whole,
 * through a temporary file of this process's own renamed over it.
 */
function writeIfChanged(file: string, bytes: Uint8Array, mtime?: number): boolean {
  if (existsSync(file) && readFileSync(file).equals(bytes)) {
    if (mtime !== undefined && statSync(file).mtimeMs !== mtime) utimesSync(file, mtime, mtime);
    return false;
  }
  const temp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  try {
    writeFileSync(temp, bytes);
    if (mtime !== undefined) utimesSync(temp, mtime, mtime);
    renameSync(temp, file);
  } finally {
    rmSync(temp, { force: true });
  }
  return true;
}

/** The file of record `key` in `dir`. */
export function recordFile(dir: string, key: string): string {
  return join(dir, `${key}${SUFFIX}`);
}

/**
 * Every record file in `dir` by key (none where it does not exist), each checked to be `format`
 * version 1 of its own key and then by `problem` (what is wrong with it, or undefined); a damaged
 * file throws CHORD_BAD_RUN_RECORD naming it, never skipped.
 */
export function readRecords<R extends { format: string; version: number; key: string }>(
  dir: string,
  format: R['format'],
  problem: (record: R) => string | undefined,
): Map<string, R> {
  const out = new Map<string, R>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith(SUFFIX)) continue;
    const key = name.slice(0, -SUFFIX.length);
    const file = recordFile(dir, key);
    let record: R;
    try {
      record = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as R;
    } catch (error) {
      throw badRecord(file, (error as Error).message);
    }
    if (record?.format !== format || record.version !== 1) throw badRecord(file, `format ${String(record?.format)} version ${String(record?.version)}`);
    if (record.key !== key) throw badRecord(file, `it records ${record.key}`);
    const why = problem(record);
    if (why) throw badRecord(file, why);
    out.set(key, record);
  }
  return out;
}

/** Where a dataset's records live under a results folder. */
export function recordsDir(resultsDir: string, dataset: string): string {
  return join(resultsDir, 'runs', dataset);
}

/** The sidecars of `key` in `diagnosticsDir` computed from the artifact of `hash` (`<key>.json` and `<key>.<name>.json`). */
function sidecarsOf(key: string, hash: string, diagnosticsDir: string): Record<string, RecordedSidecar> {
  if (!existsSync(diagnosticsDir)) return {};
  const out: Record<string, RecordedSidecar> = {};
  for (const name of readdirSync(diagnosticsDir).sort()) {
    if (!name.endsWith('.json') || !(name === `${key}.json` || name.startsWith(`${key}.`))) continue;
    const sidecar = JSON.parse(readFileSync(join(diagnosticsDir, name), 'utf8')) as RecordedSidecar;
    if (sidecar.artifactHash === hash) out[name] = sidecar;
  }
  return out;
}

/** The record of a finished run of the cache (one with its artifact). */
export function runRecord(key: string, run: FinishedRun, diagnosticsDir: string): RunRecord {
  if (!run.artifactDir) throw new Error(`${key}: a record is made from a run with its artifact`);
  const hash = artifactHash(run.artifactDir);
  return { format: 'chord-run-record', version: 1, key, artifactHash: hash, training: run.training, sidecars: sidecarsOf(key, hash, diagnosticsDir) };
}

/**
 * Writes the record of every finished run that has its artifact (a Base's with its weights), where
 * a file is missing or differs; returns the keys written. Runs that are records already are left as they are.
 */
export function writeRunRecords(finished: ReadonlyMap<string, FinishedRun>, diagnosticsDir: string, dir: string): string[] {
  const written: string[] = [];
  for (const [key, run] of finished) {
    if (!run.artifactDir) continue;
    const wrote = writeRecordFile(recordFile(dir, key), runRecord(key, run, diagnosticsDir));
    if (recordBaseWeights(key, run, dir) || wrote) written.push(key);
  }
  return written;
}

/** The tensor set a frozen-pretrained run freezes (chord/run.ts loadPretrained): the Base's best checkpoint. */
const BASE_WEIGHTS = ['best.json', 'best.bin'] as const;

/** Keeps a finished Base's best checkpoint beside its record (the run folder is the artifact's parent); true when it wrote. */
function recordBaseWeights(key: string, run: FinishedRun, dir: string): boolean {
  if (run.spec.method !== 'base' || !run.artifactDir) return false;
  const checkpoint = join(dirname(run.artifactDir), 'checkpoint');
  if (!BASE_WEIGHTS.every((f) => existsSync(join(checkpoint, f)))) return false;
  mkdirSync(dir, { recursive: true });
  return BASE_WEIGHTS.map((f) => writeIfChanged(join(dir, `${key}.${f}`), readFileSync(join(checkpoint, f)))).some(Boolean);
}

/**
 * Puts a recorded Base's weights back where a frozen-pretrained run reads them
 * (<runDir>/checkpoint/best.json|bin); false when its record has none. They are dated to the epoch:
 * a run already trained from this Base must not look older than it (plan.ts staleReason).
 */
export function restoreBaseWeights(dir: string, key: string, runDir: string): boolean {
  const kept = BASE_WEIGHTS.map((f) => join(dir, `${key}.${f}`));
  if (!kept.every((f) => existsSync(f))) return false;
  const checkpoint = join(runDir, 'checkpoint');
  mkdirSync(checkpoint, { recursive: true });
  // Another invocation's run may be reading these files right now (writeIfChanged); each file is replaced on its
  // own, so a reader between the two renames sees a new best.json with the old best.bin.
  BASE_WEIGHTS.forEach((f, i) => writeIfChanged(join(checkpoint, f), readFileSync(kept[i]!), 0));
  return true;
}

/** Every record in `dir` by key (none where the folder does not exist); a damaged file throws CHORD_BAD_RUN_RECORD. */
export function readRunRecords(dir: string): Map<string, RunRecord> {
  return readRecords<RunRecord>(dir, 'chord-run-record', (record) =>
    typeof record.artifactHash !== 'string' || !record.training?.metrics?.test || typeof record.sidecars !== 'object' || record.sidecars === null
      ? 'no artifact hash, test metrics or sidecars'
      : undefined,
  );
}
