import { test, expect, doneImageId } from './fixtures/studio';
import { readFileSync } from 'node:fs';
import type { Page } from '@playwright/test';

/** 读出 zip 的中央目录：每个条目的文件名与内容开头的字节（条目未压缩存储）。 */
function zipEntries(buf: Buffer): { name: string; head: Buffer }[] {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  expect(eocd, '应有 zip 目录结尾记录').toBeGreaterThanOrEqual(0);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries = [];
  for (let i = 0; i < count; i++) {
    expect(buf.readUInt32LE(p)).toBe(0x02014b50);
    const method = buf.readUInt16LE(p + 10);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    expect(method, `${name} 应为未压缩存储`).toBe(0);
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    entries.push({ name, head: buf.subarray(dataStart, dataStart + 8) });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

async function openGallery(page: Page) {
  await page.goto('/gallery');
  await expect(page.locator('section.gallery[data-hydrated="true"]')).toBeVisible();
}

test('图库：生成后可搜索、筛选、打包下载、删除到回收站并恢复', async ({ studio, page }) => {
  const tag = `T${Date.now().toString(36)}`;
  // 一张从页面生成，一张经服务器函数生成（同一个接口）。
  await studio.open();
  await studio.submit(`${tag} 海边的灯塔`);
  await doneImageId(studio.cardsWith(`${tag} 海边的灯塔`));
  const res = await page.request.post('/api/generate_image', {
    data: { request: { prompt: `${tag} 湖上的帆船` } },
  });
  expect(res.ok()).toBeTruthy();

  await page.getByRole('link', { name: '图库' }).click();
  await expect(page.locator('section.gallery[data-hydrated="true"]')).toBeVisible();
  const items = page.getByTestId('gallery-item');
  const search = page.getByPlaceholder('搜索提示词');

  // 搜索：只剩灯塔那张。
  await search.fill(`${tag} 海边`);
  await search.press('Enter');
  await expect(items).toHaveCount(1);
  await expect(items.first()).toContainText('海边的灯塔');
  await expect(items.first().locator('img')).toHaveJSProperty('complete', true);
  expect(await items.first().locator('img').evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(384);

  // 筛选：图生图里没有它；起始日期设为明天，也没有它。
  await page.getByLabel('模式').selectOption('img2img');
  await expect(items).toHaveCount(0);
  await expect(page.getByText('没有符合条件的图片。')).toBeVisible();
  await page.getByLabel('模式').selectOption('');
  await expect(items).toHaveCount(1);
  const tomorrow = new Date(Date.now() + 86_400_000);
  const ymd = (d: Date) =>
    `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  await page.getByLabel('从').fill(ymd(tomorrow));
  await expect(items).toHaveCount(0);
  await page.getByLabel('从').fill(ymd(new Date()));
  await expect(items).toHaveCount(1);

  // 两张都选上，打包下载：zip 里是两张 PNG。
  await search.fill(tag);
  await search.press('Enter');
  await expect(items).toHaveCount(2);
  for (const item of await items.all()) await item.getByLabel('选择').check();
  await expect(page.getByText('已选 2 张')).toBeVisible();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: '打包下载' }).click(),
  ]);
  const entries = zipEntries(readFileSync(await download.path()));
  expect(entries).toHaveLength(2);
  for (const e of entries) {
    expect(e.name).toMatch(/\.png$/);
    expect(e.head.equals(PNG), `${e.name} 应是 PNG`).toBeTruthy();
  }

  // 删除灯塔那张：从列表消失，出现在回收站；恢复后回来。
  const lighthouse = items.filter({ hasText: '海边的灯塔' });
  for (const item of await items.all()) await item.getByLabel('选择').uncheck();
  await lighthouse.getByLabel('选择').check();
  await page.getByRole('button', { name: '删除' }).click();
  await expect(items).toHaveCount(1);
  await expect(items.first()).toContainText('湖上的帆船');

  await page.getByRole('tab', { name: '回收站' }).click();
  await expect(items).toHaveCount(1);
  await expect(items.first()).toContainText('海边的灯塔');
  await items.first().getByLabel('选择').check();
  await page.getByRole('button', { name: '恢复' }).click();
  await expect(items).toHaveCount(0);
  await expect(page.getByText('回收站是空的。')).toBeVisible();

  await page.getByRole('tab', { name: '全部图片' }).click();
  await expect(items).toHaveCount(2);
});

test('图库详情：参数与尝试记录，“以此图继续编辑”带着参考图回到工作台并生成图生图', async ({ studio, page }) => {
  const tag = `D${Date.now().toString(36)}`;
  const res = await page.request.post('/api/generate_image', {
    data: { request: { prompt: `${tag} 森林里的小屋`, aspect_ratio: '3:2' } },
  });
  expect(res.ok()).toBeTruthy();

  await openGallery(page);
  const search = page.getByPlaceholder('搜索提示词');
  await search.fill(tag);
  await search.press('Enter');
  const items = page.getByTestId('gallery-item');
  await expect(items).toHaveCount(1);
  await items.first().getByTitle('查看详情').click();

  const detail = page.getByTestId('detail');
  await expect(detail).toBeVisible();
  await expect(detail).toContainText('森林里的小屋');
  await expect(detail).toContainText('1264×848');
  await expect(detail).toContainText('3:2');
  await expect(detail).toContainText('尝试记录（1 次）');
  await page.keyboard.press('Escape');
  await expect(detail).toBeHidden();

  await items.first().getByTitle('查看详情').click();
  await detail.getByRole('link', { name: '以此图继续编辑' }).click();
  await expect(page.locator('section.studio[data-hydrated="true"][data-connected="true"]')).toBeVisible();
  await expect(page.getByTestId('reference')).toHaveCount(1);
  await studio.submit(`${tag} 给小屋加上积雪`);
  await doneImageId(studio.cardsWith(`${tag} 给小屋加上积雪`));

  await openGallery(page);
  await page.getByLabel('模式').selectOption('img2img');
  await search.fill(tag);
  await search.press('Enter');
  await expect(items).toHaveCount(1);
  await expect(items.first()).toContainText('给小屋加上积雪');
  await expect(items.first()).toContainText('图生图');
});
