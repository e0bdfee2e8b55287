import { test, expect, doneImageId, openAdminLink, demoOptions, uniq } from './fixtures/studio';
import { ADMIN_PASSWORD, CONTROLLED_PORT, DEMO_PORT, SECOND_DEMO_PORT } from '../playwright.config';

const CONTROLLED = `http://127.0.0.1:${CONTROLLED_PORT}`;

test('设置页：登录、把上游换成第二个演示上游并测试连接、保存后生效、换回、退出登录', async ({ studio, page, request, allowHttpErrors }) => {
  allowHttpErrors('/api/admin/get_settings', '/api/admin/save_settings', '/admin/login');
  await page.goto(`${CONTROLLED}/settings`);
  await expect(page.locator('section.settings[data-hydrated="true"]')).toBeVisible();
  const password = page.getByLabel('管理员密码');
  await expect(password).toBeVisible();

  await password.fill('不对的密码');
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('alert')).toContainText('密码不对');
  await password.fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: '登录' }).click();

  const upstream = page.getByTestId('upstream').first();
  await expect(upstream.getByLabel('名称')).toHaveValue('可控上游');
  const address = upstream.getByLabel('地址');
  await expect(address).toHaveValue(`http://127.0.0.1:${DEMO_PORT}`);

  // 换到第二个演示上游，测试连接（真实的一次小请求）。
  await address.fill(`http://127.0.0.1:${SECOND_DEMO_PORT}`);
  await address.blur();
  await upstream.getByRole('button', { name: '测试连接' }).click();
  await expect(upstream.getByTestId('probe')).toContainText('✓ 连接正常');
  // 获取模型列表，点一个填入“模型”。
  await upstream.getByRole('button', { name: '获取模型列表' }).click();
  const modelList = upstream.getByTestId('models');
  await modelList.getByRole('button', { name: 'gemini-nano-banana-2.1' }).click();
  await expect(upstream.getByLabel('模型')).toHaveValue('gemini-nano-banana-2.1');
  await upstream.getByTestId('models').getByRole('button', { name: 'gemini-3-pro-image' }).click();
  await expect(upstream.getByLabel('模型')).toHaveValue('gemini-3-pro-image');
  // 不可用的地址：测试连接说明原因。
  await page.getByRole('button', { name: '添加上游' }).click();
  const broken = page.getByTestId('upstream').nth(1);
  await broken.getByLabel('地址').fill('http://127.0.0.1:9');
  await broken.getByLabel('地址').blur();
  await broken.getByRole('button', { name: '测试连接' }).click();
  await expect(broken.getByTestId('probe')).toContainText('✗');
  await broken.getByRole('button', { name: '删除' }).click();
  await expect(page.getByTestId('upstream')).toHaveCount(1);

  await page.getByRole('button', { name: '保存' }).click();
  await expect(page.getByRole('alert')).toContainText('已保存');

  // 生效：工作台生成的图来自新上游。两个上游同名，所以让旧上游（3101）此时只回 503：
  // 这张卡片能完成，只能是新上游（3103）画的；设置没生效时它会失败。
  await demoOptions(request, { error_rate: 1, delay_ms: '0' });
  try {
    await studio.open(CONTROLLED);
    const prompt = uniq('设置页换上游后');
    await studio.submit(prompt);
    const card = studio.cardsWith(prompt);
    await expect(card).toHaveCount(1);
    await doneImageId(card);
  } finally {
    await demoOptions(request, { delay_ms: '300-800', error_rate: 0 });
  }

  await page.goto(`${CONTROLLED}/settings`);
  const again = page.getByTestId('upstream').first().getByLabel('地址');
  await expect(again).toHaveValue(`http://127.0.0.1:${SECOND_DEMO_PORT}`);
  await again.fill(`http://127.0.0.1:${DEMO_PORT}`);
  await again.blur();
  await page.getByRole('button', { name: '保存' }).click();
  await expect(page.getByRole('alert')).toContainText('已保存');

  // 无效值：说明原因，不保存。
  const attempts = page.getByLabel('每个上游最多尝试次数');
  await attempts.fill('0');
  await attempts.blur();
  await page.getByRole('button', { name: '保存' }).click();
  await expect(page.getByRole('alert')).toContainText('retry.max_attempts');
  await page.reload();
  await expect(page.getByLabel('每个上游最多尝试次数')).toHaveValue('2');

  // API 密钥：创建（原文只显示一次）、能用、吊销。
  await page.getByLabel('用途说明').fill('端到端测试');
  await page.getByRole('button', { name: '创建密钥' }).click();
  const shown = page.getByTestId('new-key').locator('code');
  await expect(shown).toHaveText(/^sk-df-/);
  const key = (await shown.textContent())!;
  const row = page.getByTestId('key-row').filter({ hasText: '端到端测试' });
  await expect(row).toHaveCount(1);
  await expect(row).not.toContainText(key);
  const models = await page.request.get(`${CONTROLLED}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  expect(models.status()).toBe(200);
  await row.getByRole('button', { name: '吊销' }).click();
  await expect(page.getByTestId('key-row')).toHaveCount(0);
  await expect(page.getByRole('alert')).toContainText('已吊销');

  // 改端口：页面跳到新地址（会话仍在），再改回来。
  const listen = page.getByLabel('监听地址');
  await expect(listen).toHaveValue(`127.0.0.1:${CONTROLLED_PORT}`);
  for (const port of [CONTROLLED_PORT + 2, CONTROLLED_PORT]) {
    await page.getByLabel('监听地址').fill(`127.0.0.1:${port}`);
    await page.getByLabel('监听地址').blur();
    await page.getByRole('button', { name: '保存' }).click();
    await page.waitForURL(`http://127.0.0.1:${port}/settings`);
    await expect(page.getByLabel('监听地址')).toHaveValue(`127.0.0.1:${port}`);
  }

  await page.getByRole('button', { name: '退出登录' }).click();
  await expect(page.getByLabel('管理员密码')).toBeVisible();
  await page.reload();
  await expect(page.getByLabel('管理员密码')).toBeVisible();
});

test('没有设置管理员密码时，凭启动时打印的管理员登录链接打开设置页', async ({ page, allowHttpErrors }) => {
  allowHttpErrors('/api/admin/get_settings');
  await page.goto('/settings');
  await expect(page.locator('section.settings[data-hydrated="true"]')).toBeVisible();
  await expect(page.getByText('管理员登录链接').first()).toBeVisible();
  await expect(page.getByLabel('存储目录')).toHaveCount(0);
  await openAdminLink(page);
  await expect(page.getByText('未设置管理员密码：凭启动时终端里打印的管理员登录链接进入')).toBeVisible();
  await expect(page.getByLabel('存储目录')).toHaveValue(/storage$/);
  // 存储根写成 s3:// 才出现对象存储的连接；密钥一栏是密码框、从空开始。不保存。
  await expect(page.getByLabel('对象存储密钥')).toHaveCount(0);
  await page.getByLabel('存储目录').fill('s3://huitu/factory');
  await page.getByLabel('存储目录').dispatchEvent('change');
  await expect(page.getByLabel('区域')).toBeVisible();
  await expect(page.getByLabel('对象存储密钥')).toHaveAttribute('type', 'password');
  await expect(page.getByLabel('对象存储密钥')).toHaveValue('');
});
