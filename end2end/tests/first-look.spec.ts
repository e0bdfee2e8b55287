import { test, expect, doneImageId, openAdminLink } from './fixtures/studio';
import { createHash } from 'node:crypto';

// 新用户最初几分钟会碰到的：设置页的输入框不被保存栏挡住、未保存的更改有提示，
// 演示模式下一次生成 4 张，4 张各不相同。

for (const width of [375, 1280]) {
  test(`设置页（${width} 像素宽）：每个输入框都不被别的元素挡住，保存栏提示未保存的更改`, async ({ page }) => {
    await page.setViewportSize({ width, height: 800 });
    await openAdminLink(page);
    await expect(page.locator('section.settings[data-hydrated="true"]')).toBeVisible();
    await expect(page.getByLabel('监听地址')).toBeVisible();

    const inputs = page.locator('section.settings input:not([type=hidden]), section.settings select');
    const count = await inputs.count();
    expect(count).toBeGreaterThan(10);
    for (let i = 0; i < count; i++) {
      const input = inputs.nth(i);
      if (!(await input.isVisible())) continue;
      // 像用 Tab 键移到它那样，从页顶把它滚进视野（它会停在窗口底边），看它的正中心最上层的元素是不是它自己。
      const covered = await input.evaluate((el) => {
        window.scrollTo(0, 0);
        el.scrollIntoView({ block: 'nearest' });
        const r = el.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return top === el || el.contains(top) ? null : `${el.outerHTML.slice(0, 80)} 被 ${top?.outerHTML.slice(0, 80)} 挡住`;
      });
      expect(covered).toBeNull();
    }
    // 创建密钥的一行：看得见、能输入。
    const label = page.getByLabel('用途说明');
    await label.scrollIntoViewIfNeeded();
    await label.fill('只是看看');
    await expect(page.getByRole('button', { name: '创建密钥' })).toBeEnabled();

    // 改一个数字：保存栏显示“有未保存的更改”；离开页面时浏览器要确认。
    await expect(page.getByTestId('unsaved')).toHaveCount(0);
    await page.getByLabel('每个上游最多尝试次数').fill('4');
    await page.getByLabel('每个上游最多尝试次数').blur();
    await expect(page.getByTestId('unsaved')).toHaveText('有未保存的更改');
    let dialog = '';
    page.once('dialog', (d) => {
      dialog = d.type();
      void d.accept();
    });
    await page.getByRole('link', { name: '工作台' }).click();
    await expect.poll(() => dialog).toBe('beforeunload');
  });
}

test('演示模式：一次生成 4 张，4 张图各不相同', async ({ studio, page, request }) => {
  await studio.open();
  const prompt = `四张各不相同 ${Date.now()}`;
  await studio.submit(prompt, 4);
  const cards = studio.cardsWith(prompt);
  await expect(cards).toHaveCount(4);
  const hashes = new Set<string>();
  for (const card of await cards.all()) {
    const id = await doneImageId(card);
    const bytes = await (await request.get(`/files/${id}`)).body();
    expect(bytes.length).toBeGreaterThan(100);
    hashes.add(createHash('sha256').update(bytes).digest('hex'));
  }
  expect(hashes.size).toBe(4);
});
