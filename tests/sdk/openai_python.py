"""用官方 openai Python SDK 调用绘图工厂的 /v1（由 tests/openai_sdks.rs 启动服务器后运行）。

环境变量：FACTORY_URL（服务器地址）、FACTORY_KEY（有效的 API 密钥）。
服务器配置为每分钟 6 次、突发 16 次，用来触发 RateLimitError。
"""

import base64
import os
import sys
import urllib.request

import openai


# 检查用 check() 而不是 assert：python -O（或环境变量 PYTHONOPTIMIZE）会把 assert 整句去掉，检查就悄悄没了。
if sys.flags.optimize:
    sys.exit("不能在 python -O 或 PYTHONOPTIMIZE 下运行：这个脚本的检查会被跳过")


def check(condition, message=""):
    """条件不成立就抛 AssertionError（与 assert 相同，但不会被 -O 去掉）。"""
    if not condition:
        raise AssertionError(message)


BASE = os.environ["FACTORY_URL"]
KEY = os.environ["FACTORY_KEY"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

client = openai.OpenAI(base_url=f"{BASE}/v1", api_key=KEY, max_retries=0, timeout=60)
results = []


def case(fn):
    try:
        fn()
        results.append((fn.__name__, None))
    except Exception as e:  # noqa: BLE001 —— 任何异常都算这个用例失败
        results.append((fn.__name__, repr(e)))
    return fn


@case
def generate_b64_json_n4():
    res = client.images.generate(
        model="gemini-3-pro-image", prompt="四只风筝", n=4, response_format="b64_json"
    )
    check(len(res.data) == 4, len(res.data))
    for item in res.data:
        check(base64.b64decode(item.b64_json).startswith(PNG_MAGIC))


@case
def generate_url_n4():
    res = client.images.generate(model="gpt-image-1", prompt="一座桥", n=4, response_format="url", size="1024x1536")
    check(len(res.data) == 4, len(res.data))
    check(len({item.url for item in res.data}) == 4, "四张图应有四个不同的链接")
    for item in res.data:
        check(item.url.startswith(BASE), item.url)
        with urllib.request.urlopen(item.url) as r:
            check(r.read(8) == PNG_MAGIC)


def png_file(name):
    # 从服务器取一张刚生成的图，作为编辑的参考图。
    res = client.images.generate(prompt=f"参考图 {name}", response_format="b64_json")
    return (f"{name}.png", base64.b64decode(res.data[0].b64_json), "image/png")


@case
def edit_with_one_image():
    res = client.images.edit(image=png_file("one"), prompt="改成夜晚")
    check(base64.b64decode(res.data[0].b64_json).startswith(PNG_MAGIC))


@case
def edit_with_two_images():
    res = client.images.edit(image=[png_file("a"), png_file("b")], prompt="把两张合在一起", n=2)
    check(len(res.data) == 2)


def rgba_png(width, height, transparent_box):
    """一张 width × height 的 RGBA PNG：transparent_box（x0, y0, x1, y1）里完全透明，其余不透明（不用 Pillow）。"""
    import struct
    import zlib

    x0, y0, x1, y1 = transparent_box
    opaque, clear = b"\xff\xff\xff\xff", b"\xff\xff\xff\x00"
    rows = bytearray()
    for y in range(height):
        rows += b"\x00"
        if y0 <= y < y1:
            rows += opaque * x0 + clear * (x1 - x0) + opaque * (width - x1)
        else:
            rows += opaque * width

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")


@case
def edit_with_a_mask():
    # OpenAI 的局部修改：mask 与第一张图一样大，完全透明的地方是要改的。
    name, source, mime = png_file("masked")
    width, height = int.from_bytes(source[16:20], "big"), int.from_bytes(source[20:24], "big")
    mask = rgba_png(width, height, (width // 4, height // 4, width // 2, height // 2))
    res = client.images.edit(image=(name, source, mime), mask=("mask.png", mask, "image/png"), prompt="中间加一只猫")
    out = base64.b64decode(res.data[0].b64_json)
    check(out.startswith(PNG_MAGIC))
    check(out[16:24] == source[16:24], "贴回原图之后与原图一样大")
    # 尺寸不对的 mask：400，SDK 抛 BadRequestError，说明里有两边的尺寸。
    try:
        client.images.edit(image=(name, source, mime), mask=("mask.png", rgba_png(8, 8, (0, 0, 4, 4)), "image/png"), prompt="x")
    except openai.BadRequestError as e:
        check("8 × 8" in str(e), str(e))
    else:
        raise AssertionError("尺寸不对的 mask 应当 400")


@case
def chat_non_stream():
    res = client.chat.completions.create(
        model="gemini-3-pro-image", messages=[{"role": "user", "content": "画一个红苹果"}]
    )
    message = res.choices[0].message
    check("![image](data:image/png;base64," in message.content, message.content[:80])
    images = message.to_dict()["images"]
    check(images[0]["image_url"]["url"].startswith("data:image/png;base64,"))


@case
def chat_stream():
    stream = client.chat.completions.create(
        model="gemini-3-pro-image", messages=[{"role": "user", "content": "画一片绿叶"}], stream=True
    )
    content = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    check(f"]({BASE}/files/" in content, content)


@case
def bad_key_raises_authentication_error():
    bad = openai.OpenAI(base_url=f"{BASE}/v1", api_key="sk-wrong", max_retries=0)
    try:
        bad.images.generate(prompt="x")
    except openai.AuthenticationError as e:
        check(e.status_code == 401)
        check("密钥" in str(e), str(e))
        return
    raise AssertionError("应当抛出 AuthenticationError")


@case
def limit_raises_rate_limit_error():
    # 限流是每分钟 6 次、突发 16 次：不管前面的用例用掉了多少、跑了多久，连续 40 个请求（便宜的 models.list）
    # 一定会碰到上限。
    for _ in range(40):
        try:
            client.models.list()
        except openai.RateLimitError as e:
            check(e.status_code == 429)
            return
    raise AssertionError("40 次请求内应当被限流")


failed = [(name, err) for name, err in results if err]
for name, err in results:
    print(f"{'ok  ' if err is None else 'FAIL'} {name}{'' if err is None else ': ' + err}")
print(f"python-sdk: {len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
