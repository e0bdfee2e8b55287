import { test, expect, type Page } from '@playwright/test';

// 每页只下载自己的 island 的代码（#20：站点用 `cargo leptos build --split` 构建，island 都是 `#[island(lazy)]`）：
// 打开工作台不下载设置页、图库……的代码，反过来也一样。字节数见 `scripts/wasm-per-page.py` 与基准测试。

// 每个页面：地址、水合完成的标志、它的 island 的 loader 文件名的开头（拆分器按 island 函数名起名）。
const PAGES = [
  { path: '/', ready: 'section.studio[data-hydrated="true"]', loader: 'split_studio_loader_' },
  { path: '/gallery', ready: 'section.gallery[data-hydrated="true"]', loader: 'split_gallery_loader_' },
  { path: '/settings', ready: 'section.settings[data-hydrated="true"]', loader: 'split_settings_loader_' },
];
const ALL_LOADERS = [
  'split_studio_loader_',
  'split_gallery_loader_',
  'split_settings_loader_',
  'split_prompt_library_loader_',
  'split_usage_loader_',
  'split_login_form_loader_',
];

/** 打开一页、等它水合，返回这期间下载的 .wasm 文件名。 */
async function wasmLoadedBy(page: Page, path: string, ready: string): Promise<string[]> {
  const files: string[] = [];
  page.on('response', (r) => {
    const name = new URL(r.url()).pathname.split('/').pop() ?? '';
    if (name.endsWith('.wasm')) files.push(name);
  });
  await page.goto(path);
  await expect(page.locator(ready)).toBeVisible();
  return files;
}

for (const { path, ready, loader } of PAGES) {
  test(`打开 ${path} 只下载它自己的 island 的 WASM`, async ({ page }) => {
    const files = await wasmLoadedBy(page, path, ready);
    expect(files, '主 WASM').toContain('drafting-factory.wasm');
    const loaders = files.filter((f) => f.startsWith('split_'));
    expect(loaders.length, `下载的 loader：${loaders.join(', ')}`).toBe(1);
    expect(loaders[0].startsWith(loader), `应是 ${loader}…，实际 ${loaders[0]}`).toBeTruthy();
    for (const other of ALL_LOADERS.filter((l) => l !== loader)) {
      expect(files.some((f) => f.startsWith(other)), `${path} 不应下载 ${other}…`).toBeFalsy();
    }
  });
}
