import { test, expect, doneImageId, demoOptions, uniq } from './fixtures/studio';
import { readFileSync } from 'node:fs';
import { CONTROLLED_PORT } from '../playwright.config';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CONTROLLED = `http://127.0.0.1:${CONTROLLED_PORT}`;

test('选 4 张、生成：4 张卡片各自显示进度并完成出图；大图可看，可下载 PNG', async ({ studio, page }) => {
  await studio.open();
  await expect(page.getByText('演示模式')).toBeVisible();
  await expect(studio.generate).toBeDisabled();
  const prompt = uniq('雪山下的小木屋');
  await studio.submit(prompt, 4);

  const cards = studio.cardsWith(prompt);
  await expect(cards).toHaveCount(4);
  // 进行中能看到 0 与 100 之间的进度与阶段文字。
  await expect(cards.locator('[role="progressbar"][aria-valuenow]:not([aria-valuenow="0"]):not([aria-valuenow="100"])').first()).toBeVisible();
  await expect(cards.filter({ hasText: /等待上游|接收|保存|发送/ }).first()).toBeVisible();
  for (const card of await cards.all()) {
    await doneImageId(card);
    await expect(card.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100');
    const img = card.locator('.media img');
    await expect(img).toHaveJSProperty('complete', true);
    expect(await img.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(384);
  }

  // 推送延迟（服务器上状态变化 → 浏览器收到）：记录下来供报告，只做粗略的健全性检查。
  const live = page.locator('section.studio .live');
  const [p50Text, maxText] = [await live.getAttribute('data-lag-p50'), await live.getAttribute('data-lag-max')];
  // 属性缺失（一次推送都没量到）不能当成 0 蒙混过关。
  expect(p50Text).not.toBeNull();
  expect(maxText).not.toBeNull();
  const [p50, max] = [Number(p50Text), Number(maxText)];
  console.log(`推送延迟：中位 ${p50} ms，最大 ${max} ms`);
  expect(p50).toBeLessThan(1000);

  // 大图：原图 1024×1024，Esc 关闭。
  await cards.first().getByTitle('查看大图').click();
  const big = page.getByTestId('lightbox').locator('img');
  await expect(big).toHaveJSProperty('complete', true);
  expect(await big.evaluate((el: HTMLImageElement) => [el.naturalWidth, el.naturalHeight])).toEqual([1024, 1024]);
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('lightbox')).toBeHidden();

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    cards.first().getByRole('link', { name: '下载' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/\.png$/);
  expect(readFileSync(await download.path()).subarray(0, 8).equals(PNG)).toBeTruthy();
});

test('Enter 发送、Shift+Enter 换行；宽高比生效；刷新页面后卡片仍在', async ({ studio, page }) => {
  await studio.open();
  await studio.choose('宽高比', '16:9');
  const first = uniq('第一行');
  await studio.prompt.click();
  await studio.prompt.pressSequentially(first);
  await studio.prompt.press('Shift+Enter');
  await studio.prompt.pressSequentially('第二行');
  await expect(studio.prompt).toHaveValue(`${first}\n第二行`);
  await expect(studio.cardsWith(first)).toHaveCount(0);
  await studio.prompt.press('Enter');

  const card = studio.cardsWith(first);
  const id = await doneImageId(card);
  const res = await page.request.post('/api/get_image', { data: { id } });
  const detail = await res.json();
  expect([detail.width, detail.height]).toEqual([1376, 768]);

  await page.reload();
  await expect(page.locator('section.studio[data-hydrated="true"][data-connected="true"]')).toBeVisible();
  await expect(studio.cardsWith(first)).toHaveCount(1);
  expect(await doneImageId(studio.cardsWith(first))).toBe(id);
});

test('参考图：文件选择与拖放上传后生成图生图；非图片被拒绝且不排队', async ({ studio, page, allowHttpErrors }) => {
  allowHttpErrors('/uploads');
  await studio.open();
  // 先生成一张图，拿它的 PNG 作为要上传的文件。
  const base = uniq('底图');
  await studio.submit(base);
  const baseId = await doneImageId(studio.cardsWith(base));
  const png = Buffer.from(await (await page.request.get(`/files/${baseId}`)).body());

  // 1) 文件选择。
  await studio.fileInput.setInputFiles({ name: '参考.png', mimeType: 'image/png', buffer: png });
  await expect(studio.references).toHaveCount(1);
  const edit = uniq('换成夜景');
  await studio.submit(edit);
  const editId = await doneImageId(studio.cardsWith(edit));
  const detail = await (await page.request.post('/api/get_image', { data: { id: editId } })).json();
  expect(detail.mode).toBe('img2img');
  expect(detail.reference_ids).toHaveLength(1);

  // 2) 拖放：同样内容的文件按哈希只存一份，参考图不重复。
  await studio.references.getByRole('button', { name: '移除参考图' }).click();
  await expect(studio.references).toHaveCount(0);
  const dataTransfer = await page.evaluateHandle(async (bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], '拖进来.png', { type: 'image/png' }));
    return dt;
  }, [...png]);
  await page.locator('.prompt-bar').dispatchEvent('drop', { dataTransfer });
  await expect(studio.references).toHaveCount(1);
  await expect(studio.references.locator('img')).toHaveAttribute('src', `/uploads/${detail.reference_ids[0]}`);
  const dropped = uniq('加一轮月亮');
  await studio.submit(dropped);
  const droppedId = await doneImageId(studio.cardsWith(dropped));
  const d2 = await (await page.request.post('/api/get_image', { data: { id: droppedId } })).json();
  expect(d2.reference_ids).toEqual(detail.reference_ids);

  // 3) 不是图片：提示词栏旁显示原因，不加参考图、不产生卡片。
  const before = await studio.cards.count();
  await studio.fileInput.setInputFiles({ name: '说明.txt', mimeType: 'text/plain', buffer: Buffer.from('不是图片') });
  await expect(studio.error).toContainText('不是可识别的图片');
  await expect(studio.references).toHaveCount(1);
  expect(await studio.cards.count()).toBe(before);
});

test('张数只有一个控件（1–16 的下拉框）；超出 1–16 的请求被服务器拒绝，什么都不排队', async ({ studio, page, allowHttpErrors }) => {
  allowHttpErrors('/api/submit_jobs');
  await studio.open();
  const before = await studio.cards.count();
  // 只有一个张数控件（原来的 1/2/4/8/16 按钮与数字框合成了这一个），可选的正好是 1–16。
  await expect(page.getByLabel('张数', { exact: true })).toHaveCount(1);
  await expect(page.getByRole('group', { name: '张数' })).toHaveCount(0);
  const values = await studio.countControl.locator('option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
  expect(values).toEqual(Array.from({ length: 16 }, (_, i) => String(i + 1)));
  // 界面选不出越界的张数；直接调用接口：400、中文原因，什么都不排队。
  for (const count of [0, 17]) {
    const res = await page.request.post('/api/submit_jobs', {
      data: { request: { prompt: uniq('越界'), count } },
    });
    expect(res.status()).toBe(400);
    expect((await res.json()).message).toContain('一次可以生成 1 到 16 张');
  }
  await page.reload();
  await expect(page.locator('section.studio[data-connected="true"]')).toBeVisible();
  expect(await studio.cards.count()).toBe(before);
});

test('只用键盘：在提示词里输入、按 Enter，卡片出现；选项里的张数也能用键盘改', async ({ studio, page }) => {
  await studio.open();
  const prompt = uniq('键盘');
  await studio.prompt.focus();
  await expect(studio.options).toHaveAttribute('aria-expanded', 'true');
  await page.keyboard.type(prompt);
  await page.keyboard.press('Enter');
  await expect(studio.cardsWith(prompt)).toHaveCount(1);
  // 张数是原生下拉框：能拿到焦点，上下键就改（展开着的选项里，焦点还在提示词栏里）。
  await studio.countControl.focus();
  await page.keyboard.press('ArrowDown');
  await expect(studio.countControl).toHaveValue('2');
});

test('一次 16 张全部完成', async ({ studio }) => {
  test.setTimeout(120_000);
  await studio.open();
  const prompt = uniq('十六张');
  await studio.submit(prompt, 16);
  const cards = studio.cardsWith(prompt);
  await expect(cards).toHaveCount(16);
  await expect(cards.locator('[data-testid="job-state"]', { hasText: '已完成' })).toHaveCount(16, { timeout: 90_000 });
  await expect(cards.locator('.media img')).toHaveCount(16);
});

test.describe('可控上游（3101/3102）', () => {
  test.afterEach(async ({ request }) => {
    await demoOptions(request, { delay_ms: '300-800', error_rate: 0 });
  });

  test('取消生成中的卡片', async ({ studio, request }) => {
    await demoOptions(request, { delay_ms: '20000' });
    await studio.open(CONTROLLED);
    const prompt = uniq('要取消的');
    await studio.submit(prompt);
    const card = studio.cardsWith(prompt);
    await expect(card).toHaveAttribute('data-state', 'running');
    await expect(card).toContainText('等待上游');
    await card.getByRole('button', { name: '取消' }).click();
    await expect(card).toHaveAttribute('data-state', 'cancelled');
    await expect(card.getByTestId('job-state')).toHaveText('已取消');
    await expect(card.getByRole('button', { name: '重试' })).toBeVisible();
  });

  test('上游全部出错时卡片显示失败原因；降低错误率后重试成功', async ({ studio, request }) => {
    await demoOptions(request, { error_rate: 1, delay_ms: '0' });
    await studio.open(CONTROLLED);
    const prompt = uniq('会失败的');
    await studio.submit(prompt);
    const card = studio.cardsWith(prompt);
    await expect(card).toHaveAttribute('data-state', 'failed');
    await expect(card.getByTestId('job-state')).toHaveText('失败');
    await expect(card.getByTestId('job-error')).toContainText('可控上游');
    await card.getByText(/尝试记录（2 次）/).click();
    await expect(card.locator('.trace li')).toHaveCount(2);

    await demoOptions(request, { error_rate: 0 });
    await card.getByRole('button', { name: '重试' }).click();
    await doneImageId(card);
  });
});

test('375 像素宽的手机屏幕：没有横向滚动，提示词栏与卡片可用', async ({ studio, page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await studio.open();
  const prompt = uniq('手机上');
  await studio.submit(prompt, 2);
  const cards = studio.cardsWith(prompt);
  await expect(cards).toHaveCount(2);
  for (const card of await cards.all()) await doneImageId(card);
  await expect(studio.generate).toBeInViewport();
  await expect(cards.first().getByRole('link', { name: '下载' })).toBeVisible();
  const overflow = async () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(await overflow()).toBeLessThanOrEqual(0);
  await page.goto('/gallery');
  await expect(page.locator('section.gallery[data-hydrated="true"]')).toBeVisible();
  expect(await overflow()).toBeLessThanOrEqual(0);
});
