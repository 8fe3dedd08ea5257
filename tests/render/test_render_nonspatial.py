"""Pictures for vectors, Conv1D and Conv3D activations: structure checked by color positions."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.render import get_lut, render_activation
from convscope.render.nonspatial import AXIS_COLOR, NEG_COLOR, POS_COLOR


def mask(image: np.ndarray, color) -> np.ndarray:
    return (image == np.array(color, np.uint8)).all(axis=-1)


def runs(row: np.ndarray) -> int:
    """Number of runs of True in a 1-D bool array."""
    return int(np.count_nonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])) == 1))


def test_vector_of_10_is_a_bar_chart() -> None:
    values = np.array([1.0, -2.0, 3.0, 0.5, -1.0, 2.0, -3.0, 1.0, 1.0, -1.0])
    g = render_activation(values, layer="dense")
    assert g.kind == "vector" and g.channels == tuple(range(10)) and "all 10 units" in g.caption
    img = g.image
    zero = int(np.argmax(mask(img, AXIS_COLOR).sum(axis=1)))  # the zero line: the longest gray row
    assert runs(mask(img, POS_COLOR)[zero - 1]) == 6  # six positive bars touch the line from above
    assert runs(mask(img, NEG_COLOR)[zero + 1]) == 4  # four negative bars hang below it
    pos_cols = mask(img, POS_COLOR).any(axis=0)
    heights = mask(img, POS_COLOR).sum(axis=0)[pos_cols]
    assert heights.max() / heights.min() == pytest.approx(3.0 / 0.5, rel=0.1)  # height = value
    neg_heights = mask(img, NEG_COLOR).sum(axis=0)
    assert neg_heights.max() == pytest.approx(heights.max(), abs=1)  # |-3| == |3|: one shared scale


def test_vector_of_9216_is_a_heat_grid() -> None:
    values = np.arange(9216, dtype=np.float32)
    g = render_activation(values, layer="flatten", norm="layer", cmap="viridis", legend=False)
    assert g.kind == "vector" and len(g.channels) == 9216 and "136 units per row" in g.caption
    lut = get_lut("viridis")
    first, last = mask(g.image, lut[0]), mask(g.image, lut[255])
    ys0, xs0 = np.nonzero(first)
    ys1, xs1 = np.nonzero(last)
    assert ys0.min() < ys1.min() and xs0.min() < xs1.max()  # unit 0 top-left, unit 9215 bottom
    # cells of 3x3 px: 9216 / 256 levels = 36 units per level at the low end -> 36 cells of lut[0]
    assert first.sum() == pytest.approx(np.sum(np.round(values / 9215 * 255) == 0) * 9, abs=9)
    assert g.image.shape[1] < 600 and g.image.shape[0] < 400  # readable size


def test_vector_selection_and_top_k() -> None:
    values = np.array([0.1, 5.0, -1.0, 3.0, 0.0])
    g = render_activation(values, channels="top2")
    assert g.channels == (1, 3) and "top 2 by mean of 5" in g.caption
    assert "1 zero" in render_activation(values).caption


def test_conv1d_strips_one_row_per_channel_in_order() -> None:
    length, channels = 100, 8
    a = np.tile(np.arange(channels, dtype=np.float32), (length, 1))  # (L, C): channel c constant = c
    g = render_activation(a, layer="conv1d", norm="layer", cmap="viridis", legend=False)
    assert g.kind == "1d" and g.channels == tuple(range(8))
    assert "positions 0..99" in g.caption
    lut = get_lut("viridis")
    tops, widths = [], []
    for c in range(channels):
        m = mask(g.image, lut[int(np.floor(c / 7 * 255 + 0.5))])
        ys, xs = np.nonzero(m)
        tops.append(ys.min())
        widths.append(xs.max() - xs.min() + 1)
        assert m.sum() == 10 * 300  # a strip: 10 rows x (100 positions x 3 px)
    assert tops == sorted(tops) and len(set(tops)) == channels
    assert set(widths) == {300}


def test_conv3d_rows_are_channels_and_columns_depth() -> None:
    d, h, w, c = 4, 6, 6, 3
    a = np.zeros((d, h, w, c), np.float32)
    for ch in range(c):
        for z in range(d):
            a[z, :, :, ch] = ch * d + z + 1  # each slice constant and distinct
    g = render_activation(a, layer="conv3d", norm="layer", cmap="magma", legend=False)
    assert g.kind == "3d" and "depth slices 0..3" in g.caption
    lut = get_lut("magma")
    centers = np.zeros((c, d, 2))
    for ch in range(c):
        for z in range(d):
            level = (ch * d + z) / (c * d - 1)
            ys, xs = np.nonzero(mask(g.image, lut[int(np.floor(level * 255 + 0.5))]))
            assert len(ys) == (6 * 8) ** 2  # a 6x6 slice upscaled 8x
            centers[ch, z] = ys.mean(), xs.mean()
    assert (np.diff(centers[:, :, 0], axis=0) > 0).all()  # channel -> next row down
    assert (np.diff(centers[:, :, 1], axis=1) > 0).all()  # depth -> next column right
    assert np.ptp(centers[:, :, 0], axis=1).max() == 0  # one row per channel


@pytest.mark.parametrize("shape", [(10,), (9216,), (100, 8), (4, 6, 6, 3), (1,), (1, 1), (3, 1, 1, 1)])
def test_all_shapes_render_with_special_values(shape: tuple[int, ...]) -> None:
    a = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    a.flat[0] = np.nan
    for norm in ("channel", "symmetric", "percentile"):
        g = render_activation(a, norm=norm)
        assert g.image.ndim == 3 and g.n_nan == 1
