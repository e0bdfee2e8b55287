import { test, expect, uniq, doneImageId } from './fixtures/studio';
import { MEMBER_PASSWORD, TEAM_PORT } from '../playwright.config';

// 团队账号（#38）：3106 上有两个成员（启动前用 `drafting-factory user add` 建好）。
const TEAM = `http://127.0.0.1:${TEAM_PORT}`;

test('成员登录、生成，图库在“全部”与“我的”之间切换', async ({ studio, page, playwright }) => {
  const theirs = uniq('别人的灯塔');
  const mine = uniq('我的帆船');
  // 另一个成员先经接口生成一张（和页面用的是同一个服务器函数）。
  const other = await playwright.request.newContext({ baseURL: TEAM });
  expect((await other.post('/login', { data: { name: 'member2', password: MEMBER_PASSWORD } })).status()).toBe(204);
  const submitted = await other.post('/api/submit_jobs', {
    data: { request: { prompt: theirs, count: 1 } },
    headers: { origin: TEAM },
  });
  expect(submitted.status()).toBe(200);

  // 没登录时工作台跳到登录页；按账号名登录后回到工作台，页头写着是谁。
  await page.goto(`${TEAM}/`);
  await expect(page).toHaveURL(/\/login/);
  await expect(page.locator('form.login[data-hydrated="true"]')).toBeVisible();
  await page.getByLabel('账号名').fill('member1');
  await page.getByLabel('密码').fill(MEMBER_PASSWORD);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page).toHaveURL(`${TEAM}/`);
  await expect(page.getByTestId('me')).toHaveText('成员一');

  await studio.open(TEAM);
  await studio.submit(mine);
  await doneImageId(studio.cardsWith(mine));
  // 工作台只有自己的卡片。
  await expect(studio.cardsWith(theirs)).toHaveCount(0);

  await page.goto(`${TEAM}/gallery`);
  await expect(page.locator('section.gallery[data-hydrated="true"]')).toBeVisible();
  const tile = (prompt: string) => page.getByTestId('gallery-item').filter({ hasText: prompt });
  // 别人的那张在后台生成：“全部”里两张都在（默认就是“全部”）。
  await expect(tile(mine)).toHaveCount(1);
  await expect(async () => {
    await page.getByRole('button', { name: '搜索', exact: true }).click();
    await expect(tile(theirs)).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await page.getByTestId('gallery-owner').selectOption('mine');
  await expect(tile(theirs)).toHaveCount(0);
  await expect(tile(mine)).toHaveCount(1);
  await page.getByTestId('gallery-owner').selectOption('all');
  await expect(tile(theirs)).toHaveCount(1);
  await other.dispose();
});
