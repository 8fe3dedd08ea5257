"""Kernel pictures: pixels against independent numpy normalizations, every conv kind, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.errors import OptionError, RenderError
from convscope.render import plan_mosaic, render_filters
from convscope.render.annotate import LEGEND_H
from convscope.render.filters import as_kernel
from convscope.render.mosaic import SEP_COLOR


def kernel(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def tile_at(grid, layout, i: int) -> np.ndarray:
    """The pixels of tile ``i`` (the caption strip sits above the mosaic; no legend)."""
    top = grid.image.shape[0] - layout.height
    y, x = layout.tile_origin(i)
    return grid.image[top + y : top + y + layout.tile_h * layout.scale, x : x + layout.tile_w * layout.scale]


def test_rgb_pixels_equal_a_numpy_symmetric_normalization():
    k = kernel(3, 3, 3, 4)
    k[..., 2] = 0.0  # an all-zero filter is mid gray, not a division by zero
    grid = render_filters(k, scale=1, layer="first")
    assert grid.norm == "rgb" and grid.cmap == "rgb" and grid.shape == (3, 3, 3, 4) and grid.inactive == (2,)
    layout = plan_mosaic(4, 3, 3, scale=1, labels=True)
    for f in range(4):
        w = k[..., f]
        m = np.abs(w).max() or 1.0
        expected = np.floor((0.5 + 0.5 * w / m) * 255 + 0.5).astype(np.uint8)
        np.testing.assert_array_equal(tile_at(grid, layout, f), expected)
    assert "per filter, symmetric" in grid.caption and "(3, 3, 3, 4)" in grid.caption and "first" in grid.caption


def test_rgb_upscales_by_whole_pixels():
    k = kernel(3, 3, 3, 2, seed=1)
    grid = render_filters(k, scale=5)
    layout = plan_mosaic(2, 15, 15, scale=1, labels=True)
    big = tile_at(grid, layout, 1)
    small = tile_at(render_filters(k, scale=1), plan_mosaic(2, 3, 3, scale=1, labels=True), 1)
    np.testing.assert_array_equal(big[::5, ::5], small)
    np.testing.assert_array_equal(big[4::5, 4::5], big[::5, ::5])


def test_norm_mode_equals_the_l2_norm_over_input_channels():
    k = kernel(3, 3, 16, 6, seed=2)
    grid = render_filters(k, mode="norm", cmap="gray", scale=1, labels=False)
    norms = np.linalg.norm(k, axis=2)  # (3, 3, 6)
    expected = np.floor(norms / norms.max() * 255 + 0.5).astype(np.uint8)
    layout = plan_mosaic(6, 3, 3, scale=1, labels=False)
    top = grid.image.shape[0] - layout.height - LEGEND_H  # the colorbar legend sits under the mosaic
    for f in range(6):
        y, x = layout.tile_origin(f)
        np.testing.assert_array_equal(grid.image[top + y : top + y + 3, x : x + 3, 0], expected[..., f])
    assert "L2 norm over 16 input channels" in grid.caption and grid.norm == "norm"


def test_auto_mode_per_kind():
    assert render_filters(kernel(3, 3, 3, 2)).norm == "rgb"
    assert render_filters(kernel(3, 3, 4, 2)).norm == "channels"
    assert render_filters(kernel(3, 3, 32, 2)).norm == "norm"
    assert render_filters(kernel(5, 7, 2)).norm == "channels"  # Conv1D: one (inputs x taps) map per filter


def test_channels_mode_caps_inputs_and_filters():
    grid = render_filters(kernel(3, 3, 40, 100), mode="channels", max_inputs=4)
    assert grid.channels == tuple(range(64)) and grid.n_channels == 100
    assert "inputs 0-3 of 40" in grid.caption and "filters 0-63 of 100" in grid.caption
    top = render_filters(kernel(3, 3, 2, 10, seed=3), channels="top3")
    k = kernel(3, 3, 2, 10, seed=3)
    assert top.channels == tuple(np.argsort(-np.abs(k).reshape(-1, 10).mean(0), kind="stable")[:3])


def test_keras_layers_of_every_conv_kind():
    keras = pytest.importorskip("keras")
    L = keras.layers
    cases = [
        (L.Conv1D(5, 7), (20, 3), (7, 3, 5), "rgb"),
        (L.Conv3D(4, 3), (6, 6, 6, 2), (3, 3, 3, 2, 4), "channels"),
        (L.DepthwiseConv2D(3, depth_multiplier=2), (8, 8, 3), (3, 3, 3, 2), "channels"),
        (L.SeparableConv2D(6, 3), (8, 8, 3), (3, 3, 3, 1), "channels"),
        (L.Conv2DTranspose(5, 3), (8, 8, 3), (3, 3, 5, 3), "rgb"),
    ]
    for layer, in_shape, k_shape, mode in cases:
        layer.build((None, *in_shape))
        grid = render_filters(layer)
        assert grid.shape == k_shape and grid.norm == mode and grid.layer == layer.name, type(layer).__name__
        assert type(layer).__name__ in grid.caption
    sep = L.SeparableConv2D(6, 3)
    sep.build((None, 8, 8, 3))
    assert "pointwise 1x1 3->6 not shown" in render_filters(sep).caption
    dw = L.DepthwiseConv2D(3, depth_multiplier=2)
    dw.build((None, 8, 8, 3))
    kern = as_kernel(dw)
    np.testing.assert_array_equal(kern.w[3, 0, 0], np.asarray(dw.kernel)[:, :, 1, 1])  # filter c * M + m
    t = L.Conv2DTranspose(5, 3)
    t.build((None, 8, 8, 3))
    np.testing.assert_array_equal(as_kernel(t).w[4, 2, 0], np.asarray(t.kernel)[:, :, 4, 2])  # (.., out, in)


def test_non_conv_layer_is_refused_by_class_name():
    keras = pytest.importorskip("keras")
    dense = keras.layers.Dense(3, name="head")
    dense.build((None, 4))
    with pytest.raises(RenderError, match=r"'head' \(Dense\): it is not a convolution"):
        render_filters(dense)
    with pytest.raises(RenderError, match="not built"):
        render_filters(keras.layers.Conv2D(2, 3))
    with pytest.raises(RenderError, match="got shape"):
        render_filters(np.zeros((3, 3)))


def test_bad_modes_are_refused():
    with pytest.raises(OptionError, match="mode='rgb' needs filters with 3 input channels"):
        render_filters(kernel(3, 3, 4, 2), mode="rgb")
    with pytest.raises(OptionError, match="unknown filter mode 'hsv'"):
        render_filters(kernel(3, 3, 3, 2), mode="hsv")


def test_nan_weights_are_shown_not_hidden():
    k = kernel(3, 3, 3, 2)
    k[0, 0, 0, 1] = np.nan
    grid = render_filters(k, scale=1)
    assert grid.n_nan == 1 and "1 NaN (magenta)" in grid.caption
    layout = plan_mosaic(2, 3, 3, scale=1, labels=True)
    assert tuple(tile_at(grid, layout, 1)[0, 0]) == (255, 0, 255)
    assert tuple(grid.image[-1, -1]) in (SEP_COLOR, (40, 40, 40))


def test_one_input_channel_kernels_are_whole_tiles_at_the_auto_scale():
    """A grayscale first layer (3x3x1 kernels) is drawn like the other modes (8x), not as tiny sub-cells."""
    k = kernel(3, 3, 1, 4, seed=2)
    grid = render_filters(k, mode="channels", cmap="gray")
    layout = plan_mosaic(4, 24, 24, scale=1, labels=True)
    assert grid.image.shape[0] - layout.height >= 0  # the mosaic of 24-px tiles fits under the caption
    big = tile_at(grid, layout, 3)
    small = tile_at(render_filters(k, mode="channels", cmap="gray", scale=1),
                    plan_mosaic(4, 3, 3, scale=1, labels=True), 3)
    np.testing.assert_array_equal(big[::8, ::8], small)
    np.testing.assert_array_equal(big[7::8, 7::8], small)
