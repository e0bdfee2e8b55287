import { test, expect, uniq, openAdminLink } from './fixtures/studio';

test('用量页：图按数据画出（每天每个上游一段柱子、每个上游一条成功率），页头圆点链到这里', async ({ studio, page }) => {
  // 用量页是管理员页：先凭管理员登录链接拿到会话（3100 没设管理员密码）。
  await openAdminLink(page);
  // 先生成一张，保证今天有数据。
  await studio.open();
  const prompt = uniq('用量');
  await studio.submit(prompt);
  // 只看这张：同一台服务器上别的测试留下的卡片（可能已完成）不能替它过关。
  const card = studio.cardsWith(prompt);
  await expect(card).toHaveCount(1);
  await expect(card).toHaveAttribute('data-state', 'done');

  const dot = page.getByTestId('health');
  await expect(dot).toHaveAttribute('data-health', 'green');
  await dot.click();
  await expect(page).toHaveURL(/\/usage$/);
  await expect(page.locator('section.usage[data-loaded="true"]')).toBeVisible();

  // 与页面同一份数据：柱子数 = 有图的（天, 上游）数，成功率条数 = 最近 24 小时有请求的上游数。
  let report: any;
  await expect(async () => {
    const res = await page.request.post('/api/admin/usage_report', { data: {}, headers: { origin: new URL(page.url()).origin } });
    expect(res.ok()).toBeTruthy();
    report = await res.json();
    expect(report.last_24h.length).toBeGreaterThan(0);
  }).toPass({ timeout: 15_000 });
  const segments = report.images_per_day.flat().filter((n: number) => n > 0).length;
  expect(segments).toBeGreaterThan(0);
  // 页面每 10 秒刷新：刷新后画的与数据一致。
  await page.reload();
  await expect(page.locator('section.usage[data-loaded="true"]')).toBeVisible();
  await expect(page.getByTestId('daily-chart').locator('rect[data-bar]')).toHaveCount(segments);
  await expect(page.getByTestId('upstream-chart').locator('rect[data-point]')).toHaveCount(report.last_24h.length);
  await expect(page.getByTestId('client-chart').locator('rect[data-bar]')).toHaveCount(report.clients_today.length);
  await expect(page.getByTestId('live-table').locator('tbody tr')).toHaveCount(report.live.length);
});
