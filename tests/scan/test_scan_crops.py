"""Receptive-field crops on a tiny hand-made case: a two-conv model of all-ones kernels and images with one
bright pixel, so the position of each channel's max and the crop around it are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from convscope.scan import scan  # noqa: E402
from convscope.scan.crops import PAD_COLOR, crop, rf_window  # noqa: E402


def test_rf_window_and_crop_by_hand():
    # field 5 px, jump 2, position 0 centred at pixel 1: position i sees [2i - 1, 2i + 4)
    assert rf_window((0, 3), (5, 5), (2, 2), (1, 1)) == [(-1, 4), (5, 10)]
    assert rf_window((2,), (6,), (2,), (2.5,)) == [(4, 10)]  # even size: centre between pixels
    display = np.arange(12 * 12 * 3, dtype=np.uint8).reshape(12, 12, 3)
    out = crop(display, [(-1, 4), (9, 14)])
    assert out.shape == (5, 5, 3)
    np.testing.assert_array_equal(out[1:, :3], display[0:4, 9:12])  # the part inside the image
    assert (out[0] == PAD_COLOR).all() and (out[:, 3:] == PAD_COLOR).all()  # clipped parts are padding


@pytest.fixture(scope="module")
def ones_model():
    L = keras.layers
    inputs = keras.Input((12, 12, 1))
    x = L.Conv2D(1, 3, padding="same", use_bias=False, kernel_initializer="ones", name="c1")(inputs)
    x = L.Conv2D(1, 3, strides=2, use_bias=False, kernel_initializer="ones", name="c2")(x)
    return keras.Model(inputs, x, name="ones")


def test_top_position_and_crop_of_single_pixels(ones_model, tmp_path):
    x = np.zeros((3, 12, 12, 1), np.float32)
    x[0, 5, 7] = 1.0  # c2 position (2, 3) is centred on it: value 9
    x[1, 0, 0] = 1.0  # at the corner: best position (0, 0), field clipped, value 4
    x[2, 11, 11] = 0.5
    result = scan(ones_model, x, layers=["c2"], top_k=3, out=tmp_path / "s", batch_size=2)
    c2 = result["c2"]
    assert (c2.rf_size, c2.rf_jump, c2.rf_start) == ((5, 5), (2, 2), (1, 1))
    assert c2.top_index[0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(c2.top_value[0], [9.0, 4.0, 0.5])  # (11, 11) only reaches one c1 position
    assert c2.top_coords[0, 0].tolist() == [2, 3] and c2.top_coords[0, 1].tolist() == [0, 0]
    # the crop of image 0 has the pixel in its centre; image 1's crop is padded above and left
    from convscope.api import model_spec
    from convscope.scan.source import open_source

    source = open_source(x, model_spec(ones_model))
    win0 = rf_window(c2.top_coords[0, 0], c2.rf_size, c2.rf_jump, c2.rf_start)
    assert win0 == [(3, 8), (5, 10)]
    crop0 = crop(source.display(0), win0)
    assert crop0[2, 2].tolist() == [255, 255, 255] and crop0.sum() == 3 * 255
    crop1 = crop(source.display(1), rf_window(c2.top_coords[0, 1], c2.rf_size, c2.rf_jump, c2.rf_start))
    assert crop1[1, 1].tolist() == [255, 255, 255]
    assert (crop1[0] == PAD_COLOR).all() and (crop1[:, 0] == PAD_COLOR).all()
    pictures = sorted(p.name for p in (tmp_path / "s" / "layers" / "c2").rglob("*.png"))
    assert pictures == ["ch0000.png", "top.png"]
