import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, findChromium } from './harness/chromium.ts';

const port = Number(process.env.TEST_PORT ?? 5179);

export default defineConfig({
  testDir: './browser',
  // SwiftShader runs WebGPU on the CPU: shaders compile slowly, so allow generous per-test time.
  timeout: 120_000,
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: { executablePath: findChromium().path, args: CHROMIUM_ARGS },
  },
  webServer: {
    command: `npx vite --host 127.0.0.1 --port ${port} --strictPort`,
    cwd: '..',
    url: `http://127.0.0.1:${port}/tests/browser/pages/index.html`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
  },
});
