// 用官方 openai npm 包调用绘图工厂的 /v1（由 tests/openai_sdks.rs 启动服务器后以 node --test 运行）。
// 环境变量：FACTORY_URL、FACTORY_KEY。服务器配置为每分钟 6 次、突发 16 次。
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const BASE = process.env.FACTORY_URL;
const KEY = process.env.FACTORY_KEY;
const client = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: KEY, maxRetries: 0, timeout: 60_000 });
const isPng = (buf) => buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

test('images.generate：b64_json，n=4', async () => {
  const res = await client.images.generate({ model: 'gemini-3-pro-image', prompt: '四朵云', n: 4, response_format: 'b64_json' });
  assert.equal(res.data.length, 4);
  for (const item of res.data) assert.ok(isPng(Buffer.from(item.b64_json, 'base64')));
});

test('images.generate：url 指向本服务器，n=4', async () => {
  const res = await client.images.generate({ prompt: '一盏灯', n: 4, response_format: 'url', size: '1536x1024' });
  assert.equal(res.data.length, 4);
  assert.equal(new Set(res.data.map((d) => d.url)).size, 4);
  for (const { url } of res.data) {
    assert.ok(url.startsWith(BASE), url);
    assert.ok(isPng(Buffer.from(await (await fetch(url)).arrayBuffer())));
  }
});

async function referencePng(name) {
  const res = await client.images.generate({ prompt: `参考图 ${name}` });
  return OpenAI.toFile(Buffer.from(res.data[0].b64_json, 'base64'), `${name}.png`, { type: 'image/png' });
}

test('images.edit：一张参考图', async () => {
  const res = await client.images.edit({ image: await referencePng('one'), prompt: '改成雪景' });
  assert.ok(isPng(Buffer.from(res.data[0].b64_json, 'base64')));
});

test('images.edit：两张参考图', async () => {
  const res = await client.images.edit({ image: [await referencePng('a'), await referencePng('b')], prompt: '合成', n: 2 });
  assert.equal(res.data.length, 2);
});

test('chat.completions.create：非流式', async () => {
  const res = await client.chat.completions.create({ model: 'gemini-3-pro-image', messages: [{ role: 'user', content: '画一只蓝鸟' }] });
  const message = res.choices[0].message;
  assert.ok(message.content.includes('![image](data:image/png;base64,'));
  assert.ok(message.images[0].image_url.url.startsWith('data:image/png;base64,'));
});

test('chat.completions.create：流式', async () => {
  const stream = await client.chat.completions.create({ model: 'gemini-3-pro-image', messages: [{ role: 'user', content: '画一座山' }], stream: true });
  let content = '';
  for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
  assert.ok(content.includes(`](${BASE}/files/`), content);
});

test('错误的密钥抛出 AuthenticationError', async () => {
  const bad = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(bad.images.generate({ prompt: 'x' }), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

test('超过限流抛出 RateLimitError', async () => {
  // 限流是每分钟 6 次、突发 16 次：不管前面的用例用掉了多少、跑了多久，连续 40 个请求（便宜的 models.list）一定会碰到上限。
  for (let i = 0; i < 40; i++) {
    try {
      await client.models.list();
    } catch (e) {
      assert.ok(e instanceof OpenAI.RateLimitError, String(e));
      assert.equal(e.status, 429);
      return;
    }
  }
  assert.fail('40 次请求内应当被限流');
});
