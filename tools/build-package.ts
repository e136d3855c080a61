/**
 * `npm run build` (and `prepack`): the installable package in dist/.
 *
 *   dist/index.js, core.js, *-<hash>.js   the page SDK and the pure core (ESM, WGSL inlined as strings;
 *                                          idb and zod stay imports, shared code in hashed chunks)
 *   dist/strategy-sw.js                    the strategy service worker, one self-contained file
 *   dist/server.js, bin.js, compute-worker.js, server-*.js   the strategy server for Node (deps external)
 *   dist/types/**.d.ts                      declarations (tsc), `.ts` specifiers rewritten to `.js`
 *
 * Vite's library mode builds the JavaScript because the sources import WGSL with `?raw`, which
 * Vite (the dev server and the tests use it) already inlines: one toolchain, no loader plugin to
 * keep in step. tsc writes the declarations. Three builds, not one, so browser chunks never pull
 * in Node modules and the worker has no imports left.
 */
import { spawnSync } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, createLogger, type InlineConfig, type Plugin } from 'vite';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
const deps = Object.keys(pkg.dependencies ?? {});
/** A dependency or one of its subpaths (zod/mini, @fastify/cors/...). */
const isDependency = (id: string) => deps.some((d) => id === d || id.startsWith(`${d}/`));
const isNodeBuiltin = (id: string) => id.startsWith('node:') || builtinModules.includes(id);

/** Vite's logger, less the one warning the page build expects (see keepWorkerUrlPlain). */
const logger = createLogger('warn');
const warnOnce = logger.warnOnce.bind(logger);
logger.warnOnce = (message, options) => {
  if (!message.includes('new URL("./strategy-sw.js", import.meta.url) doesn\'t exist at build time')) warnOnce(message, options);
};

const common: InlineConfig = {
  root: ROOT,
  configFile: false,
  customLogger: logger,
  publicDir: false,
};

/**
 * Vite leaves `new URL('./strategy-sw.js', import.meta.url)` alone when the file is not there at
 * build time, but writes its base as `'' + import.meta.url`, which the app's bundler no longer
 * recognises as an asset reference. This puts the plain form back so the app's Vite (or webpack)
 * copies dist/strategy-sw.js into its own build, and fails the build if the pattern went missing.
 */
function keepWorkerUrlPlain(): Plugin {
  const vitePattern = /new URL\((["'])\.\/strategy-sw\.js\1, ['"]{2} \+ import\.meta\.url\)/;
  let found = 0;
  return {
    name: 'chord:keep-worker-url-plain',
    renderChunk(code) {
      if (!vitePattern.test(code)) return null;
      found += 1;
      return { code: code.replace(new RegExp(vitePattern, 'g'), 'new URL("./strategy-sw.js", import.meta.url)'), map: null };
    },
    generateBundle() {
      if (found !== 1) this.error(`expected one new URL('./strategy-sw.js', import.meta.url) in the page build, found ${found}`);
    },
  };
}

/**
 * Inlines each `shaders/*.wgsl?raw` import without its comments, indentation, line breaks and the
 * spaces next to `,;:(){}=` (over half of the WGSL's bytes). WGSL has no string literals, so `//` always starts
 * a comment; the kernels use no block comments, and the plugin refuses one rather than guess at
 * nesting. None of those characters joins a neighbour into another token once the space between
 * them goes (`a >= b` keeps its `>=`; `=` is never written apart from `<`, `>`, `!` or `=`), so
 * the kernel's tokens, and its meaning, stay the same.
 */
function compactWgsl(): Plugin {
  return {
    name: 'chord:compact-wgsl',
    enforce: 'pre',
    async load(id) {
      const [file, query] = id.split('?');
      if (!file?.endsWith('.wgsl') || query !== 'raw') return null;
      const source = await readFile(file, 'utf8');
      if (source.includes('/*')) this.error(`${file}: block comments are not compacted; use // comments`);
      const lines = source
        .split('\n')
        .map((line) => line.replace(/\/\/.*$/, '').trim().replace(/\s*([,;:(){}=])\s*/g, '$1'))
        .filter(Boolean);
      // Lines join without a break unless both sides are word characters (`return` / `x`), which one keeps apart.
      const code = lines.reduce((out, line) => out + (/\w$/.test(out) && /^\w/.test(line) ? '\n' : '') + line, '');
      return `export default ${JSON.stringify(code)};`;
    },
  };
}

/** The page SDK and core: browser ESM, dependencies left as imports for the app's bundler. */
async function buildPage(): Promise<void> {
  await build({
    ...common,
    plugins: [compactWgsl(), keepWorkerUrlPlain()],
    resolve: {
      // url.ts needs Vite's `?worker&url`; the package points at its own prebuilt worker instead.
      alias: [{ find: /^\.\.\/sw\/url\.ts$/, replacement: join(ROOT, 'src/sw/package/worker-url.ts') }],
    },
    build: {
      outDir: DIST,
      emptyOutDir: false,
      target: 'es2022',
      minify: false,
      sourcemap: false,
      lib: { entry: { index: 'src/device/index.ts', core: 'src/core/index.ts' }, formats: ['es'] },
      rollupOptions: {
        external: (id) => isDependency(id),
        output: { chunkFileNames: '[name]-[hash].js' },
      },
    },
  });
}

/**
 * The strategy service worker: everything inlined into one file a browser registers as it is.
 * Minified, unlike the modules: apps copy it into their build without processing it.
 */
async function buildServiceWorker(): Promise<void> {
  await build({
    ...common,
    build: {
      outDir: DIST,
      emptyOutDir: false,
      target: 'es2022',
      minify: true,
      lib: { entry: { 'strategy-sw': 'src/sw/strategy-sw.ts' }, formats: ['es'] },
      rollupOptions: { output: { codeSplitting: false } },
    },
  });
}

/** The strategy server, its worker thread and the bin, for Node: dependencies and builtins external. */
async function buildServer(): Promise<void> {
  await build({
    ...common,
    build: {
      outDir: DIST,
      emptyOutDir: false,
      ssr: true,
      target: 'node20',
      minify: false,
      rollupOptions: {
        input: { server: 'src/cloud/index.ts', bin: 'src/cloud/bin.ts', 'compute-worker': 'src/cloud/compute-worker.ts' },
        external: (id) => isDependency(id) || isNodeBuiltin(id),
        output: { format: 'es', entryFileNames: '[name].js', chunkFileNames: 'server-[name]-[hash].js' },
      },
    },
  });
}

/** Every .d.ts under dir. */
async function declarationFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.d.ts')).map((e) => join(e.parentPath, e.name));
}

/**
 * tsc's declarations keep the sources' `./x.ts` specifiers; a consumer's TypeScript resolves
 * `./x.js` to x.d.ts under every moduleResolution, so they are rewritten.
 */
async function buildDeclarations(): Promise<void> {
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json exited with ${tsc.status}`);
  const types = join(DIST, 'types');
  // The Vite-only worker URL module is replaced in the build (see buildPage); its declaration would need vite/client.
  await rm(join(types, 'sw/url.d.ts'), { force: true });
  for (const file of await declarationFiles(types)) {
    const text = await readFile(file, 'utf8');
    const rewritten = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1$2.js$3');
    if (rewritten !== text) await writeFile(file, rewritten);
  }
  // `chord-rerank/strategy-sw.js` is a worker script, not a module to import; its types say so.
  await writeFile(
    join(types, 'strategy-sw.d.ts'),
    '// The strategy service worker: register its URL (see the README), do not import it into a page.\nexport {};\n',
  );
  // The page's types mention WebGPU's (GPUDevice, ...): consumers get them from @webgpu/types, a dependency.
  const pageEntry = join(types, 'device/index.d.ts');
  await writeFile(pageEntry, `/// <reference types="@webgpu/types" />\n${await readFile(pageEntry, 'utf8')}`);
}

await rm(DIST, { recursive: true, force: true });
await buildPage();
await buildServiceWorker();
await buildServer();
await buildDeclarations();
const files = (await readdir(DIST, { recursive: true })).length;
console.log(`built ${relative(ROOT, DIST)}/ (${files} entries)`);
