import { test, expect, uniq } from './fixtures/studio';
import type { CDPSession, Page } from '@playwright/test';

// #42：服务器渲染的页面看起来已经能用，WASM 却还要几秒才到。这期间用户做的事不能丢：
// 写下的提示词与选好的张数在水合后还在（记下的偏好只用于没动过的控件）；点了“生成”或按了 Enter，
// 页面说“加载中…，稍后自动提交”，水合后立即排队一次。
// 网络按 Lighthouse 的“Slow 4G”限速（150 ms 往返、1.6 Mbit/s），页面一有 DOM 就开始操作。

const HYDRATED = 'section.studio[data-hydrated="true"]';
/** 记在浏览器里的偏好（prefs.rs 的格式）：上次用的张数 4、宽高比 16:9。 */
const PREFS = JSON.stringify({ count: 4, aspect_ratio: '16:9', image_size: '1K', model: '', mode: 'Single' });

async function throttle(page: Page): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 150,
    downloadThroughput: (1.6 * 1024 * 1024) / 8,
    uploadThroughput: (750 * 1024) / 8,
  });
  return cdp;
}

/** 水合之后不再限速，后面的生成不必慢慢等。 */
async function unthrottle(cdp: CDPSession) {
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
}

/** 此刻页面还没水合吗？水合已经赢了竞赛时记在报告里（测试照样检查结果，只是测到的是水合之后的路径）。 */
async function stillEarly(page: Page, what: string): Promise<boolean> {
  const hydrated = (await page.locator(HYDRATED).count()) > 0;
  if (hydrated) {
    test.info().annotations.push({ type: '竞赛', description: `${what}时页面已经水合：这一次没有测到水合之前的路径` });
  }
  return !hydrated;
}

test('水合之前写下的提示词与选的 8 张，水合后都还在（偏好只用于没动过的宽高比），提交得到 8 张卡片', async ({ studio, page }) => {
  test.setTimeout(120_000);
  await page.addInitScript((prefs) => localStorage.setItem('drafting-factory.studio', prefs), PREFS);
  const cdp = await throttle(page);
  const prompt = uniq('早早输入的提示词');
  await page.goto('/', { waitUntil: 'domcontentloaded' });
  await studio.prompt.fill(prompt);
  await studio.countControl.selectOption('8');
  if (await stillEarly(page, '写提示词、选 8 张')) {
    await expect(page.locator(HYDRATED)).toHaveCount(0);
    // 看起来能点，但标着“加载中…”。
    await expect(studio.generate).toHaveAttribute('aria-busy', 'true');
    await expect(studio.generate).toBeEnabled();
  }
  await expect(page.locator(`${HYDRATED}[data-connected="true"]`)).toBeVisible({ timeout: 60_000 });
  await unthrottle(cdp);
  await expect(page.getByTestId('early-hint')).toHaveCount(0);
  // 水合没有把它们重设成默认值，也没有被记下的偏好（4 张）盖掉；没动过的宽高比用了偏好。
  await expect(studio.prompt).toHaveValue(prompt);
  await expect(studio.countControl).toHaveValue('8');
  await expect(page.getByLabel('宽高比')).toHaveValue('16:9');
  await expect(studio.generate).not.toHaveAttribute('aria-busy', 'true');
  await studio.generate.click();
  await expect(studio.cardsWith(prompt)).toHaveCount(8);
});

for (const how of ['点“生成”', '在提示词里按 Enter'] as const) {
  test(`水合之前${how}：不被悄悄丢掉，水合后立即排队，正好一张卡片`, async ({ studio, page }) => {
    test.setTimeout(120_000);
    const cdp = await throttle(page);
    const prompt = uniq('水合前就提交');
    await page.goto('/', { waitUntil: 'domcontentloaded' });
    await studio.prompt.fill(prompt);
    if (how === '点“生成”') await studio.generate.click();
    else await studio.prompt.press('Enter');
    if (await stillEarly(page, how)) {
      // 页面说了会自动提交（水合恰好在这之间完成时提示已经消失，也算数）。
      const hint = await page.evaluate(() => document.querySelector('[data-testid="early-hint"]')?.textContent ?? null);
      if (hint !== null) expect(hint).toBe('加载中…，稍后自动提交');
      // 没有整页跳转（原生提交会丢掉输入）。
      expect(new URL(page.url()).search).toBe('');
      // Enter 没有变成换行。
      await expect(studio.prompt).toHaveValue(prompt);
    }
    await expect(page.locator(HYDRATED)).toBeVisible({ timeout: 60_000 });
    await unthrottle(cdp);
    const card = studio.cardsWith(prompt);
    await expect(card).toHaveCount(1, { timeout: 30_000 });
    await expect(card).toHaveAttribute('data-state', 'done');
    // 只提交了一次。
    await expect(card).toHaveCount(1);
  });
}
