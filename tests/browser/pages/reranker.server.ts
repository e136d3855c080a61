// Node side of the Reranker specs: a demo model artifact in a temp directory, served as static
// files (the page's model URL), and the real strategy server from src/cloud over it. Runs in the
// Playwright test process, never in the page.
import { createServer as createHttpServer } from 'node:http';
import type { Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '../../../src/cloud/server.ts';
import type { ChordServer } from '../../../src/cloud/server.ts';
import { writeDemoArtifact } from '../../fixtures/demo-artifact.ts';
import type { DemoArtifact, DemoArtifactOptions } from '../../fixtures/demo-artifact.ts';

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  /** Bytes of the body answered (file requests; 0 for a 404). */
  readonly bytes?: number;
}

const PAGE_FILES = new Set(['manifest.json', 'items.json', 'backbone.json', 'backbone.bin', 'gru.json', 'gru.bin', 'item_emb.q8']);

export interface RerankerServerOptions extends DemoArtifactOptions {
  /**
   * How the model folder ships its item table: 'fp32' (default) as the fixture writes it, item_emb
   * in backbone.bin (manifest version 1); 'q8' rewritten by the real export (src/model/export.ts
   * writeArtifact), item_emb.q8 in core's 8-bit layout (manifest version 2).
   */
  readonly itemTable?: 'fp32' | 'q8';
}

export class RerankerTestServers {
  readonly artifact: DemoArtifact;
  /** Requests to the model's static files. */
  readonly fileLog: LoggedRequest[] = [];
  /** Requests that reached the strategy server. */
  readonly strategyLog: LoggedRequest[] = [];
  readonly #root: string;
  readonly #dir: string;
  readonly #origins: readonly string[];
  readonly #files: Server;
  readonly #fileSockets: Set<Socket>;
  #cloud: ChordServer | null = null;
  #strategyPort = 0;

  private constructor(
    root: string,
    dir: string,
    artifact: DemoArtifact,
    origins: readonly string[],
    files: Server,
    sockets: Set<Socket>,
  ) {
    this.#fileSockets = sockets;
    this.#root = root;
    this.#dir = dir;
    this.artifact = artifact;
    this.#origins = origins;
    this.#files = files;
  }

  /** `origins`: the page origins the strategy server allows (CORS). */
  static async start(origins: readonly string[], options: RerankerServerOptions = {}): Promise<RerankerTestServers> {
    const root = await mkdtemp(join(tmpdir(), 'chord-reranker-'));
    const { itemTable, ...demo } = options;
    let artifact = await writeDemoArtifact(root, demo);
    if (itemTable === 'q8') {
      // Imported here: the export module brings tfjs, which the other specs do not need.
      const { readArtifact, writeArtifact } = await import('../../../src/model/export.ts');
      const files = { manifest: artifact.manifest, items: artifact.items, backbone: artifact.backbone, gru: artifact.gru };
      writeArtifact(artifact.dir, { ...files, hypernet: { config: artifact.hypernetConfig, tensors: artifact.hypernetTensors }, training: {} });
      // The manifest as written (version 2); the artifact's tensors stay the float32 ones it was made from.
      artifact = { ...artifact, manifest: readArtifact(artifact.dir).manifest };
    }
    let servers: RerankerTestServers | undefined;
    const sockets = new Set<Socket>();
    const files = createHttpServer((req, res) => void servers?.serveFile(req.method ?? '', req.url ?? '', res));
    files.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    servers = new RerankerTestServers(root, artifact.dir, artifact, origins, files, sockets);
    await servers.startStrategy();
    return servers;
  }

  /** The model folder on disk (a spec may damage a file there; it is read on every request). */
  get dir(): string {
    return this.#dir;
  }

  get modelId(): string {
    return this.artifact.manifest.modelId;
  }

  /** The page's `model` URL (a directory of static files). */
  get modelUrl(): string {
    return `http://127.0.0.1:${(this.#files.address() as AddressInfo).port}/models/${this.modelId}`;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#strategyPort}`;
  }

  get strategyPosts(): LoggedRequest[] {
    return this.strategyLog.filter((r) => r.method === 'POST');
  }

  /** Starts (or restarts, on the same port) the real strategy server. */
  async startStrategy(): Promise<void> {
    if (this.#cloud) return;
    const cloud = await createServer({ modelsDir: this.#root, origins: this.#origins, rateLimit: false });
    cloud.app.server.on('request', (req) => this.strategyLog.push({ method: req.method ?? '', path: req.url ?? '' }));
    const url = await cloud.listen(this.#strategyPort);
    this.#strategyPort = Number(new URL(url).port);
    this.#cloud = cloud;
  }

  /** Stops the strategy server: the endpoint refuses connections ("offline"). */
  async stopStrategy(): Promise<void> {
    const cloud = this.#cloud;
    this.#cloud = null;
    await cloud?.close();
  }

  async close(): Promise<void> {
    await this.stopStrategy();
    for (const s of this.#fileSockets) s.destroy();
    await new Promise<void>((resolve) => this.#files.close(() => resolve()));
    await rm(this.#root, { recursive: true, force: true });
  }

  private async serveFile(method: string, url: string, res: import('node:http').ServerResponse): Promise<void> {
    const path = url.split('?')[0]!;
    const cors = { 'access-control-allow-origin': '*' };
    const m = /^\/models\/([a-z0-9-]+)\/([a-z_0-9]+\.(?:json|bin|q8))$/.exec(path);
    if (method !== 'GET' || !m || m[1] !== this.modelId || !PAGE_FILES.has(m[2]!)) {
      this.fileLog.push({ method, path, bytes: 0 });
      res.writeHead(404, cors).end();
      return;
    }
    const bytes = await readFile(join(this.#dir, m[2]!)).catch(() => null);
    this.fileLog.push({ method, path, bytes: bytes?.byteLength ?? 0 });
    if (!bytes) {
      res.writeHead(404, cors).end();
      return;
    }
    res.writeHead(200, {
      ...cors,
      'content-type': m[2]!.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      'content-length': String(bytes.byteLength),
      // Every load must reach the server or the weight store: the specs tell them apart.
      'cache-control': 'no-store',
    });
    res.end(bytes);
  }
}
