"""Overlay of a feature map on the input picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convscope.errors import OptionError, RenderError
from convscope.render import apply_colormap, normalize, overlay


@pytest.fixture
def picture() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.fixture
def act() -> np.ndarray:
    return np.random.default_rng(1).random((10, 15, 4)).astype(np.float32)


def test_shape_and_alpha_zero_returns_picture(picture: np.ndarray, act: np.ndarray) -> None:
    g = overlay(picture, act, 2, alpha=0.0, min_size=1, caption=False)
    assert g.image.shape == picture.shape and g.kind == "overlay"
    np.testing.assert_array_equal(g.image, picture)
    assert g.channels == (2,) and g.n_channels == 4 and "channel 2 of 4" in g.caption


def test_alpha_one_is_the_upsampled_colored_map(picture: np.ndarray, act: np.ndarray) -> None:
    g = overlay(picture, act, 1, alpha=1.0, cmap="viridis", min_size=1, caption=False)
    values = normalize(act[None, :, :, 1], "channel").values[0]
    resized = np.asarray(Image.fromarray(values).resize((60, 40), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(g.image, apply_colormap(resized, "viridis"))


def test_half_blend(picture: np.ndarray, act: np.ndarray) -> None:
    heat = overlay(picture, act, "mean", alpha=1.0, min_size=1, caption=False).image.astype(np.float64)
    half = overlay(picture, act, "mean", alpha=0.5, min_size=1, caption=False).image.astype(np.float64)
    np.testing.assert_allclose(half, (picture + heat) / 2, atol=1.0)


def test_gray_and_float_pictures(act: np.ndarray) -> None:
    gray = np.full((20, 30), 100, np.uint8)
    g = overlay(gray, act, 0, alpha=0.0, min_size=1, caption=False)
    assert g.image.shape == (20, 30, 3) and (g.image == 100).all()
    g = overlay(np.full((20, 30, 3), 0.5, np.float32), act, 0, alpha=0.0, min_size=1, caption=False)
    assert (g.image == 128).all()
    g = overlay(np.zeros((20, 30, 4), np.uint8), act[..., 0], 0, min_size=1, caption=False)  # (h, w), RGBA
    assert g.image.shape == (20, 30, 3)


def test_bad_arguments(picture: np.ndarray, act: np.ndarray) -> None:
    with pytest.raises(OptionError, match=r"0..3"):
        overlay(picture, act, 4, min_size=1, caption=False)
    with pytest.raises(OptionError, match="'max'"):
        overlay(picture, act, "max", min_size=1, caption=False)
    with pytest.raises(OptionError, match="alpha"):
        overlay(picture, act, 0, alpha=1.5, min_size=1, caption=False)
    with pytest.raises(RenderError, match="act\\[i\\]"):
        overlay(picture, act[None], 0, min_size=1, caption=False)
    with pytest.raises(RenderError, match="image"):
        overlay(np.zeros((4, 4, 2)), act, 0, min_size=1, caption=False)


def test_small_pictures_are_enlarged_and_captioned(act: np.ndarray) -> None:
    digit = np.random.default_rng(2).integers(0, 256, (28, 28), dtype=np.uint8)
    plain = overlay(digit, act, 0, alpha=0.0, caption=False)  # default min_size=224 -> 8x
    assert plain.image.shape == (224, 224, 3)
    np.testing.assert_array_equal(plain.image[::8, ::8, 0], digit)  # nearest-neighbour enlargement
    framed = overlay(digit, act, 0, alpha=0.0)
    assert framed.image.shape[0] > 224 and framed.image.shape[1] >= 224  # caption strip + legend
    assert "channel 0 of 4" in framed.caption


def test_receptive_field_grid_places_each_position_over_its_centre() -> None:
    # a 3x3 map from a 'valid' 3x3 conv on a 5x5 input: position (i, j) is centred on pixel (1+i, 1+j)
    picture = np.zeros((5, 5), np.uint8)
    act = np.zeros((3, 3, 1), np.float32)
    act[0, 2, 0] = 1.0  # one hot position -> must light input pixel (1, 3) only at full strength
    g = overlay(picture, act, 0, alpha=1.0, cmap="gray", min_size=1, caption=False, grid=((1.0, 1.0), (1.0, 1.0)))
    red = g.image[..., 0]
    assert red[1, 3] == 255 and red[1, 1] == 0 and red[3, 1] == 0
    assert (red[0, :] == 0).all() and (red[:, 0] == 0).all() and (red[4, :] == 0).all()  # uncovered border
    # a pooled map: start 0.5, jump 2 on a 4x4 input -> position 1 covers pixels 2 and 3
    act2 = np.zeros((2, 2, 1), np.float32)
    act2[1, 1, 0] = 1.0
    g2 = overlay(np.zeros((4, 4), np.uint8), act2, 0, alpha=1.0, cmap="gray", min_size=1, caption=False,
                 grid=((0.5, 0.5), (2.0, 2.0)))
    assert g2.image[0, 0, 0] == 0 and g2.image[3, 3, 0] == 255
