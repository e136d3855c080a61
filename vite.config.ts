import { defineConfig } from 'vitest/config';

export default defineConfig({
  // WGSL kernels live in shaders/ and are imported with `?raw`.
  assetsInclude: ['**/*.wgsl'],
  server: { fs: { strict: true } },
  // The dependency scan reads the repository's own pages; examples/ are consumer apps that import the
  // built package ('chord-rerank'), which this checkout does not install, and would stop the scan.
  optimizeDeps: { entries: ['index.html', 'tests/**/*.html', 'tools/**/*.html'] },
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
