import { test, expect, type Page } from '@playwright/test';

// 每页只下载自己的 island 的代码（#20：站点用 `cargo leptos build --split` 构建，island 都是 `#[island(lazy)]`）：
// 打开工作台不下载设置页、图库……的代码，反过来也一样。字节数见 `scripts/wasm-per-page.py` 与基准测试。
// 服务器在 <head> 里预加载本页 island 的块（src/web/preload.rs）：它们与主 WASM 一起下载，
// 加载器之后 fetch 同一个文件时用的是预加载的响应——每个 .wasm 只经网络下载一次。

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

/** 打开一页、等它水合，返回这期间经网络下载的 .wasm：文件名 → 下载次数（缓存与预加载的复用不算下载）。 */
async function wasmLoadedBy(page: Page, path: string, ready: string): Promise<Map<string, number>> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const urls = new Map<string, string>();
  const downloads = new Map<string, number>();
  cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
  cdp.on('Network.loadingFinished', (e) => {
    const url = urls.get(e.requestId);
    if (!url) return;
    const name = new URL(url).pathname.split('/').pop() ?? '';
    // 从内存或磁盘缓存取的响应，线上字节只有几十（或 0）；真正的下载至少是文件本身。
    if (name.endsWith('.wasm') && e.encodedDataLength > 100) {
      downloads.set(name, (downloads.get(name) ?? 0) + 1);
    }
  });
  await page.goto(path);
  await expect(page.locator(ready)).toBeVisible();
  await cdp.detach();
  return downloads;
}

for (const { path, ready, loader } of PAGES) {
  test(`打开 ${path} 只下载它自己的 island 的 WASM，每个文件一次`, async ({ page }) => {
    const downloads = await wasmLoadedBy(page, path, ready);
    const files = [...downloads.keys()];
    expect(files, '主 WASM').toContain('drafting-factory.wasm');
    const loaders = files.filter((f) => f.startsWith('split_'));
    expect(loaders.length, `下载的 loader：${loaders.join(', ')}`).toBe(1);
    expect(loaders[0].startsWith(loader), `应是 ${loader}…，实际 ${loaders[0]}`).toBeTruthy();
    for (const other of ALL_LOADERS.filter((l) => l !== loader)) {
      expect(files.some((f) => f.startsWith(other)), `${path} 不应下载 ${other}…`).toBeFalsy();
    }
    const twice = [...downloads].filter(([, n]) => n > 1).map(([f]) => f);
    expect(twice, '预加载的块被加载器再下载了一次（预加载与 fetch 的模式不一致？）').toEqual([]);
  });

  test(`${path} 的 <head> 预加载拆分加载器与本页 island 的块`, async ({ page }) => {
    await page.goto(path);
    await expect(page.locator(ready)).toBeVisible();
    await expect(page.locator('head link[rel="modulepreload"][href*="__wasm_split."]')).toHaveCount(1);
    const preloaded = await page
      .locator('head link[rel="preload"][as="fetch"][type="application/wasm"][crossorigin]')
      .evaluateAll((links) => links.map((l) => (l.getAttribute('href') ?? '').split('/').pop() ?? ''));
    const loaders = preloaded.filter((f) => f.startsWith('split_'));
    expect(loaders, `预加载的 loader：${loaders.join(', ')}`).toHaveLength(1);
    expect(loaders[0].startsWith(loader), `应是 ${loader}…，实际 ${loaders[0]}`).toBeTruthy();
    // 除了 leptos 自己预加载的主 WASM，其余都是本页的块（chunk_* 与自己的 split_*）。
    const others = preloaded.filter(
      (f) => f !== 'drafting-factory.wasm' && !f.startsWith('chunk_') && !f.startsWith(loader),
    );
    expect(others).toEqual([]);
  });
}
