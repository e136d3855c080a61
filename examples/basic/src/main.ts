import { createReranker } from 'chord-rerank';

// Twelve ids from the demo model's items.json; a shop passes its own catalogue's ids.
const products = ['p0001', 'p0002', 'p0003', 'p0004', 'p0005', 'p0006', 'p0007', 'p0008', 'p0009', 'p0010', 'p0011', 'p0012'];
const list = document.querySelector<HTMLOListElement>('#products')!;
const status = document.querySelector<HTMLParagraphElement>('#status')!;

const reranker = await createReranker({
  model: '/v1/models/sasrec-demo-shop/files', // manifest.json, items.json, backbone.*, gru.*: from the strategy server
  strategyEndpoint: location.origin, // POST /v1/models/sasrec-demo-shop/strategy, through the same /v1 proxy
  serviceWorker: true, // chord-rerank/strategy-sw.js, which Vite copies into the build
  onProgress: ({ stage, loaded, total }) => {
    status.textContent = `loading: ${stage} ${loaded}${total === undefined ? '' : `/${total}`}`;
  },
});

// A click updates the shopper's profile in the page; only a short summary vector is ever sent.
list.addEventListener('click', (event) => {
  const id = (event.target as HTMLElement).closest<HTMLElement>('[data-id]')?.dataset.id;
  if (id) reranker.observe(id);
});

async function render(): Promise<void> {
  const ranked = await reranker.rerank(products); // [{ id, score }], best first
  list.replaceChildren(
    ...ranked.map(({ id }) => {
      const item = document.createElement('li');
      item.dataset.id = id;
      item.textContent = `Product ${id}`;
      return item;
    }),
  );
  const strategy = reranker.strategy!;
  status.textContent = `${ranked.length} products ranked on ${reranker.backend} (${strategy.source} strategy, ${strategy.averageBits.toFixed(2)} bits, via ${reranker.strategyTransport})`;
}
reranker.on('strategy', () => void render());
await render();
