import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { DatasetError } from './errors.ts';
import { parseMovieLensUData } from './movielens.ts';
import { parseAtomicInter } from './recbole.ts';
import { parseSequenceFile } from './sequence-file.ts';
import type { Interaction } from './types.ts';

export type DatasetFormat = 'recbole' | 'movielens' | 'sequence';

export interface LoadedDataset {
  readonly format: DatasetFormat;
  /** The file actually parsed (for a RecBole directory, the `.inter` inside it). */
  readonly file: string;
  readonly interactions: Interaction[];
}

/**
 * Picks a loader by path:
 * - a directory `X/` -> RecBole, reading `X/X.inter` (or its only `.inter` file);
 * - `*.inter` -> RecBole atomic; `u.data` or `*.data` -> MovieLens; `*.txt` / `*.seq` -> sequence file.
 * Node-only (reads the file system); the parsers it calls are pure and browser-safe.
 */
export function loadDataset(path: string): LoadedDataset {
  const { format, file } = resolveDatasetFile(path);
  const text = readText(file);
  switch (format) {
    case 'recbole':
      return { format, file, interactions: parseAtomicInter(text, file) };
    case 'movielens':
      return { format, file, interactions: parseMovieLensUData(text, file) };
    case 'sequence':
      return { format, file, interactions: parseSequenceFile(text, file) };
  }
}

/** Decides the format and concrete file for `path` without parsing it. */
export function resolveDatasetFile(path: string): { format: DatasetFormat; file: string } {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (cause) {
    throw new DatasetError('DATASET_NOT_FOUND', 'no such file or directory', { file: path }, { cause });
  }
  if (isDir) return { format: 'recbole', file: findInterFile(path) };
  const ext = extname(path).toLowerCase();
  if (ext === '.inter') return { format: 'recbole', file: path };
  if (ext === '.data') return { format: 'movielens', file: path };
  if (ext === '.txt' || ext === '.seq') return { format: 'sequence', file: path };
  throw new DatasetError(
    'DATASET_UNKNOWN_FORMAT',
    `cannot tell the format from the extension "${ext}" (expected a RecBole directory, .inter, .data, .txt or .seq)`,
    { file: path },
  );
}

function findInterFile(dir: string): string {
  const trimmed = dir.replace(/[\\/]+$/, '');
  const named = join(trimmed, `${basename(trimmed)}.inter`);
  const inters = readdirSync(trimmed).filter((f) => f.endsWith('.inter'));
  if (inters.includes(basename(named))) return named;
  // A directory written under another name (e.g. the synthetic shop's `shop.inter`) is still
  // unambiguous when it holds exactly one `.inter` file.
  if (inters.length === 1) return join(trimmed, inters[0]!);
  throw new DatasetError(
    'DATASET_NOT_FOUND',
    inters.length === 0
      ? `directory has no .inter file (expected ${basename(named)})`
      : `directory has several .inter files and none is named ${basename(named)}: ${inters.join(', ')}`,
    { file: trimmed },
  );
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new DatasetError('DATASET_NOT_FOUND', 'cannot read file', { file }, { cause });
  }
}
