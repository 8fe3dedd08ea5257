"""The frame around a picture's body: a caption strip on top and an optional colorbar legend below.

:func:`compose` allocates the whole picture once and hands back a view of the body area, so renderers
draw straight into the final array (no concatenation copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from convscope.render.colormap import NAN_COLOR, NEGINF_COLOR, POSINF_COLOR, get_lut
from convscope.render.normalize import ValueSpan, fmt
from convscope.render.text import LABEL_H, LINE_H, Color, draw_text, text_width, wrap_fields

BG: Final = (40, 40, 40)
FG: Final = (235, 235, 235)
DIM: Final = (170, 170, 170)
PAD: Final = 4
CAPTION_GAP: Final = "  \u00b7  "  # fields in the picture are separated by a middle dot
MIN_WIDTH: Final = 260
BAR_H: Final = 10
MAX_BAR_W: Final = 256
LEGEND_H: Final = PAD + BAR_H + 3 + LABEL_H + PAD
SPECIAL_COLORS: Final = {"NaN": NAN_COLOR, "+Inf": POSINF_COLOR, "-Inf": NEGINF_COLOR}


@dataclass(frozen=True)
class Legend:
    """A horizontal colorbar from ``lo`` to ``hi`` (with 0 marked in the middle when ``symmetric``).

    Attributes:
        cmap: Colormap name.
        lo: Value at the left end.
        hi: Value at the right end.
        symmetric: Mark 0 at the center.
        specials: Which of ``"NaN"``, ``"+Inf"``, ``"-Inf"`` occur; their swatches follow the bar.
        show_bar: False to draw only the special-value swatches.
    """

    cmap: str
    lo: float
    hi: float
    symmetric: bool = False
    specials: tuple[str, ...] = ()
    show_bar: bool = True

    @classmethod
    def from_span(
        cls, cmap: str, span: ValueSpan, *, specials: tuple[str, ...] = (), show_bar: bool = True
    ) -> Legend:
        """The colorbar of a picture whose caption states ``span`` (the same numbers, by construction)."""
        return cls(
            cmap, span.lo, span.hi, symmetric=span.mode == "symmetric", specials=specials, show_bar=show_bar
        )

    @property
    def end_labels(self) -> tuple[str, str] | None:
        """The texts printed under the two ends of the bar (``None`` when no bar is drawn)."""
        return (fmt(self.lo), fmt(self.hi)) if self.show_bar else None


def compose(
    body_h: int, body_w: int, caption_fields: list[str], legend: Legend | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Allocate a picture with a caption strip, a body area and an optional legend.

    Args:
        body_h: Body height in pixels.
        body_w: Body width in pixels (the picture is at least :data:`MIN_WIDTH` wide; the body is
            left-aligned and the rest filled with the background).
        caption_fields: Caption parts, joined by two spaces and wrapped to the picture width.
        legend: Colorbar to draw under the body, or ``None``.

    Returns:
        ``(image, body, caption)``: uint8 ``(H, W, 3)`` picture, a writable ``(body_h, body_w, 3)`` view
        of it to draw the body into (contents undefined), and the caption as one line of text.
    """
    width = max(body_w, MIN_WIDTH)
    lines = wrap_fields(caption_fields, width - 2 * PAD, gap=CAPTION_GAP)
    cap_h = len(lines) * LINE_H + PAD
    leg_h = LEGEND_H if legend is not None else 0
    image = np.empty((cap_h + body_h + leg_h, width, 3), np.uint8)
    image[:cap_h] = BG
    for i, line in enumerate(lines):
        draw_text(image, line, PAD, PAD // 2 + i * LINE_H, FG, BG, max_width=width - 2 * PAD)
    if body_w < width:
        image[cap_h : cap_h + body_h, body_w:] = BG
    if legend is not None:
        draw_legend(image[cap_h + body_h :], legend)
    return image, image[cap_h : cap_h + body_h, :body_w], "  ".join(f for f in caption_fields if f)


def draw_legend(region: np.ndarray, legend: Legend) -> None:
    """Draw a legend into ``region`` (uint8 ``(LEGEND_H, W, 3)``), filling it first with the background."""
    region[:] = BG
    width = region.shape[1]
    specials_w = sum(BAR_H + 3 + text_width(name) + 6 for name in legend.specials)
    x = PAD
    if legend.show_bar:
        bar_w = int(max(16, min(MAX_BAR_W, width - 2 * PAD - specials_w - 4)))
        lut = get_lut(legend.cmap)
        steps = np.round(np.linspace(0, 255, bar_w)).astype(np.intp)
        region[PAD : PAD + BAR_H, x : x + bar_w] = lut[steps][None]
        left, right = legend.end_labels or ("", "")
        ticks = [(x, left, "left"), (x + bar_w - 1, right, "right")]
        if legend.symmetric:
            ticks.append((x + bar_w // 2, "0", "center"))
        y_text = PAD + BAR_H + 3
        for tx, text, align in ticks:
            region[PAD + BAR_H : y_text, tx] = DIM
            draw_text(
                region,
                text,
                tx + (-1 if align == "left" else 1 if align == "right" else 0),
                y_text,
                DIM,
                BG,
                height=LABEL_H,
                align=align,
            )
        x += bar_w + 8
    for name in legend.specials:
        x = _swatch(region, x, name, SPECIAL_COLORS[name])


def _swatch(region: np.ndarray, x: int, name: str, color: Color) -> int:
    region[PAD : PAD + BAR_H, x : x + BAR_H] = color
    x += BAR_H + 3
    x += draw_text(region, name, x, PAD - 1, FG, BG, height=LABEL_H)
    return x + 6
