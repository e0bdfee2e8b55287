import AxeBuilder from '@axe-core/playwright';
import { test, expect, doneImageId, openAdminLink, uniq, StudioPage } from './fixtures/studio';
import type { Page } from '@playwright/test';

// #33：五个页面在浅色与深色下用 axe-core 扫描（WCAG 2 A 与 AA 的规则），没有“严重”或“危急”的问题
// （对比度、名字、角色……）；每个控件都有中文的名字（页头的状态圆点、卡片的进度条也是）。

const PAGES = [
  { path: '/', ready: 'section.studio[data-hydrated="true"][data-connected="true"]' },
  { path: '/gallery', ready: 'section.gallery[data-hydrated="true"]' },
  { path: '/prompts', ready: 'section.prompt-library[data-hydrated="true"]' },
  { path: '/usage', ready: 'section.usage[data-loaded="true"]' },
  { path: '/settings', ready: 'section.settings[data-hydrated="true"]' },
] as const;

/** 有名字才算的控件角色（aria 快照里的写法）。 */
const CONTROL_ROLES = 'button|link|textbox|searchbox|combobox|listbox|checkbox|radio|switch|tab|slider|spinbutton|progressbar|menuitem';
const CJK = /[\u3400-\u9fff]/;

/** 页面上看得见的控件里，名字是空的或不含中文的（按 aria 快照：`- button "生成"`）。 */
async function controlsWithoutChineseName(page: Page): Promise<string[]> {
  const snapshot = await page.locator('body').ariaSnapshot();
  // 角色名后面必须是名字、属性或行尾（`radiogroup` 不是 `radio`）。
  const line = new RegExp(`^\\s*- (${CONTROL_ROLES})(?: "((?:[^"\\\\]|\\\\.)*)")?(?=$|[\\s:\\[])`);
  return snapshot
    .split('\n')
    .map((l) => line.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .filter((m) => !m[2] || !CJK.test(m[2]))
    .map((m) => `${m[1]} “${m[2] ?? ''}”`);
}

for (const theme of ['light', 'dark'] as const) {
  test(`无障碍（${theme === 'light' ? '浅色' : '深色'}）：五个页面 axe 扫描没有严重问题，控件都有中文名字`, async ({ page }) => {
    test.setTimeout(120_000);
    await page.addInitScript((value) => localStorage.setItem('drafting-factory.theme', value), theme);
    await page.emulateMedia({ colorScheme: theme });
    // 用量页与设置页要管理员会话（3100 没设管理员密码，凭登录链接）。
    await openAdminLink(page);
    // 工作台上至少有一张完成的卡片（卡片、进度条、按钮都在扫描之内）。
    const studio = new StudioPage(page);
    await studio.open();
    const prompt = uniq('无障碍扫描');
    await studio.submit(prompt);
    await doneImageId(studio.cardsWith(prompt));

    for (const { path, ready } of PAGES) {
      await page.goto(path);
      await expect(page.locator(ready)).toBeVisible();
      await expect(page.locator('html')).toHaveAttribute('data-theme', theme);
      // 工作台：展开提示词栏的选项，选项也在扫描之内。
      if (path === '/') await studio.expand();
      const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
      const serious = results.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id}（${v.impact}）${v.help}：${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join('；')}`);
      expect(serious, `${path}（${theme}）的严重问题`).toEqual([]);
      expect(await controlsWithoutChineseName(page), `${path}（${theme}）没有中文名字的控件`).toEqual([]);
    }

    // 页头的状态圆点与卡片的进度条有中文名字。
    await page.goto('/');
    await expect(page.getByTestId('health')).toHaveAccessibleName(/^上游状态：.+，查看用量$/);
    await expect(studio.cardsWith(prompt).getByRole('progressbar')).toHaveAccessibleName('生成进度');
  });
}
