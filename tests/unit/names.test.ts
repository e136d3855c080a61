// One meaning per name: an exported name is defined in one file of src/ only. Re-exports
// (`export { X } from './x.ts'`) point at a definition and do not count; `export { local as X }`
// does. Two layers that each export their own `LoadedModel` or `StrategyService` read the same
// in an import line and mean different things, which is what this test stops.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function exportedDefinitions(fileName: string, source: string): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false);
  const names: string[] = [];
  for (const statement of file.statements) {
    if (ts.isExportDeclaration(statement)) {
      if (!statement.moduleSpecifier && statement.exportClause && ts.isNamedExports(statement.exportClause)) {
        for (const e of statement.exportClause.elements) names.push(e.name.text);
      }
      continue;
    }
    const exported = ts.canHaveModifiers(statement) && (ts.getModifiers(statement) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (!exported) continue;
    if (ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) if (ts.isIdentifier(d.name)) names.push(d.name.text);
    } else if (
      (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) || ts.isEnumDeclaration(statement)) && statement.name
    ) {
      names.push(statement.name.text);
    }
  }
  return names;
}

/** Names defined by more than one file, with the files. */
function definedTwice(files: ReadonlyMap<string, string>): Map<string, string[]> {
  const where = new Map<string, Set<string>>();
  for (const [file, source] of files) {
    for (const name of exportedDefinitions(file, source)) {
      if (!where.has(name)) where.set(name, new Set());
      where.get(name)!.add(file);
    }
  }
  return new Map([...where].filter(([, fs]) => fs.size > 1).map(([n, fs]) => [n, [...fs].sort()]));
}

describe('exported names', () => {
  const files = new Map(
    readdirSync(join(ROOT, 'src'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
      .map((e) => {
        const path = join(e.parentPath, e.name);
        return [relative(ROOT, path), readFileSync(path, 'utf8')] as const;
      }),
  );

  it('reads the exports of every module in src/', () => {
    expect(files.size).toBeGreaterThan(150);
    const all = [...files].flatMap(([f, s]) => exportedDefinitions(f, s));
    expect(all).toContain('createReranker');
    expect(all).toContain('Rng');
  });

  it('no exported name is defined in two files', () => {
    expect(Object.fromEntries(definedTwice(files))).toEqual({});
  });

  it('sees every kind of definition and ignores re-exports', () => {
    const twice = definedTwice(
      new Map([
        ['a.ts', "export class Rng {}\nexport type Method = 'a';\nconst x = 1;\nexport { x as DEFAULT_LEVELS };\nexport function loadModel() {}"],
        ['b.ts', "export interface Rng {}\nexport const DEFAULT_LEVELS = [2];\nexport { Method } from './a.ts';\nfunction loadModel() {}"],
        ['c.ts', "export enum Method { A }\nexport declare function loadModel(): void;"],
      ]),
    );
    expect(Object.fromEntries(twice)).toEqual({
      Rng: ['a.ts', 'b.ts'],
      Method: ['a.ts', 'c.ts'],
      DEFAULT_LEVELS: ['a.ts', 'b.ts'],
      loadModel: ['a.ts', 'c.ts'],
    });
  });
});
