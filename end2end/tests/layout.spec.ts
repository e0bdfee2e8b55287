import { test, expect, demoOptions, doneImageId, openAdminLink, uniq, StudioPage } from './fixtures/studio';
import { CONTROLLED_PORT } from '../playwright.config';
import type { Page } from '@playwright/test';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// #33：手机与桌面、浅色与深色下的样子。每一页截图（附在报告里，也存进 test-results/screenshots/），并检查：
// 没有横向滚动；“生成”、张数与模型下拉框都在窗口里；页头的文字不折行（原来 375 像素宽时“工/作/台”一字一行）。
// 系统要装 Noto CJK 字体（scripts/install-tools.sh --e2e），量到的才是用户看到的宽度。

const CONTROLLED = `http://127.0.0.1:${CONTROLLED_PORT}`;
const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const WIDTHS = [375, 1280] as const;
/** 另外只查布局（不截图）的宽度。 */
const EXTRA_WIDTHS = [320, 768] as const;
const THEME_KEY = 'drafting-factory.theme';

type Theme = 'light' | 'dark';

/** 这个测试里每一页都用这个主题：记在 localStorage 里（页头的脚本在画出页面前读它），系统偏好也设成一样。 */
async function useTheme(page: Page, theme: Theme) {
  await page.addInitScript(([key, value]) => localStorage.setItem(key, value), [THEME_KEY, theme] as const);
  await page.emulateMedia({ colorScheme: theme });
}

/** 截图：附在报告里，并存一份到 test-results/screenshots/。 */
async function shot(page: Page, name: string) {
  // 窗口里的图片加载完（最多等 10 秒；懒加载的、窗口外的不等）。
  await page
    .waitForFunction(
      () =>
        [...document.images]
          .filter((i) => {
            const r = i.getBoundingClientRect();
            return r.bottom > 0 && r.top < innerHeight && r.width > 0;
          })
          .every((i) => i.complete),
      null,
      { timeout: 10_000 },
    )
    .catch(() => {});
  const body = await page.screenshot({ fullPage: true });
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(path.join(SHOTS, `${name}.png`), body);
  await test.info().attach(name, { body, contentType: 'image/png' });
}

/** 没有横向滚动；页头的每段文字都在一行里（一个文字节点只有一个行框）。 */
async function checkLayout(page: Page, where: string) {
  const overflow = await page.evaluate(() => document.scrollingElement!.scrollWidth - window.innerWidth);
  expect(overflow, `${where}：页面横向多出 ${overflow} 像素`).toBeLessThanOrEqual(0);
  const wrapped = await page.evaluate(() => {
    const header = document.querySelector('header.top');
    if (!header) return ['没有页头'];
    const bad: string[] = [];
    const walker = document.createTreeWalker(header, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent?.trim();
      if (!text) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
      if (lines.size > 1) bad.push(`“${text}”折成了 ${lines.size} 行`);
    }
    // 导航项的高度不超过一行字（加上内边距）。
    for (const a of header.querySelectorAll<HTMLElement>('.main-nav a')) {
      const style = getComputedStyle(a);
      const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
      const content = a.getBoundingClientRect().height - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
      if (content > line * 1.5) bad.push(`导航“${a.textContent}”高 ${content} 像素（一行是 ${line}）`);
    }
    return bad;
  });
  expect(wrapped, `${where}：页头的文字折行了`).toEqual([]);
}

/** 元素整个在窗口里（不在窗口外、不被裁掉）。 */
async function inViewport(page: Page, locator: import('@playwright/test').Locator, what: string) {
  await expect(locator, `${what}应在窗口里`).toBeInViewport({ ratio: 1 });
  const box = await locator.boundingBox();
  const size = page.viewportSize()!;
  expect(box, `${what}应看得见`).not.toBeNull();
  expect(box!.x, `${what}左边`).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width, `${what}右边`).toBeLessThanOrEqual(size.width);
  expect(box!.y + box!.height, `${what}下边`).toBeLessThanOrEqual(size.height);
}

/** 其他页面：地址、水合完成（或数据已到）的标志。 */
const PAGES = [
  { name: 'gallery', path: '/gallery', ready: 'section.gallery[data-hydrated="true"]' },
  { name: 'library', path: '/prompts', ready: 'section.prompt-library[data-hydrated="true"]' },
  { name: 'usage', path: '/usage', ready: 'section.usage[data-loaded="true"]' },
  { name: 'settings', path: '/settings', ready: 'section.settings[data-hydrated="true"]' },
] as const;

for (const theme of ['light', 'dark'] as const) {
  test(`布局与截图（${theme === 'light' ? '浅色' : '深色'}）：375 与 1280 像素宽，工作台（空闲、生成中、完成）、图库、提示词库、用量、设置`, async ({ page, request }) => {
    test.setTimeout(240_000);
    await useTheme(page, theme);
    const studio = new StudioPage(page);
    // 设置页与用量页要管理员会话（3100 没设管理员密码，凭登录链接）。
    await openAdminLink(page);
    // 生成中的卡片要停留一会儿：工作台用可控上游（3102 → 3101），每张 4 秒。
    await demoOptions(request, { delay_ms: '4000' });
    try {
      for (const width of WIDTHS) {
        await page.setViewportSize({ width, height: width < 500 ? 740 : 800 });
        const tag = `${theme}-${width}`;

        await studio.open(CONTROLLED);
        await expect(page.locator('html')).toHaveAttribute('data-theme', theme);
        await checkLayout(page, `工作台 ${tag}`);
        // 平时只有一行：提示词、选项、生成。
        await expect(studio.options).toHaveAttribute('aria-expanded', 'false');
        await inViewport(page, studio.generate, '“生成”');
        await shot(page, `${tag}-studio-idle`);
        // 展开选项：张数与模型都在窗口里、不被裁掉。
        await studio.expand();
        await inViewport(page, studio.generate, '“生成”');
        await inViewport(page, studio.countControl, '张数');
        await inViewport(page, studio.model, '模型');
        await checkLayout(page, `工作台（展开选项）${tag}`);
        await shot(page, `${tag}-studio-options`);

        const prompt = uniq(`截图用的提示词 ${tag}`);
        await studio.submit(prompt, 2);
        const cards = studio.cardsWith(prompt);
        await expect(cards).toHaveCount(2);
        await expect(cards.first()).toHaveAttribute('data-state', 'running');
        // 点到栏外（这里直接在页面上派发 pointerdown，免得点中卡片）：选项收起，卡片的按钮紧贴在图下面。
        await page.locator('body').dispatchEvent('pointerdown');
        await expect(studio.options).toHaveAttribute('aria-expanded', 'false');
        await checkLayout(page, `工作台（生成中）${tag}`);
        await shot(page, `${tag}-studio-running`);
        for (const card of await cards.all()) await doneImageId(card);
        const first = cards.first();
        await inViewport(page, first.getByRole('link', { name: '下载' }), '卡片的“下载”');
        await checkLayout(page, `工作台（完成）${tag}`);
        await shot(page, `${tag}-studio-done`);

        for (const p of PAGES) {
          await page.goto(p.path);
          await expect(page.locator(p.ready)).toBeVisible();
          if (p.name === 'settings') await expect(page.getByLabel('监听地址')).toBeVisible();
          await checkLayout(page, `${p.path} ${tag}`);
          await shot(page, `${tag}-${p.name}`);
        }
      }
      // 最窄的手机与平板：只查布局。
      for (const width of EXTRA_WIDTHS) {
        await page.setViewportSize({ width, height: 740 });
        await studio.open(CONTROLLED);
        await checkLayout(page, `工作台 ${width}`);
        await studio.expand();
        await inViewport(page, studio.generate, `“生成”（${width}）`);
        await inViewport(page, studio.countControl, `张数（${width}）`);
        await inViewport(page, studio.model, `模型（${width}）`);
        for (const p of PAGES) {
          await page.goto(p.path);
          await expect(page.locator(p.ready)).toBeVisible();
          await checkLayout(page, `${p.path} ${width}`);
        }
      }
    } finally {
      await demoOptions(request, { delay_ms: '300-800', error_rate: 0 });
    }
  });
}

test('深色模式开关：记在浏览器里，刷新与换页后还是它，画出页面之前就生效', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto('/gallery');
  await expect(page.locator('section.gallery[data-hydrated="true"]')).toBeVisible();
  const toggle = page.getByRole('button', { name: '深色主题' });
  await expect(toggle).toHaveAttribute('aria-pressed', 'false');
  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const dark = await background();
  // 换页：服务器送来的 HTML 里没有 data-theme，页头的脚本在画出页面之前设上（第一次绘制就是深色）。
  await page.goto('/prompts');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  expect(await background()).toBe(dark);
  // 换回浅色，刷新后仍是浅色（系统偏好是浅色，选过的优先）。
  await page.getByRole('button', { name: '深色主题' }).click();
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  expect(await background()).not.toBe(dark);
});
