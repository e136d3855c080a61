import { test } from '@playwright/test';

/**
 * Starts every test of the calling spec on tests/browser/pages/<name>.html once the page is
 * ready, echoing the page's console messages of the `echo` types (a kernel that fails to compile
 * or validate reports there first).
 */
export function openPageForEachTest(name: 'engine' | 'gpu', echo: readonly string[] = ['error']): void {
  test.beforeEach(async ({ page }) => {
    page.on('console', (msg) => {
      if (echo.includes(msg.type())) console.log(`[page ${msg.type()}] ${msg.text()}`);
    });
    await page.goto(`/tests/browser/pages/${name}.html`);
    await page.waitForSelector('body[data-ready="1"]');
  });
}
