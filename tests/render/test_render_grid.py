"""render_activation on 2-D maps: caption, channel selection, special values, legends, formats."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from convscope.errors import OptionError, RenderError
from convscope.render import NAN_COLOR, NEGINF_COLOR, POSINF_COLOR, get_lut, render_activation
from convscope.render.annotate import LEGEND_H


def act(h: int = 12, w: int = 12, c: int = 8, seed: int = 0) -> np.ndarray:
    return np.maximum(np.random.default_rng(seed).normal(size=(h, w, c)), 0).astype(np.float32)


def has_color(image: np.ndarray, color) -> bool:
    return bool((image == np.array(color, np.uint8)).all(axis=-1).any())


def count_color(image: np.ndarray, color) -> int:
    return int((image == np.array(color, np.uint8)).all(axis=-1).sum())


def test_caption_states_what_is_shown() -> None:
    a = act(24, 24, 100)
    a[..., 2] = 0.0
    a[..., 70] = 0.0
    g = render_activation(a, layer="conv_1")
    for part in ("conv_1", "(24, 24, 100)", "norm=channel", "cmap=gray", "channels 0-63 of 100", "2 inactive"):
        assert part in g.caption
    assert f"range [0, {a.max():.3g}]" in g.caption
    assert g.channels == tuple(range(64)) and g.n_channels == 100
    assert g.inactive == (2, 70) and g.shape == (24, 24, 100)
    assert g.value_range == (0.0, pytest.approx(float(a.max())))
    assert g.image.dtype == np.uint8 and g.image.ndim == 3 and g.kind == "2d"


def test_max_channels_and_explicit_specs() -> None:
    a = act(8, 8, 20)
    assert render_activation(a, max_channels=5).channels == (0, 1, 2, 3, 4)
    assert render_activation(a, channels="3,1").channels == (3, 1)
    assert render_activation(a, channels="all").channels == tuple(range(20))
    means = a.mean(axis=(0, 1))
    top = render_activation(a, channels="top3")
    assert top.channels == tuple(np.argsort(-means, kind="stable")[:3].tolist())
    assert "top 3 by mean of 20" in top.caption
    with pytest.raises(OptionError, match=r"0..19"):
        render_activation(a, channels="1,25")
    assert render_activation(a, channels="25").channels == tuple(range(20))  # a count is capped


def test_nan_and_inf_are_painted_and_counted() -> None:
    a = act(6, 6, 2)
    a[1, 1, 0] = np.nan
    a[2, 2, 0] = np.inf
    a[3, 3, 1] = -np.inf
    g = render_activation(a, scale=1, labels=False, legend=False)
    assert g.n_nan == 1 and g.n_inf == 2
    assert "1 NaN (magenta)" in g.caption and "1 +Inf (orange)" in g.caption and "1 -Inf (cyan)" in g.caption
    # one pixel each in the maps, one swatch of 10x10 each in the legend
    assert count_color(g.image, NAN_COLOR) == 1 + 100
    assert count_color(g.image, POSINF_COLOR) == 1 + 100
    assert count_color(g.image, NEGINF_COLOR) == 1 + 100
    assert g.value_range == (0.0, pytest.approx(float(np.nanmax(a[np.isfinite(a)]))))


def test_symmetric_zero_is_lut_middle() -> None:
    a = np.zeros((6, 6, 1), np.float32)
    a[0, 0, 0], a[5, 5, 0] = -2.0, 1.0
    g = render_activation(a, norm="symmetric", scale=1, labels=False)
    mid = get_lut("diverging")[128]
    assert g.cmap == "diverging"
    assert count_color(g.image, mid) >= 34  # the 34 zeros (the legend bar may add a few)
    assert has_color(g.image, get_lut("diverging")[0])  # -2 is the most negative: left end
    assert "-2" in g.caption


def test_legend_only_for_range_modes_and_always_for_raw() -> None:
    a = act(8, 8, 4)
    base = render_activation(a, norm="channel").image.shape[0]
    assert render_activation(a, norm="layer").image.shape[0] == base + LEGEND_H
    assert render_activation(a, norm="layer", legend=False).image.shape[0] == base
    assert render_activation(a, norm="raw", legend=False).image.shape[0] == base + LEGEND_H
    assert "vrange [0, 1]" in render_activation(a, norm="raw", vrange=(0, 1)).caption


def test_channels_first_matches_channels_last() -> None:
    a = act(10, 10, 6)
    last = render_activation(a, labels=False)
    first = render_activation(np.moveaxis(a, -1, 0), data_format="channels_first", labels=False)
    assert first.image.shape == last.image.shape
    np.testing.assert_array_equal(first.image[20:], last.image[20:])  # below the one-line caption
    assert first.shape == (6, 10, 10)


def test_pixel_values_of_one_map() -> None:
    a = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    g = render_activation(a, norm="layer", cmap="viridis", scale=1, labels=False, legend=False)
    lut = get_lut("viridis")
    expected = lut[np.round(np.arange(16) / 15 * 255).astype(int)].reshape(4, 4, 3)
    hits = [(y, x) for y in range(g.image.shape[0] - 3) for x in range(g.image.shape[1] - 3)
            if (g.image[y : y + 4, x : x + 4] == expected).all()]
    assert len(hits) == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.uint8, bool])
def test_dtypes(dtype) -> None:
    g = render_activation((act(5, 5, 3) * 10).astype(dtype))
    assert g.image.dtype == np.uint8


def test_bad_inputs() -> None:
    with pytest.raises(RenderError, match="shape"):
        render_activation(np.zeros((1, 2, 3, 4, 5)))
    with pytest.raises(RenderError):
        render_activation(np.zeros((0, 3)))
    with pytest.raises(RenderError):
        render_activation(np.float32(3))
    with pytest.raises(RenderError, match="complex"):
        render_activation(np.ones((3, 3, 2), complex))
    with pytest.raises(OptionError, match="channels_first"):
        render_activation(act(), data_format="NHWC")
    with pytest.raises(OptionError, match="symmetric"):
        render_activation(act(), norm="sym")
    with pytest.raises(OptionError, match="viridis"):
        render_activation(act(), cmap="jet")
    with pytest.raises(OptionError, match="max_channels"):
        render_activation(act(), max_channels=0)
    with pytest.raises(OptionError, match="cells"):
        render_activation(act(c=8), rows=2, cols=2)


def test_batch_axis_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="convscope.render"):
        render_activation(np.ones((1, 5, 5, 3), np.float32))
    assert "act[0]" in caplog.text


def test_constant_layer_renders_without_warnings() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for norm in ("channel", "layer", "symmetric", "percentile", "raw"):
            g = render_activation(np.zeros((7, 7, 3), np.float32), norm=norm)
            assert g.inactive == (0, 1, 2)


@pytest.mark.parametrize("layout", ["last", "last_strided", "first"])
def test_gather_channels_matches_fancy_indexing(layout: str) -> None:
    from convscope.render.prepare import gather_channels

    a = np.random.default_rng(5).normal(size=(40, 30, 9))
    if layout == "last_strided":
        a = a[::2]
    maps = np.moveaxis(a, -1, 0) if layout != "first" else np.ascontiguousarray(np.moveaxis(a, -1, 0))
    idx = np.array([8, 0, 3])
    out = gather_channels(maps, idx)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, maps[idx].astype(np.float32))


def test_huge_mosaics_are_drawn_from_block_means(monkeypatch: pytest.MonkeyPatch) -> None:
    from convscope.render import grid as grid_module

    monkeypatch.setattr(grid_module, "MAX_PIXELS", 4 * 60 * 60)
    a = np.arange(4 * 120 * 120, dtype=np.float32).reshape(120, 120, 4) % 7
    g = render_activation(a, labels=False, legend=False)
    assert "1/2 size (mean of 2x2 blocks)" in g.caption
    assert g.image.shape[0] < 1 + 2 * (120 + 1)  # the 2x2 mosaic of full-size maps would be taller
    expected = a[..., 0].reshape(60, 2, 60, 2).mean(axis=(1, 3))
    reduced = grid_module.block_mean(np.ascontiguousarray(np.moveaxis(a, -1, 0)), 2)
    assert reduced.shape == (4, 60, 60)
    np.testing.assert_allclose(reduced[0], expected, rtol=1e-6)


def test_rendering_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, convscope.render as r; r.render_activation(np.ones((4, 4, 2))).to_png(); "
        "print(sorted(m for m in ('matplotlib', 'keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
