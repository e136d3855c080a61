// chord-rerank in a plain page: load the model, tell it what the shopper clicks, let it order
// the candidates. In an app that installs the package: import { createReranker } from 'chord-rerank'.
import { createReranker } from '../../src/device/index.ts';

const list = document.querySelector<HTMLUListElement>('#products')!;
const status = document.querySelector<HTMLOutputElement>('#status')!;
const where = new URLSearchParams(location.search); // ?model=...&endpoint=... (see serve-demo.ts)

const reranker = await createReranker({
  model: where.get('model') ?? '/models/sasrec-demo', // manifest.json, items.json, backbone.*, gru.*
  strategyEndpoint: where.get('endpoint') ?? 'http://127.0.0.1:8080', // `npm run serve`
  onProgress: ({ stage, loaded, total }) => (status.value = `loading: ${stage} ${loaded}/${total}`),
});

// Each click updates the shopper's profile in the page; only a short summary vector is ever sent.
list.addEventListener('click', (event) => {
  const sku = (event.target as HTMLElement).closest<HTMLElement>('[data-sku]')?.dataset.sku;
  if (sku) reranker.observe(sku);
});

// Reorder the shop's own candidates now, and whenever the personalised strategy changes.
async function render(): Promise<void> {
  const cards = [...list.querySelectorAll<HTMLElement>('[data-sku]')];
  const ranked = await reranker.rerank(cards.map((card) => card.dataset.sku!));
  list.append(...ranked.map(({ id }) => cards.find((card) => card.dataset.sku === id)!));
  const s = reranker.strategy!;
  status.value = `${ranked.length} products ranked on ${reranker.backend} (${s.source} strategy, ${s.averageBits.toFixed(2)} bits)`;
}
reranker.on('strategy', () => void render());
await render();
