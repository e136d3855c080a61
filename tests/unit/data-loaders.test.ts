import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChordError } from '../../src/core/errors.ts';
import { DatasetError } from '../../src/data/errors.ts';
import { loadDataset, resolveDatasetFile } from '../../src/data/load.ts';
import { parseMovieLensUData } from '../../src/data/movielens.ts';
import { formatAtomicInter, parseAtomicInter } from '../../src/data/recbole.ts';
import { parseSequenceFile } from '../../src/data/sequence-file.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/data');

/** Runs fn, asserts it throws a DatasetError, and returns it for further checks. */
function datasetError(fn: () => unknown): DatasetError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DatasetError);
    expect(err).toBeInstanceOf(ChordError);
    return err as DatasetError;
  }
  throw new Error('expected a DatasetError, nothing was thrown');
}

describe('parseAtomicInter (RecBole .inter)', () => {
  it('finds columns by name in any order, reads rating when present', () => {
    const text = 'timestamp:float\textra:token_seq\titem_id:token\tuser_id:token\trating:float\n' +
      '881250949\tfoo bar\t242\t196\t3\n' +
      '891717742\t\t302\t186\t4.5\n';
    expect(parseAtomicInter(text, 'x.inter')).toEqual([
      { user: '196', item: '242', time: 881250949, rating: 3 },
      { user: '186', item: '302', time: 891717742, rating: 4.5 },
    ]);
  });

  it('omits rating when the column is absent, accepts CRLF and skips blank lines', () => {
    const text = 'user_id:token\titem_id:token\ttimestamp:float\r\nu\ti\t7\r\n\r\nv\tj\t8.25\r\n';
    expect(parseAtomicInter(text, 'x.inter')).toEqual([
      { user: 'u', item: 'i', time: 7 },
      { user: 'v', item: 'j', time: 8.25 },
    ]);
  });

  it('honours custom column names', () => {
    const text = 'uid:token\tiid:token\tts:float\nu\ti\t3\n';
    const cols = { user: 'uid', item: 'iid', time: 'ts', rating: 'stars' };
    expect(parseAtomicInter(text, 'x.inter', cols)).toEqual([{ user: 'u', item: 'i', time: 3 }]);
  });

  it('reports a missing column on the header line', () => {
    const err = datasetError(() => parseAtomicInter('user_id:token\titem_id:token\nu\ti\n', 'shop.inter'));
    expect(err.code).toBe('DATASET_MISSING_COLUMN');
    expect(err.file).toBe('shop.inter');
    expect(err.line).toBe(1);
    expect(err.message).toMatch(/^shop\.inter:1: header has no "timestamp" column/);
  });

  it('reports a wrong field count with the 1-based physical line number', () => {
    const text = 'user_id:token\titem_id:token\ttimestamp:float\nu\ti\t1\n\nu\tj\n';
    const err = datasetError(() => parseAtomicInter(text, 'a.inter'));
    expect(err.code).toBe('DATASET_FIELD_COUNT');
    expect(err.line).toBe(4);
    expect(err.message).toBe('a.inter:4: expected 3 tab-separated fields, found 2');
  });

  it('reports a non-numeric, empty or infinite timestamp', () => {
    const head = 'user_id:token\titem_id:token\ttimestamp:float\n';
    for (const [bad, line] of [['abc', 3], ['', 3], ['Infinity', 3]] as const) {
      const err = datasetError(() => parseAtomicInter(`${head}u\ti\t1\nu\tj\t${bad}\n`, 'b.inter'));
      expect(err.code).toBe('DATASET_BAD_NUMBER');
      expect(err.line).toBe(line);
      expect(err.message).toContain('b.inter:3: timestamp is not a finite number');
    }
  });

  it('rejects an empty user or item token and a malformed header', () => {
    const head = 'user_id:token\titem_id:token\ttimestamp:float\n';
    expect(datasetError(() => parseAtomicInter(`${head}\ti\t1\n`, 'c.inter')).code).toBe('DATASET_EMPTY_FIELD');
    const bad = datasetError(() => parseAtomicInter('user_id\titem_id:token\ttimestamp:float\n', 'c.inter'));
    expect(bad.code).toBe('DATASET_BAD_HEADER');
    expect(bad.line).toBe(1);
    expect(datasetError(() => parseAtomicInter('\n\n', 'c.inter')).code).toBe('DATASET_EMPTY');
  });

  it('round-trips through formatAtomicInter', () => {
    const rows = [
      { user: 'u1', item: 'p1', time: 5 },
      { user: 'u2', item: 'p2', time: 1.5 },
    ];
    const text = formatAtomicInter(rows);
    expect(text.split('\n')[0]).toBe('user_id:token\titem_id:token\ttimestamp:float');
    expect(parseAtomicInter(text, 'rt.inter')).toEqual(rows);
    const rated = [{ user: 'u', item: 'i', time: 2, rating: 4 }];
    expect(parseAtomicInter(formatAtomicInter(rated), 'rt.inter')).toEqual(rated);
  });
});

describe('parseMovieLensUData', () => {
  it('reads user item rating timestamp', () => {
    expect(parseMovieLensUData('196\t242\t3\t881250949\n186\t302\t3\t891717742\n', 'u.data')).toEqual([
      { user: '196', item: '242', time: 881250949, rating: 3 },
      { user: '186', item: '302', time: 891717742, rating: 3 },
    ]);
  });

  it('names file and line for a wrong field count and a bad number', () => {
    const short = datasetError(() => parseMovieLensUData('1\t2\t3\t4\n1\t2\t3\n', 'u.data'));
    expect(short.code).toBe('DATASET_FIELD_COUNT');
    expect(short.message).toBe('u.data:2: expected 4 fields (user item rating timestamp), found 3');
    const nan = datasetError(() => parseMovieLensUData('1\t2\t3\t4\n\n1\t2\tx\t4\n', 'u.data'));
    expect(nan.code).toBe('DATASET_BAD_NUMBER');
    expect(nan.line).toBe(3);
    expect(nan.message).toContain('rating');
  });
});

describe('parseSequenceFile', () => {
  it('uses the position as time and continues a user across lines', () => {
    expect(parseSequenceFile('alice a b\nbob c\nalice d\n', 's.txt')).toEqual([
      { user: 'alice', item: 'a', time: 0 },
      { user: 'alice', item: 'b', time: 1 },
      { user: 'bob', item: 'c', time: 0 },
      { user: 'alice', item: 'd', time: 2 },
    ]);
  });

  it('rejects a line with a user and no items', () => {
    const err = datasetError(() => parseSequenceFile('alice a\n  bob  \n', 's.txt'));
    expect(err.code).toBe('DATASET_FIELD_COUNT');
    expect(err.message).toBe('s.txt:2: expected a user followed by at least one item');
  });
});

describe('loadDataset', () => {
  it('loads a RecBole directory X/ through X/X.inter', () => {
    const loaded = loadDataset(join(FIXTURES, 'tiny'));
    expect(loaded.format).toBe('recbole');
    expect(loaded.file).toBe(join(FIXTURES, 'tiny', 'tiny.inter'));
    expect(loaded.interactions).toHaveLength(5);
    expect(loaded.interactions[1]).toEqual({ user: 'u2', item: 'b', time: 50, rating: 3 });
  });

  it('accepts a trailing slash and a directory whose only .inter has another name', () => {
    expect(resolveDatasetFile(join(FIXTURES, 'tiny') + '/').file).toBe(join(FIXTURES, 'tiny', 'tiny.inter'));
    const other = loadDataset(join(FIXTURES, 'other'));
    expect(other.file).toBe(join(FIXTURES, 'other', 'shop.inter'));
    expect(other.interactions).toEqual([
      { user: 'x', item: 'a', time: 10 },
      { user: 'x', item: 'b', time: 20 },
    ]);
  });

  it('picks the loader by extension', () => {
    expect(loadDataset(join(FIXTURES, 'tiny', 'tiny.inter')).format).toBe('recbole');
    const ml = loadDataset(join(FIXTURES, 'tiny-u.data'));
    expect(ml.format).toBe('movielens');
    expect(ml.interactions[2]).toEqual({ user: '2', item: '10', time: 881250000, rating: 5 });
    const seq = loadDataset(join(FIXTURES, 'tiny-seq.txt'));
    expect(seq.format).toBe('sequence');
    expect(seq.interactions.filter((x) => x.user === 'alice').map((x) => x.item)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('reports the parsed file and line for a malformed record', () => {
    const file = join(FIXTURES, 'broken.inter');
    const err = datasetError(() => loadDataset(file));
    expect(err.file).toBe(file);
    expect(err.line).toBe(4);
    expect(err.message).toContain(`${file}:4:`);
  });

  it('rejects unknown extensions and missing paths', () => {
    expect(datasetError(() => loadDataset(join(FIXTURES, 'tiny.csv'))).code).toBe('DATASET_UNKNOWN_FORMAT');
    const missing = datasetError(() => loadDataset(join(FIXTURES, 'does-not-exist.inter')));
    expect(missing.code).toBe('DATASET_NOT_FOUND');
  });

  it('rejects a directory with no .inter file or several ambiguous ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chord-data-'));
    try {
      const none = datasetError(() => loadDataset(dir));
      expect(none.code).toBe('DATASET_NOT_FOUND');
      expect(none.message).toContain('has no .inter file');
      writeFileSync(join(dir, 'a.inter'), 'user_id:token\titem_id:token\ttimestamp:float\n');
      writeFileSync(join(dir, 'b.inter'), 'user_id:token\titem_id:token\ttimestamp:float\n');
      expect(datasetError(() => loadDataset(dir)).message).toContain('several .inter files');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
