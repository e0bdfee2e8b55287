import { defineConfig } from '@playwright/test';
import path from 'node:path';

// 测试服务器：在 .tmp/ 里以默认配置（内置演示上游）启动已构建好的调试版二进制。
// 二进制由 scripts/test.sh 里的 `cargo leptos build` 生成；站点文件在 target/site。
const PORT = Number(process.env.E2E_PORT ?? 3100);
const BIN = process.env.E2E_BIN ?? path.resolve(__dirname, '../target/debug/drafting-factory');
export const DEMO_PORT = PORT + 1;
export const CONTROLLED_PORT = PORT + 2;
export const SECOND_DEMO_PORT = PORT + 3;
/** 3106：团队账号的服务器（3104 是设置页测试切换监听地址用的）（启动前用 `user add` 建好两个成员；有账号就要登录）。 */
export const TEAM_PORT = PORT + 6;
/** 3106 上两个成员的密码。 */
export const MEMBER_PASSWORD = 'e2e-member-password';
/** 3100 没设管理员密码：设置页凭管理员登录链接 `/admin/token?token=…` 进入（令牌由环境变量指定，运维是从启动时的终端里拿到）。 */
export const ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdefghijklmnop';
/** 3102 的管理员密码（启动时用 hash-password 子命令生成哈希写进它的配置）。 */
export const ADMIN_PASSWORD = 'e2e-admin-password';

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  // html：截图（layout.spec.ts）附在报告里，报告在 end2end/playwright-report/（不自动打开）。
  reporter: [['list'], ['html', { open: 'never' }]],
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
  // 三个进程：
  // - 3100：默认配置（内置演示上游，演示模式）；
  // - 3101：独立的演示上游，测试可在运行中调它的延迟与故障率（POST /_demo/options）；
  // - 3102：上游指向 3101 的服务器，设了管理员密码，用于取消、失败、重试与设置页；
  // - 3103：第二个演示上游（设置页把上游切换到它）；
  // - 3106：有团队账号的服务器（内置演示上游），成员登录、生成、切换图库的“我的 / 全部”。
  webServer: [
    {
      command: `rm -rf .tmp && mkdir -p .tmp && cd .tmp && FACTORY_ADMIN_TOKEN=${ADMIN_TOKEN} ${BIN} --listen 127.0.0.1:${PORT}`,
      url: `http://127.0.0.1:${PORT}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      command: `${BIN} demo-upstream --listen 127.0.0.1:${DEMO_PORT} --delay-ms 300-800`,
      port: DEMO_PORT,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      command: `${BIN} demo-upstream --listen 127.0.0.1:${SECOND_DEMO_PORT}`,
      port: SECOND_DEMO_PORT,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      command:
        `rm -rf .tmp-b && mkdir -p .tmp-b && cd .tmp-b && ` +
        `HASH=$(echo '${ADMIN_PASSWORD}' | ${BIN} hash-password) && printf '%s\n' ` +
        `'[auth]' "admin_password_hash = \\"$HASH\\"" ` +
        `'[retry]' 'max_attempts = 2' 'base_delay_ms = 50' 'max_delay_ms = 100' ` +
        `'[[upstreams]]' 'name = "可控上游"' 'base_url = "http://127.0.0.1:${DEMO_PORT}"' ` +
        `'models = ["gemini-3-pro-image", "gemini-3.1-flash-lite-image", "gemini-nano-banana-2.1"]' > factory.toml && ` +
        `${BIN} --config factory.toml --listen 127.0.0.1:${CONTROLLED_PORT}`,
      url: `http://127.0.0.1:${CONTROLLED_PORT}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      command:
        `rm -rf .tmp-t && mkdir -p .tmp-t && cd .tmp-t && printf '[storage]\nroot = "storage"\n' > factory.toml && ` +
        `echo '${MEMBER_PASSWORD}' | ${BIN} user add --config factory.toml --display 成员一 member1 && ` +
        `echo '${MEMBER_PASSWORD}' | ${BIN} user add --config factory.toml member2 && ` +
        `${BIN} --config factory.toml --listen 127.0.0.1:${TEAM_PORT}`,
      url: `http://127.0.0.1:${TEAM_PORT}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe',
      stderr: 'pipe',
    },
  ],
});
