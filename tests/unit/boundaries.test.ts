// The folder tree's one-way promise, checked: every import (static, dynamic, re-export, type-only)
// and every `new URL('…', import.meta.url)` in src/ and tools/ is an arrow from one layer to another,
// and each arrow must be in LAYER_ARROWS; packages must be in LAYER_PACKAGES. The per-layer
// tsconfigs (src/*/tsconfig.json) check the globals (no DOM in the server, no Node in core); this
// test checks the arrows, which the compiler cannot see for files that a layer merely imports.
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

type Layer = 'core' | 'cli' | 'data' | 'model' | 'gpu' | 'sw' | 'device' | 'cloud' | 'demo' | 'tools';
const ANYTHING = '*';

/** Which folders each layer may import from (its own always included). */
const LAYER_ARROWS: Record<Layer, readonly string[] | typeof ANYTHING> = {
  core: [],
  // The command-line runner every CLI shares (Node only, so not in core).
  cli: ['core'],
  data: ['core', 'cli'],
  model: ['core', 'data', 'cli'],
  gpu: ['core', 'shaders'],
  sw: ['core'],
  device: ['core', 'gpu', 'sw'],
  cloud: ['core', 'cli'],
  demo: ANYTHING,
  tools: ANYTHING,
};

/** Which npm packages each layer may import; 'node:' means Node's built-in modules. */
const LAYER_PACKAGES: Record<Layer, readonly string[] | typeof ANYTHING> = {
  core: ['zod'],
  cli: ['node:'],
  data: ['node:'],
  model: ['node:', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', 'cli-progress', 'proper-lockfile'],
  gpu: [],
  sw: [],
  device: ['idb'],
  cloud: ['node:', 'fastify', '@fastify/cors', '@fastify/rate-limit', 'lru-cache', 'prom-client', 'tsx'],
  demo: ANYTHING,
  tools: ANYTHING,
};

interface Arrow {
  readonly file: string;
  readonly specifier: string;
  readonly from: Layer;
  /** Folder (layer, or top-level folder outside src/) for relative specifiers; the package otherwise. */
  readonly to: string;
  readonly kind: 'folder' | 'package';
}

/** The layer of a repo-relative path: `src/<layer>/…` or `tools/…`. */
function layerOf(path: string): string {
  const parts = path.split(sep).join('/').split('/');
  return parts[0] === 'src' ? parts[1]! : parts[0]!;
}

const NODE_BUILTINS = new Set(builtinModules);

/** The package a bare specifier names: `@scope/name` or `name`; 'node:' for Node built-ins. */
function packageOf(specifier: string): string {
  if (specifier.startsWith('node:') || NODE_BUILTINS.has(specifier.split('/')[0]!)) return 'node:';
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Every module a file refers to: imports and re-exports, dynamic imports, worker URLs. */
function specifiersOf(source: string): string[] {
  const info = ts.preProcessFile(source, true, true);
  const urls = [...source.matchAll(/new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g)].map((m) => m[1]!);
  return [...info.importedFiles.map((f) => f.fileName), ...urls];
}

function arrowsOf(file: string, source: string): Arrow[] {
  const from = layerOf(file) as Layer;
  return specifiersOf(source).map((specifier) => {
    if (specifier.startsWith('.')) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), specifier.replace(/\?.*$/, '')));
      return { file, specifier, from, to: layerOf(target), kind: 'folder' as const };
    }
    return { file, specifier, from, to: packageOf(specifier), kind: 'package' as const };
  });
}

function violations(arrows: readonly Arrow[]): string[] {
  return arrows
    .filter((a) => {
      const allowed = (a.kind === 'folder' ? LAYER_ARROWS : LAYER_PACKAGES)[a.from];
      if (allowed === undefined) return true; // a folder under src/ that is not a known layer
      if (allowed === ANYTHING) return false;
      return a.kind === 'folder' ? a.to !== a.from && !allowed.includes(a.to) : !allowed.includes(a.to);
    })
    .map((a) => `${a.file}: ${a.from} -> ${a.to} ('${a.specifier}')`);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

describe('layer boundaries', () => {
  const files = [...sourceFiles('src'), ...sourceFiles('tools')];
  const arrows = files.flatMap((f) => arrowsOf(f, readFileSync(join(ROOT, f), 'utf8')));

  it('reads every file in src/ and tools/ and every kind of import', () => {
    const layers = new Set(files.map(layerOf));
    expect([...layers].sort()).toEqual(Object.keys(LAYER_ARROWS).sort());
    // A worker URL, a dynamic import and a raw shader import are all seen.
    expect(arrows.some((a) => a.specifier === './compute-worker-boot.mjs')).toBe(true);
    expect(arrows.some((a) => a.from === 'gpu' && a.to === 'shaders')).toBe(true);
    expect(arrows.filter((a) => a.kind === 'folder' && a.from !== a.to).length).toBeGreaterThan(100);
  });

  it('every arrow between layers is in the allowed table', () => {
    expect(violations(arrows.filter((a) => a.kind === 'folder'))).toEqual([]);
  });

  it('every package a layer imports is in its allowed list', () => {
    expect(violations(arrows.filter((a) => a.kind === 'package'))).toEqual([]);
  });

  it('flags an arrow against the table', () => {
    const bad = [
      ...arrowsOf('src/core/x.ts', "import { a } from '../device/reranker.ts';\nconst m = await import('node:util');"),
      ...arrowsOf('src/gpu/y.ts', "export type { B } from '../model/sasrec.ts';\nimport '../../tests/fixtures/artifacts.ts';"),
      ...arrowsOf('src/sw/z.ts', "import cliProgress from 'cli-progress';"),
      ...arrowsOf('src/device/w.ts', "import { s } from '../sw/protocol.ts';"),
      ...arrowsOf('tools/t.ts', "import '../tests/harness/chromium.ts'; import 'node:fs';"),
    ];
    expect(violations(bad)).toEqual([
      "src/core/x.ts: core -> device ('../device/reranker.ts')",
      "src/core/x.ts: core -> node: ('node:util')",
      "src/gpu/y.ts: gpu -> model ('../model/sasrec.ts')",
      "src/gpu/y.ts: gpu -> tests ('../../tests/fixtures/artifacts.ts')",
      "src/sw/z.ts: sw -> cli-progress ('cli-progress')",
    ]);
  });
});
