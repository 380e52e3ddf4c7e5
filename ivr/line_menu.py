"""The LINE rich menu: the four tiles under the chat (予約する, 予約の確認, よくある質問,
窓口の混雑), each sending the postback the chat answers, and a picture for them.

The picture is drawn with Pillow when it is installed (each tile's words on it); without it, a
plain PNG of four coloured tiles is made here, and the ward uploads its own designed picture
with ``madoguchi line setup --image menu.png`` (2500x843 pixels, the tiles in this order).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from ivr.line_turn import postback, text_in

WIDTH, HEIGHT = 2500, 843
TILES = (
    ("menu_book", "book"),
    ("menu_check", "check"),
    ("menu_faq", "faq"),
    ("menu_crowd", "crowd"),
)
# The words on the bar that opens the menu, by language (English's elsewhere).
CHAT_BAR = {"ja": "メニュー", "ko": "메뉴", "zh": "菜单", "ne": "मेनु", "easy": "メニュー"}
# The tiles' colours: the booking pages' blue first, then calmer ones.
COLOURS = ((0x1D, 0x4E, 0x89), (0x2E, 0x7D, 0x32), (0x6D, 0x4C, 0x41), (0x45, 0x5A, 0x64))


def rich_menu(language: str = "ja") -> dict[str, Any]:
    """The rich menu's definition, as LINE's ``POST /v2/bot/richmenu`` takes it."""
    tile = WIDTH // len(TILES)
    return {
        "size": {"width": WIDTH, "height": HEIGHT},
        "selected": True,
        "name": "madoguchi",
        "chatBarText": CHAT_BAR.get(language, "Menu"),
        "areas": [
            {
                "bounds": {"x": i * tile, "y": 0, "width": tile, "height": HEIGHT},
                "action": {
                    "type": "postback",
                    "label": text_in(language, key),
                    "data": postback(action),
                    "displayText": text_in(language, key),
                },
            }
            for i, (key, action) in enumerate(TILES)
        ],
    }


def menu_picture(language: str = "ja") -> bytes:
    """A PNG for the rich menu: with the tiles' words where Pillow is installed."""
    try:
        return _drawn(language)
    except ImportError:
        return _plain_tiles()


def _drawn(language: str) -> bytes:
    import io

    # Optional: not a dependency of the service.
    from PIL import Image, ImageDraw, ImageFont  # type: ignore[import-not-found,unused-ignore]

    picture = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(picture)
    tile = WIDTH // len(TILES)
    try:
        font: Any = ImageFont.truetype("NotoSansCJK-Regular.ttc", 110)
    except OSError:
        font = ImageFont.load_default()
    for i, (key, _) in enumerate(TILES):
        draw.rectangle((i * tile, 0, (i + 1) * tile - 8, HEIGHT), fill=COLOURS[i])
        words = text_in(language, key)
        draw.text((i * tile + tile // 2, HEIGHT // 2), words, fill="white", font=font, anchor="mm")
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def _plain_tiles() -> bytes:
    """Four coloured tiles with a white gap between them, as a PNG (no dependency)."""
    tile = WIDTH // len(TILES)
    row = bytearray()
    for x in range(WIDTH):
        i = min(x // tile, len(TILES) - 1)
        row += bytes((255, 255, 255)) if x % tile >= tile - 8 else bytes(COLOURS[i])
    raw = b"".join(b"\x00" + bytes(row) for _ in range(HEIGHT))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
