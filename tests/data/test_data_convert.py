"""to_model_input / prepare_image against independent numpy + Pillow references (tolerance 1e-6)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from datahelp import pil_bilinear, save, smooth
from PIL import Image

from convscope.data import InputSpec, Preprocess, prepare_image, read_image, to_model_input
from convscope.errors import InputError, OptionError

TOL = 1e-6
GRAY28 = InputSpec((28, 28, 1))
RGB32 = InputSpec((32, 32, 3))
RGB32_CF = InputSpec((3, 32, 32), "channels_first")


@pytest.mark.parametrize("size", [(28, 28), (40, 30), (13, 17), (100, 7)])
@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_gray_file_to_28x28x1(tmp_path: Path, size: tuple[int, int], ext: str) -> None:
    h, w = size
    path = save(tmp_path / f"g{ext}", smooth(h, w))
    decoded = np.asarray(Image.open(path))  # what the file holds (JPEG is lossy)
    expected = pil_bilinear(decoded, 28, 28).astype(np.float64)[:, :, None] / 255.0
    x = to_model_input(read_image(path), GRAY28)
    assert x.shape == (28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x, expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("size", [(32, 32), (50, 64), (9, 21)])
@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_rgb_file_to_32x32x3_and_channels_first(tmp_path: Path, size: tuple[int, int], ext: str) -> None:
    h, w = size
    path = save(tmp_path / f"c{ext}", smooth(h, w, 3))
    decoded = np.asarray(Image.open(path))
    expected = pil_bilinear(decoded, 32, 32).astype(np.float64) / 255.0
    img = read_image(path)
    np.testing.assert_allclose(to_model_input(img, RGB32), expected, atol=TOL, rtol=0)
    cf = to_model_input(img, RGB32_CF)
    assert cf.shape == (3, 32, 32)
    np.testing.assert_allclose(cf, expected.transpose(2, 0, 1), atol=TOL, rtol=0)


def test_rgb_to_gray_uses_601_luma() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (28, 28, 3), np.uint8)
    x = to_model_input(rgb, GRAY28, Preprocess(value_range=(0.0, 255.0)))
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    assert x.shape == (28, 28, 1)
    assert np.abs(x[:, :, 0] - luma).max() <= 1.0
    assert np.abs(x[:, :, 0] - rgb.mean(axis=2)).max() > 5  # not a plain average


def test_gray_to_rgb_replicates() -> None:
    gray = smooth(32, 32)
    x = to_model_input(gray, RGB32)
    for c in range(3):
        np.testing.assert_allclose(x[:, :, c], gray / 255.0, atol=TOL, rtol=0)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0), (-0.5, 2.0)])
def test_value_range_by_hand(value_range: tuple[float, float]) -> None:
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    lo, hi = value_range
    x = to_model_input(img, InputSpec((16, 16, 1)), Preprocess(value_range=value_range))
    expected = lo + (hi - lo) * img.astype(np.float64) / 255.0
    np.testing.assert_allclose(x[:, :, 0], expected, atol=TOL * max(1.0, hi - lo), rtol=0)
    assert x.min() == pytest.approx(lo) and x.max() == pytest.approx(hi)


def test_mean_std_by_hand() -> None:
    rgb = np.random.default_rng(4).integers(0, 256, (32, 32, 3), np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x = to_model_input(rgb, RGB32_CF, Preprocess(mean=mean, std=std))
    for c in range(3):
        expected = (rgb[:, :, c] / 255.0 - mean[c]) / std[c]
        np.testing.assert_allclose(x[c], expected, atol=TOL, rtol=0)


def test_single_mean_std_applies_to_every_channel() -> None:
    rgb = np.random.default_rng(5).integers(0, 256, (32, 32, 3), np.uint8)
    x = to_model_input(rgb, RGB32, Preprocess(mean=(0.5,), std=(0.25,)))
    np.testing.assert_allclose(x, (rgb / 255.0 - 0.5) / 0.25, atol=TOL, rtol=0)


def test_mean_std_length_must_match_channels() -> None:
    with pytest.raises(OptionError, match=r"3 values but the model input has 1 channel"):
        to_model_input(smooth(28, 28), GRAY28, Preprocess(mean=(0.1, 0.2, 0.3), std=(1.0, 1.0, 1.0)))


def test_invert() -> None:
    img = smooth(28, 28)
    x = to_model_input(img, GRAY28, Preprocess(invert=True))
    np.testing.assert_allclose(x[:, :, 0], (255.0 - img) / 255.0, atol=TOL, rtol=0)


def test_invert_after_resize() -> None:
    img = smooth(40, 50)
    x = to_model_input(img, GRAY28, Preprocess(invert=True, value_range=(-1.0, 1.0)))
    expected = -1.0 + 2.0 * (255.0 - pil_bilinear(img, 28, 28)) / 255.0
    np.testing.assert_allclose(x[:, :, 0], expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("invert", [False, True])
def test_fit_keeps_aspect_and_pads_with_black(invert: bool) -> None:
    img = smooth(20, 40, 3)  # wide: fits as 28 wide x 14 tall, centred at rows 7..20
    prep = Preprocess(resize="fit", invert=invert, value_range=(-1.0, 1.0))
    x = to_model_input(img, RGB32.with_size(28, 28), prep)
    content = pil_bilinear(img, 28, 14).astype(np.float64)
    if invert:
        content = 255.0 - content
    expected = np.zeros((28, 28, 3))
    expected[7:21] = content
    np.testing.assert_allclose(x, -1.0 + 2.0 * expected / 255.0, atol=TOL, rtol=0)
    assert (x[:7] == -1.0).all() and (x[21:] == -1.0).all()  # padding is pixel 0 -> lo, even inverted


def test_fit_tall_image_pads_left_and_right() -> None:
    img = smooth(30, 10)  # tall: 28 tall x 9 wide (28/30*10 = 9.33 -> 9), left pad (28-9)//2 = 9
    x = to_model_input(img, GRAY28, Preprocess(resize="fit"))
    expected = np.zeros((28, 28))
    expected[:, 9:18] = pil_bilinear(img, 9, 28)
    np.testing.assert_allclose(x[:, :, 0], expected / 255.0, atol=TOL, rtol=0)


def test_resize_none_requires_exact_size() -> None:
    img = smooth(28, 28)
    x = to_model_input(img, GRAY28, Preprocess(resize="none"))
    np.testing.assert_allclose(x[:, :, 0], img / 255.0, atol=TOL, rtol=0)
    with pytest.raises(InputError, match=r"is 30x20 but model input 'input' takes 28x28 .* resize is 'none'"):
        to_model_input(smooth(20, 30), GRAY28, Preprocess(resize="none"))


@pytest.mark.parametrize("resize", ["stretch", "fit", "none"])
def test_free_height_width_keep_the_image_size(resize: str) -> None:
    img = smooth(37, 45, 3)
    x = to_model_input(img, InputSpec((None, None, 3)), Preprocess(resize=resize))  # type: ignore[arg-type]
    np.testing.assert_allclose(x, img / 255.0, atol=TOL, rtol=0)


def test_free_channels_keep_the_image_channels() -> None:
    assert to_model_input(smooth(8, 8), InputSpec((8, 8, None))).shape == (8, 8, 1)
    assert to_model_input(smooth(8, 8, 3), InputSpec((8, 8, None))).shape == (8, 8, 3)


def test_one_pixel_image_is_upscaled_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="convscope.data"):
        x = to_model_input(np.array([[200]], np.uint8), GRAY28, label="dot.png")
    assert x.shape == (28, 28, 1)
    np.testing.assert_allclose(x, 200 / 255.0, atol=TOL)
    assert "dot.png is only 1x1 pixels; upscaled to 28x28" in caplog.text


def test_alpha_is_dropped() -> None:
    rgba = np.dstack([smooth(32, 32, 3), np.zeros((32, 32), np.uint8)])
    prepared = prepare_image(rgba, RGB32)
    np.testing.assert_allclose(prepared.x, rgba[:, :, :3] / 255.0, atol=TOL, rtol=0)
    assert prepared.notes == ("alpha dropped",)


def test_gray_alpha_to_rgb() -> None:
    la = np.dstack([smooth(32, 32), np.full((32, 32), 255, np.uint8)])
    prepared = prepare_image(la, RGB32)
    np.testing.assert_allclose(prepared.x, np.dstack([la[:, :, 0]] * 3) / 255.0, atol=TOL, rtol=0)
    assert prepared.notes == ("alpha dropped", "gray->RGB (replicated)")


def test_display_is_rgb_at_model_resolution_as_the_model_sees_it() -> None:
    img = smooth(50, 40)
    prepared = prepare_image(img, GRAY28, Preprocess(invert=True, mean=(0.5,), std=(0.2,)))
    assert prepared.display.shape == (28, 28, 3) and prepared.display.dtype == np.uint8
    np.testing.assert_array_equal(prepared.display[:, :, 1], 255 - pil_bilinear(img, 28, 28))


def test_non_image_specs_are_refused() -> None:
    with pytest.raises(InputError, match=r"shape \(100, 2\), which is not an image input"):
        to_model_input(smooth(8, 8), InputSpec((100, 2)))
    with pytest.raises(InputError, match=r"has 4 channels; images convert only to 1 \(gray\) or 3 \(RGB\)"):
        to_model_input(smooth(8, 8), InputSpec((8, 8, 4)))


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.int32), np.zeros((4, 4, 5), np.uint8), np.zeros(4, np.uint8), [[1, 2]]]
)
def test_bad_image_arrays_are_refused(bad: object) -> None:
    with pytest.raises(InputError, match="image"):
        to_model_input(bad, GRAY28)  # type: ignore[arg-type]
