import { defineConfig } from 'vitest/config';

export default defineConfig({
  // WGSL kernels live in shaders/ and are imported with `?raw`.
  assetsInclude: ['**/*.wgsl'],
  server: { fs: { strict: true } },
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
