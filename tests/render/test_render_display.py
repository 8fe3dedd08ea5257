"""One-line reprs and escaped HTML cards of the render results (FeatureGrid, Normalized, Kernel)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from convscope.render import normalize, overlay, render_activation, render_filters
from convscope.render.display import REPR_LIMIT, dims, esc, few, html_card, one_line, short
from convscope.render.filters import as_kernel

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def act() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(10, 10, 40)).astype(np.float32)


def grids(act: np.ndarray, layer: str) -> list:
    picture = np.zeros((20, 20, 3), np.uint8)
    return [
        render_activation(act, layer=layer, norm="symmetric", channels="top8"),
        render_activation(act[0, 0], layer=layer),  # a vector
        overlay(picture, act, 3, layer=layer, norm="layer", min_size=1),
        render_filters(np.random.default_rng(1).normal(size=(3, 3, 2, 4)), layer=layer),
    ]


def test_helpers() -> None:
    assert dims((None, 28, 28, 1)) == "?x28x28x1" and dims(()) == "scalar"
    assert few([3, 1, 4, 1, 5]) == "[3, 1, 4, ...] (5)" and few(["a", "b"]) == "['a', 'b']"
    assert short("x" * 100, 10) == "x" * 9 + "\u2026" and short("a\nb") == "a b"
    long = one_line("Thing", "a=" + "z" * 500, "b=1")
    assert len(long) == REPR_LIMIT and long.endswith("\u2026)") and "\n" not in long
    assert one_line("T", "a=1", "", "b=2") == "T(a=1, b=2)"
    card = html_card(EVIL, [(EVIL, EVIL)], table=([EVIL], [[EVIL]]), pre=(EVIL, EVIL), note=EVIL)
    assert "<script>" not in card and card.count(esc(EVIL)) == 8


def test_feature_grid_repr_is_one_line_with_its_range(act: np.ndarray) -> None:
    for g in grids(act, "conv_" + "x" * 300):
        text = repr(g)
        assert text.startswith("FeatureGrid(") and "\n" not in text and len(text) <= REPR_LIMIT, text
    g = grids(act, "conv_1")[0]
    lo, hi = g.span.ends
    assert repr(g) == (f"FeatureGrid(layer='conv_1', kind=2d, shape=10x10x40, norm='symmetric', range=[{lo}, {hi}], "
                       f"channels=8 of 40, image={g.image.shape[0]}x{g.image.shape[1]})")


def test_feature_grid_html_shows_the_png_and_escapes(act: np.ndarray) -> None:
    for g in grids(act, EVIL):
        html = g._repr_html_()
        assert "<script>" not in html and esc(EVIL) in html
        pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
        assert [base64.b64decode(p) for p in pngs] == [g._repr_png_()]  # the same picture, not a second render
        if g.span is not None:
            assert esc(g.span.caption()) in html


def test_normalized_and_kernel_reprs(act: np.ndarray) -> None:
    out = normalize(np.moveaxis(act, -1, 0), "layer")
    text = repr(out)
    assert text.startswith("Normalized(mode='layer', values=40x10x10, range=[") and "\n" not in text
    assert len(text) <= REPR_LIMIT
    kern = repr(as_kernel(np.zeros((3, 3, 2, 4), np.float32)))
    assert kern.startswith("Kernel(") and "w=4x2x1x3x3" in kern and len(kern) <= REPR_LIMIT
