"""Small text for pictures: Pillow's default font rendered once per string, then blitted with numpy.

All text in convscope pictures sits on a flat background color, so a string is rendered to an RGB patch
already blended onto that background and cached; drawing it again is a single slice assignment.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]

FONT_SIZE = 10
LINE_H = 13  # height of a caption line (font ascent + descent)
LABEL_H = 11  # height of a channel-label strip above a tile (digits only need ~9 px)
_Y_OFFSET = -1  # the default font leaves ~2 px above digits; pull text up a little


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(FONT_SIZE)


@lru_cache(maxsize=8192)
def text_width(text: str) -> int:
    """Width in pixels of ``text`` drawn by :func:`text_patch` (including 1 px of padding each side)."""
    return int(np.ceil(_font().getlength(text))) + 2 if text else 0


@lru_cache(maxsize=8192)
def text_patch(text: str, fg: Color, bg: Color, height: int = LINE_H) -> np.ndarray:
    """Render ``text`` in color ``fg`` on a flat ``bg`` background.

    Args:
        text: One line of text.
        fg: Text color.
        bg: Background color.
        height: Patch height in pixels (text is top-aligned, descenders may be cut below ~11 px).

    Returns:
        Read-only uint8 ``(height, text_width(text), 3)`` array.
    """
    width = max(text_width(text), 1)
    mask_img = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask_img).text((1, _Y_OFFSET), text, fill=255, font=_font())
    alpha = np.asarray(mask_img, dtype=np.float32)[..., None] / 255.0
    fg_arr = np.asarray(fg, np.float32)
    bg_arr = np.asarray(bg, np.float32)
    patch = np.round(bg_arr + (fg_arr - bg_arr) * alpha).astype(np.uint8)
    patch.flags.writeable = False
    return patch


def draw_text(
    dst: np.ndarray,
    text: str,
    x: int,
    y: int,
    fg: Color,
    bg: Color,
    *,
    height: int = LINE_H,
    max_width: int | None = None,
    align: str = "left",
) -> int:
    """Draw ``text`` into ``dst`` in place, clipped to ``dst`` (and to ``max_width``).

    Args:
        dst: uint8 ``(H, W, 3)`` image; the area under the text should already be ``bg``.
        text: One line of text.
        x: Left edge (``align="left"``), center (``"center"``) or right edge (``"right"``).
        y: Top edge.
        fg: Text color.
        bg: Background color the patch is blended onto.
        height: Patch height.
        max_width: Clip the text to this many pixels.
        align: ``"left"``, ``"center"`` or ``"right"``.

    Returns:
        The width actually drawn, in pixels.
    """
    if not text:
        return 0
    patch = text_patch(text, tuple(fg), tuple(bg), height)
    if max_width is not None:
        patch = patch[:, : max(max_width, 0)]
    w = patch.shape[1]
    if align == "center":
        x -= w // 2
    elif align == "right":
        x -= w
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, dst.shape[1]), min(y + patch.shape[0], dst.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0
    dst[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
    return x1 - x0


def wrap_fields(fields: list[str], width: int, gap: str = "  ") -> list[str]:
    """Greedily join ``fields`` with ``gap`` into lines no wider than ``width`` pixels.

    A single field wider than ``width`` gets a line of its own (it will be clipped when drawn).
    """
    lines: list[str] = []
    current = ""
    for field in (f for f in fields if f):
        trial = f"{current}{gap}{field}" if current else field
        if current and text_width(trial) > width:
            lines.append(current)
            current = field
        else:
            current = trial
    if current:
        lines.append(current)
    return lines or [""]
