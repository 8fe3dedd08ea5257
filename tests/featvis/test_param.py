"""Parameterizations: the Fourier inverse, value ranges, color decorrelation (numpy references)."""

from __future__ import annotations

import numpy as np
import pytest
from fvhelp import to_np

from convscope.errors import OptionError
from convscope.featvis.geometry import ValueMap
from convscope.featvis.param import (
    IMAGENET_COLOR_COV,
    FourierParam,
    PixelParam,
    _irfft2_blocks,
    _irfft2_matrices,
    color_sqrt,
    decorrelation_matrix,
    get_param,
    rfft2_freqs,
)

keras = pytest.importorskip("keras")

# lucid's rounded table (lucid/optvis/param/color.py), the SVD square root of the same covariance
LUCID_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


@pytest.mark.parametrize("method", ["svd", "cholesky"])
def test_color_sqrt_times_transpose_is_the_covariance(method):
    m = color_sqrt(IMAGENET_COLOR_COV, method)
    np.testing.assert_allclose(m @ m.T, IMAGENET_COLOR_COV, atol=1e-12)


def test_svd_sqrt_matches_lucid_table_up_to_column_signs():
    m = color_sqrt()
    signs = np.sign(np.sum(m * LUCID_SVD_SQRT, axis=0))
    np.testing.assert_allclose(m * signs, LUCID_SVD_SQRT, atol=0.01)


def test_decorrelation_matrix_is_scaled_sqrt_and_identity_otherwise():
    d = decorrelation_matrix(3).astype(np.float64)
    scale = np.max(np.linalg.norm(color_sqrt(), axis=0))
    np.testing.assert_allclose(d @ d.T, IMAGENET_COLOR_COV / scale**2, atol=1e-6)
    assert np.max(np.linalg.norm(d, axis=0)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(decorrelation_matrix(1), np.eye(1))
    np.testing.assert_array_equal(decorrelation_matrix(3, decorrelate=False), np.eye(3))


@pytest.mark.parametrize(("h", "w"), [(8, 8), (7, 9), (28, 28), (5, 6)])
def test_irfft2_matrices_equal_numpy_irfft2(h, w):
    rng = np.random.default_rng(0)
    spec = rng.normal(size=(2, 3, h, w // 2 + 1)) + 1j * rng.normal(size=(2, 3, h, w // 2 + 1))
    cy, sy, ax, bx = (m.astype(np.float64) for m in _irfft2_matrices(h, w))
    yr, yi = cy @ spec.real - sy @ spec.imag, cy @ spec.imag + sy @ spec.real
    np.testing.assert_allclose(yr @ ax - yi @ bx, np.fft.irfft2(spec, s=(h, w), norm="ortho"), atol=1e-5)
    mx, my = (m.astype(np.float64) for m in _irfft2_blocks(h, w))
    t = np.concatenate([spec.real, spec.imag], axis=-1) @ mx  # [T1 T2]
    blocks = my @ np.concatenate([t[..., :w], t[..., w:]], axis=-2)
    np.testing.assert_allclose(blocks, np.fft.irfft2(spec, s=(h, w), norm="ortho"), atol=1e-5)


@pytest.mark.parametrize("size", [(12, 10), (7, 9)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("param", [FourierParam(), PixelParam(), FourierParam(decay_power=0.5, decorrelate=False)])
def test_image_to_params_to_image_round_trip(param, channels, size):
    rng = np.random.default_rng(1)
    image = rng.uniform(0.05, 0.95, size=(2, *size, channels)).astype(np.float32)
    params = param.from_image(image)
    back = to_np(param.render([keras.ops.convert_to_tensor(p) for p in params], image.shape))
    np.testing.assert_allclose(back, image, atol=2e-4)


def test_fourier_scale_is_one_over_frequency():
    p = FourierParam()
    freqs = rfft2_freqs(16, 16)
    np.testing.assert_allclose(p.scale(16, 16), 1 / np.maximum(freqs, 1 / 16), rtol=1e-6)
    assert p.scale(16, 16)[0, 0] == pytest.approx(16)  # DC clamped at 1/max(H, W)
    assert p.scale(16, 16)[0, 1] == pytest.approx(16)  # f = 1/16 cycles per pixel


@pytest.mark.parametrize("param", ["fft", "pixel"])
def test_random_images_lie_in_the_unit_interval_and_map_to_the_range(param):
    p = get_param(param)
    shape = (3, 16, 16, 3)
    params = [keras.ops.convert_to_tensor(a * 300) for a in p.init(np.random.default_rng(0), shape)]
    image = to_np(p.render(params, shape))
    assert image.shape == shape and image.min() >= 0.0 and image.max() <= 1.0
    mapped = to_np(ValueMap.build((-2.0, 3.0)).apply(keras.ops.convert_to_tensor(image)))
    assert mapped.min() >= -2.0 and mapped.max() <= 3.0
    np.testing.assert_allclose(mapped, image * 5 - 2, atol=1e-5)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    normed = to_np(ValueMap.build(mean=mean, std=std).apply(keras.ops.convert_to_tensor(image)))
    np.testing.assert_allclose(normed, (image - np.array(mean)) / np.array(std), atol=1e-5)


def test_init_is_seeded_and_near_gray():
    p = FourierParam()
    a = p.init(np.random.default_rng(5), (1, 8, 8, 1))
    b = p.init(np.random.default_rng(5), (1, 8, 8, 1))
    np.testing.assert_array_equal(a[0], b[0])
    image = to_np(p.render([keras.ops.convert_to_tensor(x) for x in a], (1, 8, 8, 1)))
    assert np.all(np.abs(image - 0.5) < 0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"value_range": (1, 0)}, "lo < hi"), ({"value_range": "0,1"}, "two numbers"), ({"mean": 0.5}, "together"),
     ({"mean": 0.5, "std": 0}, "positive"), ({"value_range": (0, 1), "mean": 0.5, "std": 0.2}, "cannot be combined")],
)
def test_value_map_errors_echo_the_value(kwargs, match):
    with pytest.raises(OptionError, match=match):
        ValueMap.build(**kwargs)


def test_unknown_param_lists_valid_names():
    with pytest.raises(OptionError, match=r"'wavelet'.*fft, pixel"):
        get_param("wavelet")
    with pytest.raises(OptionError, match="svd, cholesky"):
        color_sqrt(method="eig")
