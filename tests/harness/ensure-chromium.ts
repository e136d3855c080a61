/**
 * Makes sure the browser tests have a Chromium. If none is found and we are root with apt available,
 * installs Debian's `chromium` (saying so); otherwise fails with instructions.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { findChromium } from './chromium.ts';

const found = findChromium();
if (found.path) {
  console.log(`[chromium] using ${found.path}`);
  process.exit(0);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
if (isRoot && hasApt) {
  console.log('[chromium] no Chromium found; installing Debian package "chromium" with apt-get (one-time, a few minutes)');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const again = findChromium();
  if (again.path) {
    console.log(`[chromium] installed: ${again.path}`);
    process.exit(0);
  }
}

console.error(
  [
    'No Chromium found for the browser tests. Looked at:',
    ...found.tried.map((t) => `  - ${t}`),
    'Install one of:',
    '  - Debian/Ubuntu: sudo apt-get install chromium',
    '  - any Chromium/Chrome, then: export CHROMIUM_PATH=/path/to/chrome',
    '  - where downloads are allowed: npx playwright install chromium',
  ].join('\n'),
);
process.exit(1);
