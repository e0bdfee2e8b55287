import { test, expect, doneImageId } from './fixtures/studio';
import { execFileSync } from 'node:child_process';

/** 用 Python 的 zipfile 读下载的包：每个文件的前 4 个字节（十六进制）与 manifest.csv 的文字。 */
function unzip(path: string): { files: Record<string, string>; manifest: string } {
  const script = [
    'import json, sys, zipfile',
    'z = zipfile.ZipFile(sys.argv[1])',
    'files = {n: z.read(n)[:4].hex() for n in z.namelist()}',
    "print(json.dumps({'files': files, 'manifest': z.read('manifest.csv').decode('utf-8')}))",
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-c', script, path], { encoding: 'utf-8' }));
}

const uniq = (word: string) => `${word}${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

test('变量：预览“将生成 2 张”，生成后批次标题到“已完成 2 / 共 2”，下载本批得到两张图与清单', async ({ studio, page }) => {
  await studio.open();
  const tag = uniq('小屋');
  await studio.prompt.fill(`{风格}风格的${tag}`);
  await page.getByLabel('变量 风格 的值').fill('油画\n水彩');
  const preview = page.getByTestId('preview');
  await expect(preview).toContainText('将生成 2 张');
  await expect(preview).toContainText(`油画风格的${tag}`);
  await expect(preview).toContainText(`水彩风格的${tag}`);
  await studio.generate.click();

  const batch = page.getByTestId('batch').filter({ hasText: tag });
  await expect(batch).toHaveCount(1);
  await expect(batch.getByTestId('job-card')).toHaveCount(2);
  await expect(batch.getByTestId('batch-count')).toHaveText('已完成 2 / 共 2');
  await expect(batch.getByTestId('job-card').filter({ hasText: `油画风格的${tag}` })).toHaveCount(1);
  await expect(batch.getByTestId('job-card').filter({ hasText: `水彩风格的${tag}` })).toHaveCount(1);

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    batch.getByRole('link', { name: '下载本批' }).click(),
  ]);
  const zip = unzip(await download.path());
  const names = Object.keys(zip.files).sort();
  expect(names).toEqual([`1-油画风格的${tag}`.slice(0, 22) + '.png', `2-水彩风格的${tag}`.slice(0, 22) + '.png', 'manifest.csv'].sort());
  for (const name of names.filter((n) => n.endsWith('.png'))) {
    expect(zip.files[name]).toBe('89504e47');
  }
  const manifest = zip.manifest.replace(/^\uFEFF/, '').trim().split(/\r?\n/);
  expect(manifest[0]).toBe('序号,提示词,变量值,参考图,状态,原因,文件名');
  expect(manifest).toHaveLength(3);
  expect(manifest[1]).toContain(`油画风格的${tag}`);
  expect(manifest[1]).toContain('风格=油画');
  expect(manifest[2]).toContain('已完成');
});

/** 在浏览器里画三张不同颜色的 PNG（返回字节）。 */
async function threePngs(page: import('@playwright/test').Page): Promise<Buffer[]> {
  const arrays = await page.evaluate(async () => {
    const out: number[][] = [];
    for (const color of ['#c33', '#3c3', '#33c']) {
      const canvas = document.createElement('canvas');
      canvas.width = 48;
      canvas.height = 32;
      const ctx = canvas.getContext('2d')!;
      ctx.fillStyle = color;
      ctx.fillRect(0, 0, 48, 32);
      const blob: Blob = await new Promise((resolve) => canvas.toBlob((b) => resolve(b!), 'image/png'));
      out.push([...new Uint8Array(await blob.arrayBuffer())]);
    }
    return out;
  });
  return arrays.map((a) => Buffer.from(a));
}

test('批量改图：三张参考图得到三张卡片，每张显示它自己的原图；大图里原图与结果并排', async ({ studio, page }) => {
  await studio.open();
  await studio.expand();
  await page.getByRole('radio', { name: '批量改图（逐张）' }).click();
  const pngs = await threePngs(page);
  await studio.fileInput.setInputFiles(pngs.map((buffer, i) => ({ name: `原图${i + 1}.png`, mimeType: 'image/png', buffer })));
  await expect(studio.references).toHaveCount(3);
  await expect(studio.references.first()).toHaveAttribute('title', '原图1.png');
  const uploaded = await studio.references.locator('img').evaluateAll((imgs) => imgs.map((i) => i.getAttribute('src')));
  const tag = uniq('改成水彩');
  await studio.prompt.fill(tag);
  await expect(page.getByTestId('preview')).toContainText('将生成 3 张');
  await studio.generate.click();

  const batch = page.getByTestId('batch').filter({ hasText: tag });
  const cards = batch.getByTestId('job-card');
  await expect(cards).toHaveCount(3);
  const shown: string[] = [];
  for (const card of await cards.all()) {
    const refs = card.getByTestId('card-references').locator('img');
    await expect(refs).toHaveCount(1);
    shown.push((await refs.getAttribute('src'))!);
  }
  expect(shown.sort()).toEqual([...uploaded].sort());

  const first = cards.first();
  await doneImageId(first);
  const ownOriginal = await first.getByTestId('card-references').locator('img').getAttribute('src');
  await first.getByTitle('查看大图').click();
  const box = page.getByTestId('lightbox');
  await expect(box.getByTestId('lightbox-original').locator('img')).toHaveAttribute('src', ownOriginal!);
  await expect(box.getByTestId('lightbox-result')).toBeVisible();
  await expect(box).toContainText('模型说明');
  await page.keyboard.press('Escape');
  await expect(box).toBeHidden();
});

test('上次用的张数、宽高比、分辨率与模式在刷新后恢复', async ({ studio, page }) => {
  await studio.open();
  await studio.expand();
  await page.getByRole('radio', { name: '多条（一行一条）' }).click();
  await studio.count(2);
  await studio.choose('宽高比', '16:9');
  await studio.choose('分辨率', '2K');
  const tag = uniq('多条');
  await studio.prompt.fill(`${tag} 第一条\n${tag} 第二条`);
  await expect(page.getByTestId('preview')).toContainText('将生成 4 张');
  await studio.generate.click();
  await expect(page.getByTestId('batch').filter({ hasText: tag }).getByTestId('job-card')).toHaveCount(4);

  await page.reload();
  await expect(page.locator('section.studio[data-hydrated="true"][data-connected="true"]')).toBeVisible();
  await studio.expand();
  await expect(page.getByRole('radio', { name: '多条（一行一条）' })).toBeChecked();
  await expect(studio.countControl).toHaveValue('2');
  await expect(page.getByLabel('宽高比')).toHaveValue('16:9');
  await expect(page.getByLabel('分辨率')).toHaveValue('2K');
});
