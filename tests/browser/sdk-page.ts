// The SDK test page (pages/sdk.html), opened and reloaded as the SDK specs need it: ready once the
// page has set body[data-ready].
import type { Page } from '@playwright/test';

export const SDK_PAGE = '/tests/browser/pages/sdk.html';

export async function openSdkPage(page: Page, origin = ''): Promise<void> {
  await page.goto(`${origin}${SDK_PAGE}`);
  await page.waitForSelector('body[data-ready="1"]');
}

export async function reloadSdkPage(page: Page): Promise<void> {
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
}
