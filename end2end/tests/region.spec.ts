import AxeBuilder from '@axe-core/playwright';
import { test, expect, doneImageId, uniq } from './fixtures/studio';
import type { Locator, Page } from '@playwright/test';

/** 这一块（画笔界面、对比滑块）的 axe 扫描：没有严重或危急的问题。 */
async function seriousProblems(page: Page, selector: string) {
  const results = await new AxeBuilder({ page }).include(selector).withTags(['wcag2a', 'wcag2aa']).analyze();
  return results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}：${v.help}`);
}

/** 画布上一点（画布像素，即原图像素）的不透明度。 */
const alphaAt = (canvas: Locator, x: number, y: number) =>
  canvas.evaluate((c: HTMLCanvasElement, [x, y]) => c.getContext('2d')!.getImageData(x, y, 1, 1).data[3], [x, y]);

test('局部修改：在大图上涂一笔（鼠标与手指）、撤销、提交；新卡片的结果只改了涂过的地方，打开是前后对比的滑块', async ({ studio, page }) => {
  await studio.open();
  const prompt = uniq('湖边的红色小船');
  await studio.submit(prompt, 1);
  const source = studio.cardsWith(prompt);
  const sourceId = await doneImageId(source);

  await source.getByTitle('查看大图').click();
  await page.getByTestId('region-start').click();
  const editor = page.getByTestId('region-editor');
  const canvas = editor.getByTestId('region-canvas');
  await expect(canvas).toHaveJSProperty('width', 1024);
  // 手机上手指拖动不能变成滚动页面。
  expect(await canvas.evaluate((c) => getComputedStyle(c).touchAction)).toBe('none');
  const box = (await canvas.boundingBox())!;
  const at = (fx: number, fy: number) => [box.x + box.width * fx, box.y + box.height * fy] as const;

  // 鼠标横着涂一笔（穿过正中），撤销后画布是空的，再涂一次。
  const stroke = async () => {
    await page.mouse.move(...at(0.35, 0.5));
    await page.mouse.down();
    for (const fx of [0.4, 0.45, 0.5, 0.55, 0.6, 0.65]) await page.mouse.move(...at(fx, 0.5));
    await page.mouse.up();
  };
  const undo = editor.getByRole('button', { name: '撤销' });
  await expect(undo).toBeDisabled();
  await stroke();
  expect(await alphaAt(canvas, 512, 512)).toBe(255);
  await undo.click();
  expect(await alphaAt(canvas, 512, 512)).toBe(0);
  await expect(undo).toBeDisabled();
  await stroke();
  // 手指（pointerType = touch）点一下左上。
  const [tx, ty] = at(0.25, 0.25);
  for (const type of ['pointerdown', 'pointerup']) {
    await canvas.dispatchEvent(type, { pointerType: 'touch', pointerId: 7, isPrimary: true, clientX: tx, clientY: ty, bubbles: true });
  }
  expect(await alphaAt(canvas, 256, 256)).toBe(255);
  expect(await alphaAt(canvas, 900, 900)).toBe(0);
  expect(await seriousProblems(page, '[data-testid="region-editor"]')).toEqual([]);
  // 375 像素宽的手机屏幕（中文字体下量）：画笔界面不横向溢出，按钮都在。
  await page.setViewportSize({ width: 375, height: 740 });
  expect(await editor.evaluate((e) => e.scrollWidth <= e.clientWidth + 1)).toBe(true);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
  for (const name of ['橡皮', '撤销', '清除', '提交局部修改', '取消']) {
    await editor.getByRole('button', { name }).scrollIntoViewIfNeeded();
    await expect(editor.getByRole('button', { name })).toBeInViewport();
  }
  await page.setViewportSize({ width: 1280, height: 720 });

  // 没写要改成什么：提示、不提交。
  const submit = editor.getByRole('button', { name: '提交局部修改' });
  await submit.click();
  await expect(editor.getByRole('alert')).toHaveText('写一句这块要改成什么');
  const edit = uniq('把船换成天鹅');
  await editor.getByLabel('这块要改成什么').fill(edit);
  await submit.click();
  await expect(page.getByTestId('lightbox')).toBeHidden();

  const card = studio.cardsWith(edit);
  const resultId = await doneImageId(card);
  expect(resultId).not.toBe(sourceId);

  // 结果与原图逐点比较：涂过的地方（正中、左上那一点）变了，远处的角落一点没变。
  const diff = await page.evaluate(async ([before, after]) => {
    const pixels = async (url: string) => {
      const img = new Image();
      img.src = url;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      return ctx.getImageData(0, 0, c.width, c.height);
    };
    const [a, b] = [await pixels(before), await pixels(after)];
    const same = (x: number, y: number) => {
      const i = (y * a.width + x) * 4;
      return [0, 1, 2, 3].every((k) => a.data[i + k] === b.data[i + k]);
    };
    let outsideChanged = 0;
    for (let y = 0; y < 200; y++) for (let x = 824; x < 1024; x++) if (!same(x, y)) outsideChanged++;
    for (let y = 824; y < 1024; y++) for (let x = 0; x < 1024; x++) if (!same(x, y)) outsideChanged++;
    return { size: [b.width, b.height], centre: same(512, 512), touch: same(256, 256), outsideChanged };
  }, [`/files/${sourceId}`, `/files/${resultId}`]);
  expect(diff).toEqual({ size: [1024, 1024], centre: false, touch: false, outsideChanged: 0 });

  // 打开新卡片：前后对比的滑块，左边原图、右边结果；键盘可调分界线。
  await card.getByTitle('查看大图').click();
  const compare = page.getByTestId('compare');
  await expect(compare.getByTestId('compare-before')).toHaveAttribute('src', `/files/${sourceId}`);
  await expect(compare.getByTestId('compare-after')).toHaveAttribute('src', `/files/${resultId}`);
  for (const img of [compare.getByTestId('compare-before'), compare.getByTestId('compare-after')]) {
    await expect(img).toHaveJSProperty('complete', true);
    expect(await img.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(1024);
  }
  const after = compare.getByTestId('compare-after');
  await expect(after).toHaveAttribute('style', /inset\(0(px)? 0(px)? 0(px)? 50%\)/);
  const range = compare.getByTestId('compare-range');
  await range.focus();
  await page.keyboard.press('Home');
  await expect(after).toHaveAttribute('style', /inset\(0(px)? 0(px)? 0(px)? 0%\)/);
  await page.keyboard.press('ArrowRight');
  await expect(after).toHaveAttribute('style', /inset\(0(px)? 0(px)? 0(px)? 1%\)/);
  // 在滑块上按方向键只调分界线，不换图。
  await expect(compare).toBeVisible();
  expect(await seriousProblems(page, '[data-testid="compare"]')).toEqual([]);
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('lightbox')).toBeHidden();
});
