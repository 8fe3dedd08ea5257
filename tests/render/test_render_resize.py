"""render.resize: the one Pillow resize, equal to a direct Pillow call for every layout its callers use."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convscope.errors import RenderError
from convscope.render.resize import RESAMPLE_MODES, resize

RNG = np.random.default_rng(0)


def _pillow(arr: np.ndarray, width: int, height: int, method: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(arr).resize((width, height), method))


@pytest.mark.parametrize("mode", list(RESAMPLE_MODES))
def test_uint8_rgb_and_gray_equal_a_direct_pillow_call(mode: str) -> None:
    rgb = RNG.integers(0, 256, (13, 21, 3), dtype=np.uint8)
    gray = RNG.integers(0, 256, (13, 21), dtype=np.uint8)
    method = RESAMPLE_MODES[mode]
    out = resize(rgb, (30, 9), mode)
    assert out.dtype == np.uint8 and out.shape == (30, 9, 3)
    np.testing.assert_array_equal(out, _pillow(rgb, 9, 30, method))
    np.testing.assert_array_equal(resize(gray, (5, 40), mode), _pillow(gray, 40, 5, method))
    one = resize(gray[:, :, None], (5, 40), mode)  # (H, W, 1) keeps its channel axis
    assert one.shape == (5, 40, 1)
    np.testing.assert_array_equal(one[:, :, 0], _pillow(gray, 40, 5, method))


def test_float_maps_are_resized_in_float32_like_pillow_f_images() -> None:
    values = RNG.normal(size=(6, 7))  # float64: cast to float32 first, as the 'F' mode needs
    out = resize(values, (24, 28), "bilinear")
    assert out.dtype == np.float32 and out.shape == (24, 28)
    direct = np.asarray(Image.fromarray(values.astype(np.float32)).resize((28, 24), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out, direct)
    # hand-checked case: a 1x2 map [0, 1] widened to 4 columns ramps 0, 0.25, 0.75, 1 (half-pixel centres)
    np.testing.assert_allclose(resize(np.array([[0.0, 1.0]]), (1, 4)), [[0.0, 0.25, 0.75, 1.0]], atol=1e-6)


def test_other_channel_counts_go_channel_by_channel() -> None:
    rgba = RNG.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    out = resize(rgba, (16, 12), "bilinear")
    assert out.shape == (16, 12, 4)
    for c in range(4):
        np.testing.assert_array_equal(out[:, :, c], _pillow(rgba[:, :, c], 12, 16, Image.Resampling.BILINEAR))
    maps = RNG.normal(size=(5, 5, 3)).astype(np.float32)
    out = resize(maps, (10, 10))
    assert out.dtype == np.float32 and out.shape == (10, 10, 3)
    np.testing.assert_array_equal(out[:, :, 2], resize(maps[:, :, 2], (10, 10)))


@pytest.mark.parametrize(("args", "pattern"), [
    ((np.zeros((4, 4), np.uint8), (4, 4), "cubic"), "resample 'cubic' is not valid; expected one of nearest"),
    ((np.zeros((4, 4), np.uint8), (0, 4)), r"size must be \(height, width\) >= 1, got \(0, 4\)"),
    ((np.zeros((4, 4), np.int32), (2, 2)), "uint8 or float pictures, got int32"),
    ((np.zeros((2, 4, 4, 3), np.uint8), (2, 2)), r"got shape \(2, 4, 4, 3\)"),
])
def test_refusals_name_the_value(args: tuple, pattern: str) -> None:
    with pytest.raises(RenderError, match=pattern):
        resize(*args)
