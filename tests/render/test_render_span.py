"""One range per picture: the caption's range, the colorbar's end labels and a numpy reference agree.

The numbers are read from the FeatureGrid's metadata (``caption``, ``legend.end_labels``, ``span``),
never from the pixels. Intended ranges (see :mod:`convscope.render.normalize`): the shared modes and the
caption of ``channel`` mode are over the WHOLE layer even when a subset is drawn; an overlay states the
range its colorbar maps (the drawn channel, the layer for a shared mode, or the mean map).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from convscope.errors import OptionError
from convscope.render import NORM_MODES, get_lut, normalize, overlay, render_activation
from convscope.render.annotate import LEGEND_H
from convscope.render.normalize import value_span

RANGE = re.compile(r"range \[([^,\]]+), ([^\]]+)\]")
PRINTED = dict(rtol=5e-3, atol=1e-9)  # the caption prints 3 significant digits
EXACT = dict(rtol=1e-6, atol=1e-9)
PCT = (1.0, 99.0)


@pytest.fixture(scope="module")
def act() -> np.ndarray:
    """(10, 10, 24) signed values; later channels are larger, so any subset differs from the layer."""
    rng = np.random.default_rng(7)
    scale = np.linspace(0.2, 3.0, 24, dtype=np.float32)
    return (rng.normal(size=(10, 10, 24)) * scale).astype(np.float32)


def reference(values: np.ndarray, mode: str) -> tuple[float, float]:
    """The intended range of ``values`` in ``mode``, by numpy."""
    v = np.asarray(values, np.float64)
    if mode == "symmetric":
        m = float(np.abs(v).max())
        return -m, m
    if mode == "percentile":
        lo, hi = np.percentile(np.asarray(values, np.float32), PCT)
        return float(lo), float(hi)
    return float(v.min()), float(v.max())


def caption_range(caption: str) -> tuple[str, str]:
    found = RANGE.findall(caption)
    assert len(found) == 1, f"expected one range in {caption!r}"
    return found[0]


def check(grid, expected: tuple[float, float], bar: bool) -> None:
    lo_text, hi_text = caption_range(grid.caption)
    assert (lo_text, hi_text) == grid.span.ends
    np.testing.assert_allclose([float(lo_text), float(hi_text)], expected, **PRINTED)
    np.testing.assert_allclose([grid.span.lo, grid.span.hi], expected, **EXACT)
    if bar:
        assert grid.legend is not None and grid.legend.end_labels == (lo_text, hi_text)
        assert (grid.legend.lo, grid.legend.hi) == (grid.span.lo, grid.span.hi)
    else:
        assert grid.legend is None or grid.legend.end_labels is None


@pytest.mark.parametrize("mode", NORM_MODES)
@pytest.mark.parametrize("channels", [None, "top5", "0-3", [20]])
def test_grid_caption_colorbar_and_numpy_agree(act: np.ndarray, mode: str, channels) -> None:
    g = render_activation(act, norm=mode, channels=channels, percentile=PCT, layer="conv")
    check(g, reference(act, mode), bar=mode != "channel")
    assert "over the layer (all 24 channels)" in g.caption or "of the layer (all 24 channels)" in g.caption
    full = render_activation(act, norm=mode, percentile=PCT)
    assert g.span == full.span  # a subset is drawn on the layer's scale


def test_raw_with_vrange_states_the_fixed_range(act: np.ndarray) -> None:
    g = render_activation(act, norm="raw", vrange=(-1, 2.5), channels="top3")
    check(g, (-1.0, 2.5), bar=True)
    assert "vrange [-1, 2.5]" in g.caption and g.span.fixed


@pytest.mark.parametrize("mode", NORM_MODES)
def test_overlay_of_one_channel(act: np.ndarray, mode: str) -> None:
    picture = np.zeros((20, 20, 3), np.uint8)
    g = overlay(picture, act, 3, norm=mode, min_size=1)
    expected = reference(act[..., 3], mode) if mode == "channel" else reference(act, mode)
    check(g, expected, bar=True)
    assert ("channel 3" if mode == "channel" else "the layer (all 24 channels)") in g.caption
    assert g.legend.symmetric == (mode == "symmetric")


@pytest.mark.parametrize("mode", NORM_MODES)
def test_overlay_of_the_mean(act: np.ndarray, mode: str) -> None:
    g = overlay(np.zeros((20, 20, 3), np.uint8), act, "mean", norm=mode, min_size=1)
    check(g, reference(act.mean(axis=2), mode), bar=True)
    assert "over the mean of 24 channels" in g.caption or "of the mean of 24 channels" in g.caption
    plain = overlay(np.zeros((20, 20, 3), np.uint8), act, "mean", norm=mode, min_size=1, caption=False)
    assert plain.legend is None and plain.span == g.span and caption_range(plain.caption) == g.span.ends


@pytest.mark.parametrize("shape", [(40,), (30, 12), (3, 5, 5, 12)])
@pytest.mark.parametrize("mode", ["layer", "symmetric", "percentile"])
def test_nonspatial_subsets_use_the_layer_range(shape: tuple[int, ...], mode: str) -> None:
    a = np.random.default_rng(3).normal(size=shape).astype(np.float32) * np.arange(1, shape[-1] + 1)
    g = render_activation(a, norm=mode, channels="0-2", percentile=PCT)
    check(g, reference(a, mode), bar=True)


def test_colors_follow_the_stated_range() -> None:
    """Channel 0 (0..1) drawn alone with norm=layer: its brightest pixel is mid-gray, as the bar says."""
    a = np.zeros((4, 4, 2), np.float32)
    a[..., 0] = np.linspace(0, 1, 16).reshape(4, 4)
    a[..., 1] = 2.0
    g = render_activation(a, norm="layer", channels=[0], cmap="gray", scale=1, labels=False)
    assert g.legend.end_labels == ("0", "2") and "range [0, 2]" in g.caption
    expected = get_lut("gray")[np.floor(a[..., 0] / 2 * 255 + 0.5).astype(int)]  # 1.0 -> mid-gray, not white
    body = g.image[:-LEGEND_H]  # above the colorbar
    hits = [(y, x) for y in range(body.shape[0] - 3) for x in range(body.shape[1] - 3)
            if (body[y : y + 4, x : x + 4] == expected).all()]
    assert len(hits) == 1


def test_value_span_and_normalize_share_one_object() -> None:
    maps = np.array([[[0.0, 1.0]], [[-3.0, 2.0]]], np.float32)
    span = value_span(maps, "symmetric", over="two maps")
    assert (span.lo, span.hi) == (-3.0, 3.0) and span.caption() == "range [-3, 3] over two maps"
    out = normalize(maps[:1], "symmetric", span=span)
    assert out.span is span
    np.testing.assert_allclose(out.values[0, 0], [0.5, 0.5 + 1 / 6], atol=1e-6)
    assert normalize(maps, "layer").span.caption() == "range [-3, 2] over all 2 channels"
    with pytest.raises(OptionError, match="symmetric"):
        normalize(maps, "layer", span=span)
