"""用 Google 官方的 google-genai Python SDK 直接调用演示上游（由 tests/it/openai_sdks.rs 启动演示上游后运行）。

演示上游是测试与基准测试里 Gemini 的替身，必须像 Google 的服务器一样读懂官方 SDK 发的请求：
文生图（三种宽高比与分辨率），以及带参考图的编辑（SDK 发的是 `inlineData.mime_type` 与 URL 安全的 base64）。
环境变量：DEMO_URL（演示上游地址）。
"""

import io
import os
import struct
import sys
import zlib

from google import genai
from google.genai import types


# 检查用 check() 而不是 assert：python -O（或环境变量 PYTHONOPTIMIZE）会把 assert 整句去掉，检查就悄悄没了。
if sys.flags.optimize:
    sys.exit("不能在 python -O 或 PYTHONOPTIMIZE 下运行：这个脚本的检查会被跳过")


def check(condition, message=""):
    """条件不成立就抛 AssertionError（与 assert 相同，但不会被 -O 去掉）。"""
    if not condition:
        raise AssertionError(message)


MODEL = "gemini-3-pro-image"
client = genai.Client(
    api_key="demo-key",
    vertexai=False,
    http_options=types.HttpOptions(base_url=os.environ["DEMO_URL"], api_version="v1beta", timeout=120_000),
)


def png_size(data: bytes) -> tuple[int, int]:
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "不是 PNG")
    return struct.unpack(">II", data[16:24])


def red_png(w: int = 32, h: int = 32) -> bytes:
    raw = b"".join(b"\x00" + b"\xfa\x0a\x0a" * w for _ in range(h))
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def final_image(response) -> bytes:
    """最后一张不是“思考”的图。"""
    images = [p.inline_data.data for p in response.parts if p.inline_data and not p.thought]
    check(images, f"没有正式图：{response}")
    return images[-1]


failures = []
for ratio, size, expected in [("1:1", "1K", (1024, 1024)), ("16:9", "2K", (2752, 1536)), ("9:16", "1K", (768, 1376))]:
    r = client.models.generate_content(
        model=MODEL,
        contents=f"海边的灯塔 {ratio} {size}",
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=ratio, image_size=size),
        ),
    )
    got = png_size(final_image(r))
    print(f"文生图 {ratio} {size}: {got}")
    if got != expected:
        failures.append(f"{ratio} {size}: 期望 {expected}，得到 {got}")

r = client.models.generate_content(
    model=MODEL,
    contents=[types.Part.from_bytes(data=red_png(), mime_type="image/png"), "保持构图，改成夜景"],
    config=types.GenerateContentConfig(
        response_modalities=["IMAGE"],
        image_config=types.ImageConfig(aspect_ratio="4:3", image_size="1K"),
    ),
)
got = png_size(final_image(r))
print(f"编辑 4:3 1K: {got}")
if got != (1200, 896):
    failures.append(f"编辑：期望 (1200, 896)，得到 {got}")

if failures:
    print("失败：", failures)
    sys.exit(1)
print("google-genai SDK：全部通过")
