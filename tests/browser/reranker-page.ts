import type { Page } from '@playwright/test';
import type { RerankerTestServers } from './pages/reranker.server.ts';

/** tests/browser/pages/reranker.html: one page, any number of named rerankers (window.chordReranker). */
export const RERANKER_PAGE = '/tests/browser/pages/reranker.html';

export async function openRerankerPage(page: Page): Promise<void> {
  await page.goto(RERANKER_PAGE);
  await page.waitForSelector('body[data-ready="1"]');
}

/** A reranker on `servers`' model with clicks replayed as `history` and budget null: no strategy request, the default strategy. */
export function createWithHistory(page: Page, servers: RerankerTestServers, name: string, device: 'webgpu' | 'cpu', history: string[]) {
  const options = { model: servers.modelUrl, strategyEndpoint: servers.endpoint, budget: null, device, history };
  return page.evaluate(([n, o]) => window.chordReranker.create(n, o as never), [name, options] as const);
}

/** The ranked list of reranker `name`'s recommend (arg: k) or rerank (arg: candidate ids); throws on a failed call. */
export async function rankedBy(page: Page, name: string, call: 'recommend' | 'rerank', arg: unknown) {
  const r =
    call === 'recommend'
      ? await page.evaluate(([n, k]) => window.chordReranker.recommend(n, { k: k as number }), [name, arg] as const)
      : await page.evaluate(([n, c]) => window.chordReranker.rerank(n, c as string[]), [name, arg] as const);
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.ranked;
}
