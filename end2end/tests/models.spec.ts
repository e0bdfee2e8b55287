import { test, expect } from './fixtures/studio';
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
