// The error registry (src/core/errors.ts) and the error classes agree: every ChordError subclass
// in src/ is in ERROR_CODES under its own name, sets that name as a string literal (not from the
// constructor's name, which a minifier renames), and no code belongs to two classes.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ChordError, ERROR_CODES } from '../../src/core/errors.ts';
import { GruError } from '../../src/core/gru.ts';
import { FrozenHashMismatchError, ManifestError } from '../../src/core/manifest.ts';
import { StoreIntegrityError } from '../../src/device/errors.ts';
import { ApiError } from '../../src/cloud/errors.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface ErrorClass {
  readonly file: string;
  readonly name: string;
  readonly base: string;
  /** The initializer of its `name` property when that is a string literal; null when absent or computed. */
  readonly fixedName: string | null;
  readonly assignsName: boolean;
}

function classesIn(file: string, source: string): ErrorClass[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const out: ErrorClass[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isClassDeclaration(node) && node.name) {
      const base = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
      if (base && ts.isIdentifier(base)) {
        const nameProp = node.members.find(
          (m): m is ts.PropertyDeclaration => ts.isPropertyDeclaration(m) && ts.isIdentifier(m.name) && m.name.text === 'name',
        );
        const init = nameProp?.initializer;
        out.push({
          file,
          name: node.name.text,
          base: base.text,
          fixedName: init && ts.isStringLiteral(init) ? init.text : null,
          assignsName: /this\.name\s*=/.test(node.getText(sf)),
        });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function errorClasses(classes: readonly ErrorClass[]): ErrorClass[] {
  const byName = new Map(classes.map((c) => [c.name, c]));
  const isChordError = (c: ErrorClass | undefined, depth = 0): boolean =>
    c !== undefined && depth < 20 && (c.base === 'ChordError' || isChordError(byName.get(c.base), depth + 1));
  return classes.filter((c) => isChordError(c));
}

function registryProblems(registry: Record<string, readonly string[]>, classes: readonly ErrorClass[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const [name, codes] of Object.entries(registry)) {
    if (codes.length === 0) problems.push(`${name}: no codes`);
    for (const code of codes) {
      if (!/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(code)) problems.push(`${name}: code '${code}' is not UPPER_SNAKE`);
      const other = seen.get(code);
      if (other !== undefined) problems.push(`${code}: in ${other} and ${name}`);
      seen.set(code, name);
    }
  }
  const names = new Set(classes.map((c) => c.name));
  for (const c of classes) {
    if (!(c.name in registry)) problems.push(`${c.file}: ${c.name} is not in ERROR_CODES`);
    if (c.fixedName !== c.name) problems.push(`${c.file}: ${c.name} does not set name = '${c.name}'`);
    if (c.assignsName) problems.push(`${c.file}: ${c.name} assigns this.name at run time`);
  }
  for (const name of Object.keys(registry)) if (!names.has(name)) problems.push(`ERROR_CODES.${name} has no class`);
  return problems;
}

describe('error registry', () => {
  const files = readdirSync(join(ROOT, 'src'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
  const all = files.flatMap((f) => classesIn(f, readFileSync(join(ROOT, f), 'utf8')));
  const classes = errorClasses(all);

  it('finds the error classes of every layer', () => {
    expect(classes.length).toBeGreaterThanOrEqual(44);
    for (const layer of ['core', 'data', 'model', 'gpu', 'sw', 'device', 'cloud']) {
      expect(classes.some((c) => c.file.startsWith(`src/${layer}/`)), layer).toBe(true);
    }
    // Indirect subclasses count too.
    expect(classes.map((c) => c.name)).toContain('FrozenHashMismatchError');
  });

  it('every class is registered under its fixed name, and every code is literal and unique', () => {
    expect(registryProblems(ERROR_CODES, classes)).toEqual([]);
  });

  it('no error class in src/ extends Error without going through ChordError', () => {
    const plain = all.filter((c) => c.base === 'Error' && !c.file.endsWith('core/errors.ts'));
    // The store's internal abort signal never leaves store.ts.
    expect(plain.map((c) => `${c.file}: ${c.name}`)).toEqual(['src/device/store.ts: Reject']);
  });

  it('instances carry their fixed name and a registered code', () => {
    const samples: ChordError[] = [
      new GruError('GRU_BAD_ITEM', 'x'),
      new ManifestError('dims', 'x'),
      new FrozenHashMismatchError('a', 'b', 'shipped'),
      new StoreIntegrityError('truncated', 'k', 'x'),
      new ApiError(400, 'BAD_Z_LENGTH', 'x'),
    ];
    expect(samples.map((e) => [e.name, e.code])).toEqual([
      ['GruError', 'GRU_BAD_ITEM'],
      ['ManifestError', 'MANIFEST_INVALID'],
      ['FrozenHashMismatchError', 'FROZEN_HASH_MISMATCH'],
      ['StoreIntegrityError', 'STORE_TRUNCATED'],
      ['ApiError', 'BAD_Z_LENGTH'],
    ]);
    for (const e of samples) {
      expect(e).toBeInstanceOf(ChordError);
      expect((ERROR_CODES[e.name] as readonly string[]).includes(e.code)).toBe(true);
      expect(String(e).startsWith(`${e.name}: `)).toBe(true);
    }
  });

  it('reports a duplicate code, a missing class, a computed name and an unregistered class', () => {
    const fake = [
      ...classesIn('a.ts', "class AError extends ChordError<'AError'> { override readonly name = 'AError'; }"),
      ...classesIn('b.ts', "class BError extends AError { constructor() { super(); this.name = new.target.name; } }"),
      ...classesIn('c.ts', "class CError extends ChordError<'CError'> { override readonly name = 'CError'; }"),
    ];
    expect(registryProblems({ AError: ['X_ONE'], BError: ['X_ONE', 'bad code'], DError: ['D'] }, errorClasses(fake))).toEqual([
      'X_ONE: in AError and BError',
      "BError: code 'bad code' is not UPPER_SNAKE",
      'b.ts: BError does not set name = \'BError\'',
      'b.ts: BError assigns this.name at run time',
      'c.ts: CError is not in ERROR_CODES',
      'ERROR_CODES.DError has no class',
    ]);
  });
});
