import { test, expect, request as playwrightRequest } from '@playwright/test';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { ADMIN_TOKEN } from '../playwright.config';

// 恶意网页：主人的浏览器打开了别的网站（这里是测试自己在 http://127.0.0.2:3199 起的一个小服务器，
// 与绘图工厂不同源；用回环地址，浏览器的“本地网络访问”限制不会先把请求挡掉，请求真的会到达服务器），
// 它在后台向绘图工厂（http://127.0.0.1:3100）发请求：提交任务、清空回收站、上传、表单提交、连 /ws。
// 断言看的是服务器上的状态（没有排队、没有删除、没有上传），以及服务器确实收到并拒绝了这些请求（计数）。
const BASE = 'http://127.0.0.1:3100';
const EVIL = 'http://127.0.0.2:3199';
// 1×1 的 PNG。
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

async function deniedCount(api: Awaited<ReturnType<typeof playwrightRequest.newContext>>): Promise<number> {
  // /metrics 要管理员会话：api 上下文先打开过管理员登录链接（见下），Cookie 在它自己的存储里。
  const res = await api.get(`${BASE}/metrics`);
  expect(res.status(), '/metrics 应当可读').toBe(200);
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('access_denied_total') && l.includes('reason="cross_site"'))
    .map((l) => Number(l.split(' ').pop()))
    .reduce((a, b) => a + b, 0);
}

test('别的网站的页面不能排任务、删图、上传，也收不到 /ws 的一个字节', async ({ page }) => {
  const api = await playwrightRequest.newContext();
  // 管理员会话（读 /metrics 用）：打开管理员登录链接，Cookie 存在 api 上下文里。
  expect((await api.get(`${BASE}/admin/token?token=${ADMIN_TOKEN}`)).ok()).toBeTruthy();
  const tag = `HOSTILE-${Date.now()}`;
  // 先放一张图进回收站：恶意页面试图清空它。
  const made = await api.post(`${BASE}/api/generate_image`, { data: { request: { prompt: `回收站里的-${tag}` } } });
  expect(made.ok()).toBeTruthy();
  const id = (await made.json()).id as string;
  expect((await api.post(`${BASE}/api/trash_images`, { data: { ids: [id] } })).ok()).toBeTruthy();
  const before = await deniedCount(api);

  const hostile = `<!doctype html><meta charset="utf-8"><body><iframe name="sink"></iframe><script>
    window.results = { wsMessages: 0, wsDone: false };
    const base = ${JSON.stringify(BASE)};
    const body = JSON.stringify({ request: { prompt: ${JSON.stringify(tag)} } });
    fetch(base + '/api/submit_jobs', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body }).catch(() => {});
    fetch(base + '/api/empty_trash', { method: 'POST', mode: 'no-cors', body: '{}' }).catch(() => {});
    const png = Uint8Array.from(atob(${JSON.stringify(PNG_B64)}), (c) => c.charCodeAt(0));
    const form = new FormData();
    form.append('file', new Blob([png], { type: 'image/png' }), 'x.png');
    fetch(base + '/uploads', { method: 'POST', mode: 'no-cors', body: form }).catch(() => {});
    const f = document.createElement('form');
    f.method = 'POST'; f.action = base + '/api/submit_jobs'; f.enctype = 'text/plain'; f.target = 'sink';
    const input = document.createElement('input');
    input.name = '{"request":{"prompt":"' + ${JSON.stringify(tag)} + '-form","x":"'; input.value = '"}}';
    f.appendChild(input); document.body.appendChild(f); f.submit();
    const ws = new WebSocket(base.replace('http', 'ws') + '/ws');
    ws.onmessage = () => { window.results.wsMessages += 1; };
    ws.onclose = ws.onerror = () => { window.results.wsDone = true; };
  </script>`;
  const evil = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(hostile);
  });
  await new Promise<void>((resolve) => evil.listen(3199, '127.0.0.2', resolve));
  try {
    await page.goto(`${EVIL}/`);
    await expect.poll(() => page.evaluate(() => (window as any).results.wsDone), { timeout: 15_000 }).toBe(true);
  } finally {
    evil.close();
  }
  expect(await page.evaluate(() => (window as any).results.wsMessages)).toBe(0);

  // 服务器确实收到了这些请求并以“跨站”拒绝（提交、清空、上传、表单、/ws 握手，至少 5 个）。
  await expect.poll(async () => (await deniedCount(api)) - before, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);

  // 服务器上的状态：没有排进任何任务，回收站里的图还在，上传的图没有存下。
  const studio = await (await api.get(`${BASE}/`)).text();
  expect(studio).not.toContain(tag + '"');
  expect(studio).not.toContain(`${tag}-form`);
  const trash = await (await api.post(`${BASE}/api/list_images`, { data: { query: { trash: true, search: tag } } })).json();
  expect(trash.items.map((i: { id: string }) => i.id)).toContain(id);
  const sha = createHash('sha256').update(Buffer.from(PNG_B64, 'base64')).digest('hex');
  expect((await api.get(`${BASE}/uploads/${sha}`)).status()).toBe(404);
  await api.dispose();
});
