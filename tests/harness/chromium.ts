/**
 * Finds a Chromium for the browser tests, in this order:
 *   1. $CHROMIUM_PATH
 *   2. a browser installed by `npx playwright install` (if present on disk)
 *   3. /usr/bin/chromium (Debian's package)
 * Pure lookup, no side effects: `ensure-chromium.ts` is the step that may install one.
 */
import { existsSync } from 'node:fs';
import { chromium } from '@playwright/test';

export interface ChromiumLookup {
  path: string | undefined;
  tried: string[];
}

export function findChromium(): ChromiumLookup {
  const tried: string[] = [];
  const env = process.env.CHROMIUM_PATH;
  if (env) {
    tried.push(`$CHROMIUM_PATH=${env}`);
    if (existsSync(env)) return { path: env, tried };
  }
  try {
    const pw = chromium.executablePath();
    tried.push(pw);
    if (pw && existsSync(pw)) return { path: pw, tried };
  } catch {
    tried.push('(playwright-managed browser: none registered)');
  }
  const debian = '/usr/bin/chromium';
  tried.push(debian);
  if (existsSync(debian)) return { path: debian, tried };
  return { path: undefined, tried };
}

/** Flags that give WebGPU on SwiftShader (a CPU) where no GPU exists, and keep Chromium off the network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
