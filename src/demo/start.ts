/**
 * `npm start`: the demo shop. Starts the strategy server (src/cloud) over public/models and the
 * Vite dev server for index.html, with `/v1` proxied to the strategy server, so the page talks to
 * one origin (no CORS) exactly as a shop that mounts the strategy API under its own domain.
 *
 *   PORT (default 5173): the page. STRATEGY_PORT (default PORT + 1, or any free port if that is
 *   taken): the strategy server. HOST (default 127.0.0.1). Ctrl-C stops both.
 *
 * The committed model (public/models/<modelId>) is used as is; only when it is missing does this
 * run `npm run build:demo-model` (minutes). The test suite calls startDemo() on its own ports.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, createServer as createViteServer } from 'vite';
import type { Plugin, ViteDevServer } from 'vite';
import { createServer as createStrategyServer } from '../cloud/server.ts';
import type { ChordServer } from '../cloud/server.ts';
import { DEMO_MODEL_ID } from './catalogue.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_PORT = 5173;

/** Files of a model directory that only the strategy server reads: never served to the page. */
const CLOUD_ONLY = /^\/models\/[^/]+\/(?:hypernet\.json|hyper\.json|hyper\.bin|training\.json)(?:\?|$)/;

export interface StartOptions {
  /** Page port (default $PORT or 5173). */
  readonly port?: number;
  /** Strategy server port; default port + 1, or a free port if that is taken. 0 = any free port. */
  readonly strategyPort?: number;
  readonly host?: string;
  /** Directory of model directories (default public/models). */
  readonly modelsDir?: string;
  /** Fail instead of moving to the next port when `port` is taken (tests). */
  readonly strictPort?: boolean;
  /** Log lines (default console.log); Vite's own output goes through it too. */
  readonly log?: (line: string) => void;
}

export interface DemoServers {
  /** The shop page. */
  readonly url: string;
  /** The strategy server's own URL (the page reaches it through `<url>/v1`). */
  readonly strategyUrl: string;
  /** Requests that reached the strategy server (method and path), in order. */
  readonly strategyLog: { readonly method: string; readonly path: string }[];
  /** Stops the strategy server: the page is "offline" for strategies. */
  stopStrategy(): Promise<void>;
  /** Starts it again on the same port. */
  startStrategy(): Promise<void>;
  close(): Promise<void>;
}

export function modelDir(modelsDir = join(ROOT, 'public', 'models')): string {
  return join(modelsDir, DEMO_MODEL_ID);
}

export function hasDemoModel(modelsDir?: string): boolean {
  const dir = modelDir(modelsDir);
  return ['manifest.json', 'items.json', 'backbone.bin', 'gru.bin', 'hyper.bin'].every((f) => existsSync(join(dir, f)));
}

function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((done) => {
    const probe = createNetServer();
    probe.once('error', () => done(false));
    probe.listen(port, host, () => probe.close(() => done(true)));
  });
}

/** 404s the cloud-only files under public/models: Vite serves public/ as is otherwise. */
function hideCloudFiles(): Plugin {
  return {
    name: 'chord-demo-hide-cloud-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (req.url && CLOUD_ONLY.test(req.url)) {
          res.statusCode = 404;
          res.end();
          return;
        }
        next();
      });
    },
  };
}

export async function startDemo(options: StartOptions = {}): Promise<DemoServers> {
  const log = options.log ?? ((line: string) => console.log(line));
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? DEFAULT_PORT;
  const modelsDir = options.modelsDir ?? join(ROOT, 'public', 'models');
  if (!hasDemoModel(modelsDir)) throw new Error(`no demo model in ${modelDir(modelsDir)}: run npm run build:demo-model`);

  const strategyLog: { method: string; path: string }[] = [];
  let strategyPort =
    options.strategyPort ?? ((await portIsFree(port + 1, host)) ? port + 1 : 0);
  let cloud: ChordServer | null = null;
  let strategyUrl = '';
  const startStrategy = async (): Promise<void> => {
    if (cloud) return;
    // Same origin through the proxy: no CORS origins needed. No rate limit: one local shopper.
    const server = await createStrategyServer({ modelsDir, rateLimit: false });
    server.app.server.on('request', (req) => strategyLog.push({ method: req.method ?? '', path: req.url ?? '' }));
    strategyUrl = await server.listen(strategyPort, host);
    strategyPort = Number(new URL(strategyUrl).port);
    cloud = server;
  };
  const stopStrategy = async (): Promise<void> => {
    const server = cloud;
    cloud = null;
    await server?.close();
  };
  await startStrategy();

  // Vite's logger, with proxy failures (the strategy server is down: the page copes) as one line.
  const logger = createLogger('info', { allowClearScreen: false });
  const error = logger.error.bind(logger);
  logger.error = (msg, opts) => {
    if (msg.includes('http proxy error')) log(`[demo] strategy server unreachable: ${msg.split('\n')[0]!.replace(/\x1b\[[0-9;]*m/g, '').trim()}`);
    else error(msg, opts);
  };
  let vite: ViteDevServer;
  try {
    vite = await createViteServer({
      root: ROOT,
      // Its own optimizer cache: the plugin and proxy change Vite's config hash, and sharing the
      // default cache with a plain `npx vite` (the browser tests) would re-bundle on every switch.
      cacheDir: join(ROOT, 'node_modules', '.vite-demo'),
      customLogger: logger,
      clearScreen: false,
      plugins: [hideCloudFiles()],
      server: {
        host,
        port,
        strictPort: options.strictPort ?? false,
        proxy: { '/v1': { target: strategyUrl, changeOrigin: true } },
      },
    });
    await vite.listen();
  } catch (e) {
    await stopStrategy();
    throw e;
  }
  const address = vite.httpServer?.address();
  const pagePort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host}:${pagePort}/`;
  return {
    url,
    strategyUrl,
    strategyLog,
    stopStrategy,
    startStrategy,
    close: async () => {
      await vite.close();
      await stopStrategy();
    },
  };
}

function runBuild(): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/demo/build-model.ts')], { cwd: ROOT, stdio: 'inherit' });
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`build:demo-model exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const port = process.env.PORT ? Number(process.env.PORT) : DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`PORT must be a TCP port, got ${process.env.PORT}`);
  const strategyPort = process.env.STRATEGY_PORT ? Number(process.env.STRATEGY_PORT) : undefined;
  if (!hasDemoModel()) {
    console.log('No demo model in public/models: building it (npm run build:demo-model, a few minutes)...');
    await runBuild();
  }
  const servers = await startDemo({
    port,
    ...(strategyPort === undefined ? {} : { strategyPort }),
    ...(process.env.HOST ? { host: process.env.HOST } : {}),
  });
  console.log(`\n  chord-rerank demo shop:  ${servers.url}`);
  console.log(`  strategy server:         ${servers.strategyUrl}  (proxied at ${servers.url}v1)`);
  console.log('  Ctrl-C stops both.\n');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1); // a second Ctrl-C: now
    stopping = true;
    console.log(`\n${signal}: stopping the demo...`);
    void servers.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
