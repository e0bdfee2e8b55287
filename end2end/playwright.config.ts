import { defineConfig } from '@playwright/test';

// 测试服务器：在 .tmp/ 里以默认配置（内置演示上游）启动已构建好的调试版二进制。
// 二进制由 scripts/test.sh 里的 `cargo leptos build` 生成；站点文件在 target/site。
const PORT = Number(process.env.E2E_PORT ?? 3100);
const BIN = process.env.E2E_BIN ?? '../../target/debug/drafting-factory';

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    locale: 'zh-CN',
    launchOptions: {
      // 使用系统的 Chromium（apt 安装），不下载 Playwright 自带的浏览器。
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
    },
  },
  webServer: {
    command: `rm -rf .tmp && mkdir -p .tmp && cd .tmp && ${BIN} --listen 127.0.0.1:${PORT}`,
    url: `http://127.0.0.1:${PORT}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
