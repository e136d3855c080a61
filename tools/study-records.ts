/**
 * The strategy study's finished runs as the repository keeps them, so its report survives a fresh
 * checkout as reproduce's does (src/model/reproduce/records.ts): per run, its training.json and what
 * the report computed from its artifact (the test ranks under the user's own strategy and another
 * user's, the probe, where the users' differences are lost), without weights, in
 * results/runs/<dataset>/study/<key>.json.gz. A Base's record (key <backbone>-base-s<seed>) holds its
 * ranks and those of its post-training 3-bit variants. `npm run study -- --report` writes them from
 * every run it finds in the cache and reads them for every run it does not; `--train` leaves recorded
 * runs alone.
 *
 *   format: chord-study-record, version 1
 *   { format, version, key, trainingHash, training, ranks: { own, otherUser? }, probe?, inputSpread?, ptq? }
 *   ranks: { users, unmasked, masked } (plain arrays); gzip without a timestamp (equal records are equal bytes)
 */
import { join } from 'node:path';
import type { UserRanks } from '../src/model/evaluate.ts';
import type { Training } from '../src/model/reproduce/plan.ts';
import { readRecords, recordFile, recordsDir, writeRecordFile } from '../src/model/reproduce/records.ts';
import type { InputSpread, ProbeResult } from './probe-strategy.ts';

export interface PlainRanks {
  users: number[];
  unmasked: number[];
  masked: number[];
}

export interface StudyRecord {
  format: 'chord-study-record';
  version: 1;
  key: string;
  /** SHA-256 of the run's training.json: everything below was computed from the artifact it describes. */
  trainingHash: string;
  training: Training;
  ranks: { own: PlainRanks; otherUser?: PlainRanks };
  probe?: ProbeResult;
  inputSpread?: InputSpread;
  /** A Base's: its weights quantized to uniform 3 bits after training, with and without 3-bit activations. */
  ptq?: { w3: PlainRanks; w3a3: PlainRanks };
}

export const toPlain = (r: UserRanks): PlainRanks => ({ users: Array.from(r.users), unmasked: Array.from(r.unmasked), masked: Array.from(r.masked) });
export const fromPlain = (r: PlainRanks): UserRanks => ({
  users: Int32Array.from(r.users),
  unmasked: Int32Array.from(r.unmasked),
  masked: Int32Array.from(r.masked),
});

/** Where a dataset's study records live under a results folder: beside reproduce's, in study/. */
export function studyRecordsDir(resultsDir: string, dataset: string): string {
  return join(recordsDir(resultsDir, dataset), 'study');
}

/** Writes `record` unless its file holds it already; true when it wrote. */
export function writeStudyRecord(dir: string, record: StudyRecord): boolean {
  return writeRecordFile(recordFile(dir, record.key), record);
}

const isRanks = (r: PlainRanks | undefined): boolean =>
  r !== undefined && Array.isArray(r.users) && Array.isArray(r.unmasked) && Array.isArray(r.masked) && r.unmasked.length === r.users.length && r.masked.length === r.users.length;

/** Every study record in `dir` by key (none where it does not exist); a damaged file throws CHORD_BAD_RUN_RECORD naming it. */
export function readStudyRecords(dir: string): Map<string, StudyRecord> {
  return readRecords<StudyRecord>(dir, 'chord-study-record', (record) => {
    if (typeof record.trainingHash !== 'string' || !record.training?.metrics?.test || !isRanks(record.ranks?.own)) return 'no training hash, test metrics or ranks';
    if ((record.ranks.otherUser && !isRanks(record.ranks.otherUser)) || (record.ptq && !(isRanks(record.ptq.w3) && isRanks(record.ptq.w3a3)))) return 'ranks of unequal lengths';
    return undefined;
  });
}
