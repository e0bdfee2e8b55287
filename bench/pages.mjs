// 基准测试 c 节的每页计时：在 Chromium 里逐页第一次打开，量水合完成之前经网络收到的字节、请求数与水合用时，
// 不限速与 Slow 4G 各几次。由基准程序调用（bench/src/pages.rs），结果写成 JSON：
//   node bench/pages.mjs <基址> <页面 JSON> <结果文件>
//   页面 JSON：[{"path": "/", "ready": "section.studio[data-hydrated=\"true\"]"}, …]（取自 site-budget.toml）
//
// - 第一次打开：每次一个新的浏览器上下文（空缓存）。
// - 水合用时：从导航开始（performance.timeOrigin）到“水合完成的标志”出现（页面的 island 在水合后的 Effect 里设
//   data-hydrated="true"；初始化脚本里的 MutationObserver 记下那一刻的 performance.now()）。
// - 线上字节：水合完成之前开始的每个请求的 CDP Network.loadingFinished.encodedDataLength 之和（压缩后的响应体
//   加响应头，即线上收到的）；请求数同样只数这些。WASM 另计（文件名以 .wasm 结尾）。
// - Slow 4G（Lighthouse 的配置）：CDP Network.emulateNetworkConditions，往返 150 ms，下行 1.6 Mbit/s，上行 750 kbit/s。
// - 再次打开：同一个上下文里再打开一次，经网络下载的 WASM 字节（缓存命中与 304 不算）。
// - 取中位数（每种 BENCH_PAGE_RUNS 次，默认 3）。
//
// Chromium 与 Playwright 与端到端测试用的是同一份（/usr/bin/chromium、end2end/node_modules），
// 由 bash scripts/install-tools.sh --e2e 装好。
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('@playwright/test');

const [base, pagesJson, out] = process.argv.slice(2);
if (!base || !pagesJson || !out) {
  console.error('用法：node bench/pages.mjs <基址> <页面 JSON> <结果文件>');
  process.exit(2);
}
const pages = JSON.parse(pagesJson);
const RUNS = Number(process.env.BENCH_PAGE_RUNS ?? 3);
// CDP 的吞吐单位是字节/秒，延迟是毫秒（加在每个请求上，相当于一个往返）。
const SLOW_4G = {
  offline: false,
  latency: 150,
  downloadThroughput: 1_600_000 / 8,
  uploadThroughput: 750_000 / 8,
};
const TIMEOUT = 120_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (values) => values.reduce((a, b) => a + b, 0);
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const header = (headers, name) => {
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() === name) return String(value);
  }
  return '';
};

/** 在 `context` 里打开一次 `path`，等到 `ready` 出现。返回这次的计时与字节。 */
async function visit(context, path, ready, throttle) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  try {
    await cdp.send('Network.enable');
    if (throttle) await cdp.send('Network.emulateNetworkConditions', throttle);
    const requests = new Map();
    cdp.on('Network.requestWillBeSent', (e) => {
      if (requests.has(e.requestId) || e.request.url.startsWith('data:')) return;
      requests.set(e.requestId, {
        url: e.request.url,
        wall: e.wallTime * 1000,
        bytes: 0,
        done: false,
        status: 0,
        cached: false,
        encoding: '',
      });
    });
    cdp.on('Network.responseReceived', (e) => {
      const r = requests.get(e.requestId);
      if (!r) return;
      r.status = e.response.status;
      r.cached = r.cached || Boolean(e.response.fromDiskCache || e.response.fromPrefetchCache);
      r.encoding = header(e.response.headers, 'content-encoding');
    });
    cdp.on('Network.requestServedFromCache', (e) => {
      const r = requests.get(e.requestId);
      if (r) r.cached = true;
    });
    cdp.on('Network.loadingFinished', (e) => {
      const r = requests.get(e.requestId);
      if (!r) return;
      r.bytes = e.encodedDataLength;
      r.done = true;
    });
    cdp.on('Network.loadingFailed', (e) => {
      const r = requests.get(e.requestId);
      if (r) r.done = true;
    });
    await page.addInitScript((selector) => {
      const check = () => {
        if (window.__hydratedAt === undefined && document.querySelector(selector)) {
          window.__hydratedAt = performance.now();
        }
      };
      new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true });
    }, ready);
    await page.goto(base + path, { waitUntil: 'commit', timeout: TIMEOUT });
    await page.waitForSelector(ready, { state: 'attached', timeout: TIMEOUT });
    const { ms, wall } = await page.evaluate(() => {
      const at = window.__hydratedAt ?? performance.now();
      return { ms: at, wall: performance.timeOrigin + at };
    });
    const counted = () => [...requests.values()].filter((r) => r.wall <= wall);
    // 水合之前开始的请求：等它们的 loadingFinished 到齐（事件是异步送来的；最多等 5 秒）。
    const deadline = Date.now() + 5000;
    while (counted().some((r) => !r.done) && Date.now() < deadline) await sleep(50);
    const all = counted();
    const wasm = all.filter((r) => new URL(r.url).pathname.endsWith('.wasm'));
    const downloaded = wasm.filter((r) => !r.cached && r.status === 200);
    return {
      ms,
      requests: all.length,
      bytes: sum(all.map((r) => r.bytes)),
      wasmBytes: sum(wasm.map((r) => r.bytes)),
      wasmFiles: wasm.length,
      downloadedWasmBytes: sum(downloaded.map((r) => r.bytes)),
      encoding: wasm.map((r) => r.encoding).find((e) => e) ?? '',
    };
  } finally {
    await cdp.detach().catch(() => {});
    await page.close();
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const results = [];
try {
  for (const { path, ready } of pages) {
    const fast = [];
    const slow = [];
    let repeatWasmBytes = 0;
    for (let i = 0; i < RUNS; i++) {
      for (const [runs, throttle] of [
        [fast, null],
        [slow, SLOW_4G],
      ]) {
        const context = await browser.newContext({ locale: 'zh-CN' });
        try {
          runs.push(await visit(context, path, ready, throttle));
          if (i === 0 && throttle === null) {
            // 再次打开（缓存里已有第一次下载的文件）。
            repeatWasmBytes = (await visit(context, path, ready, null)).downloadedWasmBytes;
          }
        } finally {
          await context.close();
        }
      }
    }
    const both = [...fast, ...slow];
    const result = {
      path,
      requests: median(both.map((v) => v.requests)),
      wire_bytes: median(both.map((v) => v.bytes)),
      wasm_bytes: median(both.map((v) => v.wasmBytes)),
      wasm_files: median(both.map((v) => v.wasmFiles)),
      encoding: fast[0].encoding || '无',
      fast_ms: median(fast.map((v) => v.ms)),
      slow_ms: median(slow.map((v) => v.ms)),
      repeat_wasm_bytes: repeatWasmBytes,
    };
    console.log(
      `  ${path}：${result.requests} 个请求、${result.wire_bytes} B（WASM ${result.wasm_bytes} B，${result.wasm_files} 个文件，${result.encoding}）；` +
        `水合 ${result.fast_ms.toFixed(0)} ms，Slow 4G ${result.slow_ms.toFixed(0)} ms；再次打开下载 WASM ${repeatWasmBytes} B`,
    );
    results.push(result);
  }
} finally {
  await browser.close();
}
writeFileSync(out, JSON.stringify(results, null, 2));
