import { test, expect } from './fixtures/studio';

test('演示模式下输入提示词、点“生成”，图像出现在卡片里', async ({ studio, page }) => {
  await studio.open();
  await expect(page.getByText('演示模式')).toBeVisible();
  await expect(studio.generate).toBeDisabled();

  await studio.prompt.fill('雪山下的小木屋，清晨');
  await expect(studio.generate).toBeEnabled();
  await studio.generate.click();

  const card = studio.cards.first();
  await expect(card).toBeVisible();
  const img = card.locator('img');
  await expect(img).toHaveJSProperty('complete', true);
  expect(await img.evaluate((el: HTMLImageElement) => [el.naturalWidth, el.naturalHeight])).toEqual([1024, 1024]);
  await expect(card).toContainText('雪山下的小木屋');
});

test('按 Enter 发送，所选宽高比生效；Shift+Enter 只换行', async ({ studio }) => {
  await studio.open();
  await studio.choose('宽高比', '16:9');
  await studio.prompt.click();
  await studio.prompt.pressSequentially('第一行');
  await studio.prompt.press('Shift+Enter');
  await studio.prompt.pressSequentially('第二行');
  await expect(studio.prompt).toHaveValue('第一行\n第二行');
  await expect(studio.cards).toHaveCount(0);

  await studio.prompt.press('Enter');
  const img = studio.cards.first().locator('img');
  await expect(img).toHaveJSProperty('complete', true);
  expect(await img.evaluate((el: HTMLImageElement) => [el.naturalWidth, el.naturalHeight])).toEqual([1376, 768]);
});
