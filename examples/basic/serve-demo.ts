// Serves a small demo model for the example: the page's files (static, CORS) and the real
// strategy server (src/cloud) over it. Run `npx tsx examples/basic/serve-demo.ts`, start
// `npx vite`, then open the URL it prints. Ctrl-C stops both servers.
import { RerankerTestServers } from '../../tests/browser/pages/reranker.server.ts';

const pageOrigin = process.env.PAGE_ORIGIN ?? 'http://localhost:5173';
const servers = await RerankerTestServers.start([pageOrigin]);
const query = new URLSearchParams({ model: servers.modelUrl, endpoint: servers.endpoint });
console.log(`model files:     ${servers.modelUrl}/`);
console.log(`strategy server: ${servers.endpoint}`);
console.log(`open:            ${pageOrigin}/examples/basic/index.html?${query}`);
process.once('SIGINT', () => void servers.close().then(() => process.exit(0)));
