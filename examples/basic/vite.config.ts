import { defineConfig } from 'vite';

// The page fetches model files and strategies under /v1; `vite` and `vite preview` forward them
// to the strategy server (`npm run models`). In production, route /v1 to it the same way.
export default defineConfig({
  server: { proxy: { '/v1': process.env.STRATEGY_SERVER ?? 'http://127.0.0.1:8080' } },
});
