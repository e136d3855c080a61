/**
 * The package as a shop gets it: `npm pack` (which builds dist/), the tarball installed into a fresh
 * copy of examples/basic (the README's "Use it in a shop" app, checked against the README here),
 * then every step of that section: the app's strict `tsc`, `vite build`, the `vite` dev server, an
 * esbuild bundle, Node importing `chord-rerank/core` and `/server`, `npx chord-rerank serve` and
 * `export-page`, and Chromium ranking in the built app through the service worker, and in the
 * no-bundler example. vite, typescript and esbuild are installed into the app at the versions this
 * repository locks, with --prefer-offline, so the install is served from npm's cache after `npm ci`.
 */
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(import.meta.dirname, '../..');
const EXAMPLE = join(ROOT, 'examples/basic');
const MODEL = 'sasrec-demo-shop';
const PAGE_FILES = ['backbone.bin', 'backbone.json', 'gru.bin', 'gru.json', 'items.json', 'manifest.json'];
/** The targets: the package unpacked, the page's gzipped bundle for createReranker. */
const MAX_UNPACKED_BYTES = 1_000_000;
const MAX_PAGE_GZIP_BYTES = 60_000;

test.describe.configure({ mode: 'serial', timeout: 300_000 });

let work: string;
let app: string;
let packed: { files: { path: string; size: number }[]; unpackedSize: number; filename: string };
const children: ChildProcess[] = [];
const servers: Server[] = [];

/** No colour codes in the outputs the tests read (Playwright's runner sets FORCE_COLOR). */
const PLAIN = { FORCE_COLOR: '0', NO_COLOR: '1' };

interface Run {
  readonly status: number | null;
  readonly output: string;
}

/** Runs a command to completion (bounded), returning its status and combined output. */
function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Run {
  const r = spawnSync(command, args, { cwd, env: { ...process.env, ...PLAIN, ...env }, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function mustRun(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  const r = run(command, args, cwd, env);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${r.status}:\n${r.output}`);
  return r.output;
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** Starts a long-running command and resolves once a line of its output matches `ready`. */
async function start(command: string, args: readonly string[], cwd: string, ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...PLAIN, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let output = '';
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} ${args.join(' ')}: not ready after 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (ready.test(output)) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output}`));
    });
  });
  return child;
}

/** Stops a started command and its children (npx runs the real process as a child). */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(-child.pid!, 'SIGTERM');
  await exited;
}

/** The fenced blocks of the README's "Use it in a shop" section, in order. */
async function readmeShopBlocks(): Promise<string[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Use it in a shop');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  return [...section.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test.beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chord-consumer-'));
  // What `npm pack` does (prepack runs the build), in two steps so that --json prints only the JSON.
  mustRun('npm', ['run', 'build'], ROOT);
  packed = (JSON.parse(mustRun('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT)) as (typeof packed)[])[0]!;

  app = join(work, 'shop');
  await mkdir(app);
  for (const name of ['index.html', 'vite.config.ts', 'tsconfig.json', 'src']) await cp(join(EXAMPLE, name), join(app, name), { recursive: true });
  const example = JSON.parse(await readFile(join(EXAMPLE, 'package.json'), 'utf8')) as Record<string, unknown>;
  const locked = async (name: string) => (JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  const manifest = {
    ...example,
    dependencies: { 'chord-rerank': `file:${join(work, packed.filename)}` },
    devDependencies: { vite: await locked('vite'), typescript: await locked('typescript'), esbuild: await locked('esbuild') },
  };
  await writeFile(join(app, 'package.json'), JSON.stringify(manifest, null, 2));
  mustRun('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], app);
  // README step 2: the demo model, copied whole (hypernets and training.json included).
  await cp(join(ROOT, 'public/models', MODEL), join(app, 'models', MODEL), { recursive: true });
});

test.afterAll(async () => {
  for (const child of children.reverse()) await stop(child).catch(() => undefined);
  for (const server of servers) await new Promise((r) => server.close(r));
  if (work) await rm(work, { recursive: true, force: true });
});

test('the README quick start is examples/basic, file for file', async () => {
  const blocks = await readmeShopBlocks();
  for (const file of ['vite.config.ts', 'index.html', 'src/main.ts']) {
    const text = (await readFile(join(EXAMPLE, file), 'utf8')).trimEnd();
    expect(blocks.map((b) => b.trimEnd()), `README block for examples/basic/${file}`).toContain(text);
  }
  const commands = blocks.join('\n');
  expect(commands).toContain('npm install chord-rerank');
  expect(commands).toContain(`npx chord-rerank serve --models models --port 8080`);
});

test('the tarball holds the build, README and LICENSE only, within 1 MB', () => {
  const paths = packed.files.map((f) => f.path);
  expect(paths).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'package.json', 'dist/index.js', 'dist/core.js', 'dist/server.js', 'dist/bin.js', 'dist/strategy-sw.js']));
  const stray = paths.filter((p) => !/^(dist\/|README\.md$|LICENSE$|package\.json$)/.test(p) || (p.endsWith('.ts') && !p.endsWith('.d.ts')));
  expect(stray).toEqual([]);
  expect(paths.filter((p) => /(^|\/)(hyper\.(bin|json)|hypernet\.json|training\.json|items\.json)$|\.wgsl$/.test(p))).toEqual([]);
  expect(packed.unpackedSize).toBeLessThanOrEqual(MAX_UNPACKED_BYTES);
});

test('installing it brings no training dependency', async () => {
  const installed = await readdir(join(app, 'node_modules'));
  expect(installed).not.toContain('@tensorflow');
  expect(installed).toEqual(expect.arrayContaining(['chord-rerank', 'fastify', 'idb', 'zod', '@webgpu']));
});

test("the app's strict tsc passes with the template's options", () => {
  const shown = JSON.parse(mustRun('npx', ['tsc', '--showConfig'], app)) as { compilerOptions: Record<string, unknown> };
  expect(shown.compilerOptions).toMatchObject({ strict: true, erasableSyntaxOnly: true, verbatimModuleSyntax: true, moduleResolution: 'bundler' });
  const tsc = run('npx', ['tsc', '--noEmit'], app);
  expect(tsc.output).toBe('');
  expect(tsc.status).toBe(0);
});

test('the declarations type-check themselves (skipLibCheck off, no ambient types)', async () => {
  const dir = join(app, 'declarations-check'); // inside the app, to resolve its node_modules
  await mkdir(dir);
  await writeFile(
    join(dir, 'use.ts'),
    "import { createReranker } from 'chord-rerank';\nimport { decodeStrategy } from 'chord-rerank/core';\nexport const used = [createReranker, decodeStrategy];\n",
  );
  const config = { extends: '../tsconfig.json', compilerOptions: { skipLibCheck: false, types: [] }, include: ['use.ts'] };
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(config));
  const tsc = run(join(app, 'node_modules/.bin/tsc'), ['--noEmit', '-p', dir], dir);
  expect(tsc.output).toBe('');
  expect(tsc.status).toBe(0);
});

test('Node imports chord-rerank/core and chord-rerank/server from the built files', () => {
  const script = `const core = await import('chord-rerank/core'); const server = await import('chord-rerank/server');
    console.log(typeof core.decodeStrategy, typeof core.parseManifest, typeof server.createServer, typeof server.exportPage);`;
  const r = run('node', ['--input-type=module', '-e', script], app);
  expect(r.output.trim()).toBe('function function function function');
  expect(run('node', ['-e', "import('chord-rerank/core').then((m) => console.log(String(Object.keys(m).length > 10)))"], app).output.trim()).toBe('true');
});

test(`esbuild bundles the page without a loader or settings, within ${MAX_PAGE_GZIP_BYTES / 1000} kB gzipped`, async () => {
  const out = join(work, 'esbuild');
  const r = run('npx', ['esbuild', 'src/main.ts', '--bundle', '--minify', '--format=esm', `--outdir=${out}`, '--log-level=warning'], app);
  expect(r.output).toBe('');
  expect(r.status).toBe(0);
  const bundle = await readFile(join(out, 'main.js'));
  const gzipped = gzipSync(bundle, { level: 9 }).byteLength;
  test.info().annotations.push({ type: 'page bundle', description: `${bundle.byteLength} B minified, ${gzipped} B gzipped` });
  expect(gzipped).toBeLessThanOrEqual(MAX_PAGE_GZIP_BYTES);
  // The worker is a file of its own, never bundled into the page.
  expect(bundle.toString('utf8')).not.toContain('registration.scope');
});

test('export-page writes the page files and nothing else', async () => {
  const out = join(work, 'page-files');
  // The demo model is version 1 (float32 item table in backbone.bin): the default export converts it to the 8-bit file.
  const r = run('npx', ['chord-rerank', 'export-page', join('models', MODEL), out], app);
  expect(r.status, r.output).toBe(0);
  expect((await readdir(out)).sort()).toEqual([...PAGE_FILES, 'item_emb.q8'].sort());
  expect(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')).version).toBe(2);
  const fp32 = run('npx', ['chord-rerank', 'export-page', join('models', MODEL), out, '--item-table', 'fp32'], app);
  expect(fp32.status, fp32.output).toBe(0);
  expect((await readdir(out)).sort()).toEqual(PAGE_FILES);
  const bogus = run('npx', ['chord-rerank', 'export-page', join('models', MODEL), out, '--item-table', 'int4'], app);
  expect(bogus.status).toBe(2);
  // A folder that holds anything else is refused, as one line with its code.
  await writeFile(join(out, 'hyper.bin'), 'x');
  const refused = run('npx', ['chord-rerank', 'export-page', join('models', MODEL), out], app);
  expect(refused.status).toBe(1);
  expect(refused.output.trim()).toMatch(/^chord-rerank export-page: MODEL_LOAD_FAILED: .*hyper\.bin/);
  const help = run('npx', ['chord-rerank', '--help'], app);
  expect(help.status).toBe(0);
  expect(help.output).toMatch(/^usage: chord-rerank <command>/);
});

test.describe('served', () => {
  let strategyUrl: string;
  let noBundlerOrigin: string;

  test.beforeAll(async () => {
    const port = await freePort();
    const staticPort = await freePort();
    noBundlerOrigin = `http://127.0.0.1:${staticPort}`;
    // README step 3 (on a free port, with CORS for the no-bundler page), from the built bin, without tsx.
    await start('npx', ['chord-rerank', 'serve', '--models', 'models', '--port', String(port), '--origin', noBundlerOrigin], app, /listening on/);
    strategyUrl = `http://127.0.0.1:${port}`;

    // The no-bundler example, served as plain files from the app folder (its node_modules included).
    await cp(join(ROOT, 'examples/no-bundler/index.html'), join(app, 'no-bundler.html'));
    const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json' };
    const files = createHttpServer((req, res) => {
      const path = join(app, decodeURIComponent(new URL(req.url!, noBundlerOrigin).pathname));
      if (!path.startsWith(`${app}/`)) return void res.writeHead(403).end();
      readFile(path).then(
        (body) => res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((r) => files.listen(staticPort, '127.0.0.1', r));
    servers.push(files);
  });

  test('the server serves the page files only, whatever the model folder holds', async () => {
    const entries = await readdir(join(app, 'models', MODEL));
    expect(entries).toEqual(expect.arrayContaining(['hyper.bin', 'hyper.json', 'hypernet.json', 'training.json']));
    for (const name of PAGE_FILES) expect((await fetch(`${strategyUrl}/v1/models/${MODEL}/files/${name}`)).status, name).toBe(200);
    for (const name of ['hyper.bin', 'hyper.json', 'hypernet.json', 'training.json', '..%2Fsasrec-demo-shop%2Fhyper.bin']) {
      const res = await fetch(`${strategyUrl}/v1/models/${MODEL}/files/${name}`);
      expect(res.status, name).toBe(404);
    }
  });

  /** Opens a page, waits for the first ranking, clicks three products and waits for a server strategy. */
  async function rankAndLearn(page: Page, url: string): Promise<void> {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const status = page.locator('#status');
    // WebGPU (SwiftShader here, as in the other browser specs): the inlined, compacted WGSL kernels compile and run.
    await expect(status).toHaveText(/^12 products ranked on webgpu \(default strategy, \d\.\d\d bits, via service-worker\)$/, { timeout: 90_000 });
    const order = () => page.locator('#products [data-id]').evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.id!));
    const first = await order();
    expect([...first].sort()).toEqual(Array.from({ length: 12 }, (_, i) => `p${String(i + 1).padStart(4, '0')}`));
    for (const id of ['p0003', 'p0007', 'p0011']) await page.locator(`[data-id="${id}"]`).click();
    await expect(status).toHaveText(/\(network strategy, \d\.\d\d bits, via service-worker\)$/, { timeout: 60_000 });
    const workers = page.context().serviceWorkers().map((w) => w.url());
    expect(workers.some((u) => /strategy-sw(-[\w-]+)?\.js$/.test(u)), workers.join(', ')).toBe(true);
    expect(errors).toEqual([]);
  }

  test('vite build, then the built app ranks in Chromium through the service worker', async ({ page }) => {
    const build = run('npx', ['vite', 'build'], app);
    expect(build.status, build.output).toBe(0);
    const assets = await readdir(join(app, 'dist/assets'));
    expect(assets.filter((a) => /^strategy-sw-[\w-]+\.js$/.test(a))).toHaveLength(1);
    const port = await freePort();
    await start('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], app, /Local:/, { STRATEGY_SERVER: strategyUrl });
    await rankAndLearn(page, `http://127.0.0.1:${port}/`);
  });

  test('the vite dev server serves the page and its modules, and the page ranks', async ({ page }) => {
    const port = await freePort();
    await start('npx', ['vite', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], app, /Local:/, { STRATEGY_SERVER: strategyUrl });
    const origin = `http://127.0.0.1:${port}`;
    const html = await fetch(`${origin}/`);
    expect(html.status).toBe(200);
    expect(await html.text()).toContain('/src/main.ts');
    const main = await fetch(`${origin}/src/main.ts`);
    expect(main.status).toBe(200);
    const code = await main.text();
    const dep = /from\s+"([^"]*chord-rerank[^"]*)"/.exec(code)?.[1];
    expect(dep, code.slice(0, 400)).toBeDefined();
    const module = await fetch(new URL(dep!, origin));
    expect(module.status).toBe(200);
    expect(module.headers.get('content-type')).toMatch(/javascript/);
    await rankAndLearn(page, `${origin}/`);
  });

  test('the no-bundler example ranks from the built files through an import map', async ({ page }) => {
    await rankAndLearn(page, `${noBundlerOrigin}/no-bundler.html?server=${encodeURIComponent(strategyUrl)}`);
  });
});
