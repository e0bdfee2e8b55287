import { test, expect, uniq } from './fixtures/studio';
import { CONTROLLED_PORT } from '../playwright.config';

const CONTROLLED = `http://127.0.0.1:${CONTROLLED_PORT}`;

test('工作台的下拉框随模型变：只列所选模型做得到的宽高比与分辨率，联网搜索只对支持的模型显示', async ({ studio, page }) => {
  await studio.open(CONTROLLED);
  await studio.expand();
  const options = async (name: string) =>
    page.locator(`select[name="${name}"] option`).evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
  const model = page.locator('select[name="model"]');
  const search = page.getByLabel('联网搜索');

  // 默认（Nano Banana Pro）：10 种宽高比、1K/2K/4K，可以联网搜索。
  expect(await options('aspect_ratio')).toHaveLength(10);
  expect(await options('image_size')).toEqual(['1K', '2K', '4K']);
  await expect(search).toBeVisible();

  // 选 4K 与 16:9，再换到 Lite：只有 1K（4K 换成 1K），16:9 还在所以保留；联网搜索的开关消失。
  await studio.choose('分辨率', '4K');
  await studio.choose('宽高比', '16:9');
  await model.selectOption('gemini-3.1-flash-lite-image');
  await expect.poll(() => options('image_size')).toEqual(['1K']);
  await expect(page.locator('select[name="image_size"]')).toHaveValue('1K');
  await expect(page.locator('select[name="aspect_ratio"]')).toHaveValue('16:9');
  await expect(search).toBeHidden();

  // Nano Banana 2.1：多了 1:4、4:1、1:8、8:1；选 8:1 生成，卡片出图。
  await model.selectOption('gemini-nano-banana-2.1');
  await expect.poll(() => options('aspect_ratio')).toContain('8:1');
  expect(await options('aspect_ratio')).toHaveLength(14);
  await studio.choose('宽高比', '8:1');
  const prompt = `细长的山脉${Date.now().toString(36)}`;
  await studio.submit(prompt);
  await expect(studio.cardsWith(prompt)).toHaveAttribute('data-state', 'done');

  // 换回 Pro：8:1 它做不到，换成 1:1。
  await model.selectOption('gemini-3-pro-image');
  await expect(page.locator('select[name="aspect_ratio"]')).toHaveValue('1:1');
});

test('生成之前的估价随张数、分辨率与模型变（价格来自模型目录）；完成的卡片与批次标题写着花了多少', async ({ studio, page }) => {
  await studio.open(CONTROLLED);
  const estimate = page.getByTestId('estimate');
  const model = page.locator('select[name="model"]');
  // Nano Banana Pro：1K、2K 每张 $0.134，4K 每张 $0.24。
  await expect(estimate).toHaveText('约 $0.134');
  await studio.count(4);
  await expect(estimate).toHaveText('约 $0.536');
  await studio.choose('分辨率', '4K');
  await expect(estimate).toHaveText('约 $0.96');
  // Lite 在目录里没有价格：说未知，不说 $0。
  await model.selectOption('gemini-3.1-flash-lite-image');
  await expect(estimate).toHaveText('价格未知');
  await model.selectOption('gemini-3-pro-image');
  await studio.choose('分辨率', '1K');
  await studio.count(1);
  await expect(estimate).toHaveText('约 $0.134');

  const prompt = uniq('估价');
  await studio.prompt.fill(prompt);
  await studio.generate.click();
  const card = studio.cardsWith(prompt);
  await expect(card).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
  await expect(card.getByTestId('job-cost')).toHaveText('$0.134');
  const header = page.getByTestId('batch-header').filter({ hasText: prompt });
  await expect(header.getByTestId('batch-cost')).toHaveText('已花 $0.134 / 估计 $0.134');
});
