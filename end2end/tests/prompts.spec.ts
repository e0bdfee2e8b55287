import { test, expect, doneImageId } from './fixtures/studio';
import type { Page } from '@playwright/test';

const uniq = (word: string) => `${word}${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

async function openLibrary(page: Page) {
  await page.goto('/prompts');
  await expect(page.locator('section.prompt-library[data-hydrated="true"]')).toBeVisible();
}

test('从卡片保存提示词，在提示词库里搜到并填入，提交后库里的使用次数变为 1', async ({ studio, page }) => {
  await studio.open();
  const tag = uniq('灯塔');
  await studio.submit(`海边的${tag}，黄昏`);
  const card = studio.cardsWith(tag);
  await expect(card).toHaveAttribute('data-state', 'done');

  // 卡片上不常用的操作在“更多”（⋯）里。
  await card.getByTestId('card-more').click();
  await card.getByTestId('card-save-prompt').click();
  const form = page.getByRole('dialog', { name: '保存为提示词' }).getByTestId('prompt-form');
  await expect(form.locator('textarea[name="content"]')).toHaveValue(`海边的${tag}，黄昏`);
  await form.locator('input[name="title"]').fill(`标题${tag}`);
  await form.getByRole('button', { name: '保存' }).click();
  await expect(page.getByTestId('prompt-saved')).toContainText(`标题${tag}`);

  await studio.prompt.fill('');
  await page.getByTestId('open-picker').click();
  const picker = page.getByTestId('prompt-picker');
  await picker.getByPlaceholder('搜索标题、内容或标签').fill(tag);
  await expect(picker.getByTestId('pick-prompt')).toHaveCount(1);
  await picker.getByTestId('pick-prompt').click();
  await expect(picker).toBeHidden();
  await expect(studio.prompt).toHaveValue(`海边的${tag}，黄昏`);

  const used = page.waitForResponse((r) => r.url().endsWith('/api/use_prompt') && r.ok());
  await studio.generate.click();
  await used;
  await expect(studio.cardsWith(tag)).toHaveCount(2);

  await openLibrary(page);
  await page.getByPlaceholder('搜索标题、内容或标签').fill(tag);
  const item = page.getByTestId('prompt-item').filter({ hasText: `标题${tag}` });
  await expect(page.getByTestId('prompt-item')).toHaveCount(1);
  await expect(item.getByTestId('use-count')).toContainText('用过 1 次');
});

test('输入已存提示词的开头，用键盘采用候选；没有选中候选时 Enter 照常发送（库里 2000 条时测候选延迟）', async ({ studio, page }) => {
  const tag = uniq('城堡');
  // 库里放 2000 条（一次导入），其中一条是要找的。
  const prompts = Array.from({ length: 2000 }, (_, i) => ({
    title: `批量 ${i}`,
    content: `测试用的第 ${i} 条提示词：远山、湖泊与${i % 2 ? '晨雾' : '晚霞'}，编号 ${tag}-${i}`,
    tags: [`组${i % 20}`],
  }));
  prompts.push({ title: `城堡${tag}`, content: `${tag}在月光下的城堡，哥特风格`, tags: [] });
  const imported = await page.request.post('/api/import_prompts', { data: { data: { version: 1, prompts } } });
  expect(imported.ok(), await imported.text()).toBeTruthy();

  await studio.open();
  const suggestions = page.getByTestId('suggestions');
  const latencies: number[] = [];
  for (let round = 0; round < 5; round++) {
    await studio.prompt.fill('');
    await expect(suggestions).toBeHidden();
    await studio.prompt.pressSequentially(tag.slice(0, -1));
    const t0 = Date.now();
    await studio.prompt.press(tag.slice(-1));
    await expect(suggestions.getByRole('option').first()).toContainText(`${tag}在月光下的城堡`);
    latencies.push(Date.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  const inPage = await suggestions.getAttribute('data-latency-ms');
  console.log(`[候选延迟] 库里 ${prompts.length}+ 条：按键 → 候选显示 中位 ${latencies[2]} ms，最大 ${latencies[4]} ms（含 120 ms 的停顿等待；页面内测得 ${inPage} ms）`);

  // 没选中任何一条时 Esc 关上候选；↓ 选中第一条，Enter 采用它（不发送）。
  const before = await studio.cards.count();
  await studio.prompt.press('Escape');
  await expect(suggestions).toBeHidden();
  await studio.prompt.press('End');
  await studio.prompt.press('Backspace');
  await expect(suggestions).toBeVisible();
  await studio.prompt.press('ArrowDown');
  await expect(suggestions.getByRole('option').first()).toHaveAttribute('aria-selected', 'true');
  await studio.prompt.press('Enter');
  await expect(studio.prompt).toHaveValue(`${tag}在月光下的城堡，哥特风格`);
  await expect(suggestions).toBeHidden();
  expect(await studio.cards.count()).toBe(before);

  // 现在没有高亮的候选：Enter 发送。
  await studio.prompt.press('Enter');
  await expect(studio.cardsWith(`${tag}在月光下的城堡`)).toHaveCount(1);
});

test('给图片加星，在图库的“收藏”里找到它（网格与列表视图）', async ({ studio, page }) => {
  await studio.open();
  const starred = uniq('星');
  const plain = uniq('普通');
  await studio.submit(starred);
  await studio.submit(plain);
  const card = studio.cardsWith(starred);
  await doneImageId(card);
  await doneImageId(studio.cardsWith(plain));
  const star = card.getByTestId('star');
  await expect(star).toHaveAttribute('aria-pressed', 'false');
  await star.click();
  await expect(star).toHaveAttribute('aria-pressed', 'true');

  await page.goto('/gallery');
  await expect(page.locator('section.gallery[data-hydrated="true"]')).toBeVisible();
  await page.getByTestId('tab-favourites').click();
  const items = page.getByTestId('gallery-item');
  await expect(items.filter({ hasText: starred })).toHaveCount(1);
  await expect(items.filter({ hasText: plain })).toHaveCount(0);
  await expect(items.filter({ hasText: starred }).getByTestId('star')).toHaveAttribute('aria-pressed', 'true');

  await page.getByTestId('view-list').click();
  await expect(page.getByTestId('gallery-grid')).toHaveClass(/list/);
  await expect(items.filter({ hasText: starred }).locator('.list-only')).toBeVisible();

  // 在详情里取消收藏，回到“收藏”时它不在了。
  await items.filter({ hasText: starred }).getByTitle('查看详情').click();
  const detailStar = page.getByTestId('detail').getByTestId('star');
  await expect(detailStar).toHaveAttribute('aria-pressed', 'true');
  await detailStar.click();
  await expect(detailStar).toHaveAttribute('aria-pressed', 'false');
  await page.getByTestId('detail').getByRole('button', { name: '关闭' }).click();
  await page.getByTestId('tab-favourites').click();
  await expect(items.filter({ hasText: starred })).toHaveCount(0);
});
