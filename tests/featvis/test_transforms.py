"""Transforms: identity parameters are the identity, whole-pixel moves are exact, draws are seeded."""

from __future__ import annotations

import numpy as np
import pytest
from fvhelp import input_grad, jit, to_np

from convscope.errors import OptionError
from convscope.featvis.transforms import (
    Compose,
    Jitter,
    Pad,
    RandomRotate,
    RandomScale,
    affine_sample,
    get_transforms,
    standard_transforms,
)

keras = pytest.importorskip("keras")


def images(b=2, h=7, w=9, c=3, seed=0):
    return np.random.default_rng(seed).uniform(size=(b, h, w, c)).astype(np.float32)


def apply(chain, x, params):
    return to_np(jit(chain.apply)(keras.ops.convert_to_tensor(x), [keras.ops.convert_to_tensor(p) for p in params]))


def sample(x, theta, **kw):
    fn = jit(lambda a, t: affine_sample(a, t, **kw))
    return to_np(fn(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(theta)))


@pytest.mark.parametrize("fill", ["constant", "edge", "reflect"])
def test_zero_jitter_unit_scale_zero_rotation_is_the_identity(fill):
    x = images()
    chain = Compose((Jitter(0), RandomScale((1.0,)), RandomRotate((0.0,)), Jitter(0)), fill=fill)
    params = chain.sample(np.random.default_rng(0), 2, 7, 9)
    assert len(params) == 1 and params[0].shape == (2, 2, 3)  # four transforms fused into one resampling
    np.testing.assert_allclose(apply(chain, x, params), x, atol=1e-5)
    np.testing.assert_allclose(apply(chain, x, chain.identity(2)), x, atol=1e-5)


@pytest.mark.parametrize(("ty", "tx"), [(1, 0), (0, 1), (-1, 2), (3, -2)])
def test_whole_pixel_translation_shifts_exactly(ty, tx):
    x = images(1, 6, 8, 2)
    theta = np.array([[[1, 0, -ty], [0, 1, -tx]]], np.float32)  # output (y, x) reads source (y - ty, x - tx)
    out = sample(x, theta, value=0.25)
    expected = np.full_like(x, 0.25)
    ys, xs = slice(max(ty, 0), 6 + min(ty, 0)), slice(max(tx, 0), 8 + min(tx, 0))
    expected[:, ys, xs] = x[:, max(-ty, 0) : 6 - max(ty, 0), max(-tx, 0) : 8 - max(tx, 0)]
    np.testing.assert_array_equal(out, expected)


def test_jitter_draws_whole_pixels_and_moves_content_by_them():
    chain = Compose((Jitter(2),), fill="constant", value=0.0)
    params = chain.sample(np.random.default_rng(3), 4, 10, 10)[0]
    shifts = -params[:, :, 2]  # source = output - shift
    assert np.all(shifts == np.round(shifts)) and np.all(np.abs(shifts) <= 2)
    x = images(4, 10, 10, 1)
    out = apply(chain, x, [params])
    for b, (ty, tx) in enumerate(shifts.astype(int)):
        moved = np.roll(x[b], (ty, tx), axis=(0, 1))
        inner = (slice(2, 8), slice(2, 8))
        np.testing.assert_array_equal(out[b][inner], moved[inner])


def test_rotation_by_90_degrees_is_exact_on_a_square_image():
    x = images(1, 5, 5, 1)
    chain = Compose((RandomRotate((90.0,)),))
    out = apply(chain, x, chain.sample(np.random.default_rng(0), 1, 5, 5))
    np.testing.assert_allclose(out[0, :, :, 0], np.rot90(x[0, :, :, 0]), atol=1e-5)  # counter-clockwise


def test_scale_two_about_the_center_matches_bilinear_numpy():
    x = images(1, 5, 5, 1)
    chain = Compose((RandomScale((2.0,)),), fill="edge")
    out = apply(chain, x, chain.sample(np.random.default_rng(0), 1, 5, 5))[0, :, :, 0]
    src = (np.arange(5) - 2) / 2 + 2  # output pixel i reads source (i - c) / 2 + c
    y0 = np.floor(src).astype(int)
    f = src - y0
    y1 = np.minimum(y0 + 1, 4)
    img = x[0, :, :, 0]
    rows = img[y0] * (1 - f)[:, None] + img[y1] * f[:, None]
    ref = rows[:, y0] * (1 - f)[None, :] + rows[:, y1] * f[None, :]
    np.testing.assert_allclose(out, ref, atol=1e-5)


def _bilinear_matrix(theta: np.ndarray, h: int, w: int, fill: str) -> np.ndarray:
    """numpy: the ``(h*w, h*w)`` matrix of bilinear sampling at ``theta @ (y, x, 1)`` (outside: weight 0)."""
    m = np.zeros((h * w, h * w))
    for y in range(h):
        for x in range(w):
            sy, sx = theta @ np.array([y, x, 1.0])
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            for dy in (0, 1):
                for dx in (0, 1):
                    wt = (sy - y0 if dy else 1 - (sy - y0)) * (sx - x0 if dx else 1 - (sx - x0))
                    yi, xi = y0 + dy, x0 + dx
                    if fill == "constant" and not (0 <= yi < h and 0 <= xi < w):
                        continue
                    yi, xi = min(max(yi, 0), h - 1), min(max(xi, 0), w - 1)
                    m[y * w + x, yi * w + xi] += wt
    return m


@pytest.mark.parametrize("fill", ["constant", "edge"])
def test_sampler_gradient_is_the_transposed_bilinear_matrix(fill):
    b, h, w, c = 2, 6, 7, 2
    x = images(b, h, w, c, seed=3)
    theta = standard_transforms(7).sample(np.random.default_rng(4), b, h, w)[0]
    g = np.random.default_rng(5).normal(size=(b, h, w, c)).astype(np.float32)

    def loss(a):
        out = affine_sample(a, keras.ops.convert_to_tensor(theta), fill=fill)
        return keras.ops.sum(out * keras.ops.convert_to_tensor(g))

    grad = input_grad(loss, x)
    for i in range(b):
        m = _bilinear_matrix(theta[i].astype(np.float64), h, w, fill)
        outside = 0.5 * (1 - m.sum(1))[:, None] if fill == "constant" else 0.0  # the gray fill
        ref = m @ x[i].reshape(h * w, c) + outside
        np.testing.assert_allclose(sample(x, theta, fill=fill)[i].reshape(h * w, c), ref, atol=1e-5)
        np.testing.assert_allclose(grad[i].reshape(h * w, c), m.T @ g[i].reshape(h * w, c), atol=1e-5)


def test_reflect_and_edge_fill():
    x = images(1, 4, 4, 1)
    theta = np.array([[[1, 0, 0], [0, 1, -1]]], np.float32)  # read one column to the left
    edge, reflect = sample(x, theta, fill="edge"), sample(x, theta, fill="reflect")
    np.testing.assert_array_equal(edge[0, :, 0], x[0, :, 0])
    np.testing.assert_array_equal(reflect[0, :, 0], x[0, :, 1])
    np.testing.assert_array_equal(edge[0, :, 1:], x[0, :, :3])


def test_sampling_is_seeded_and_pad_grows_the_image():
    chain = standard_transforms(28)
    a = chain.sample(np.random.default_rng(7), 3, 28, 28)
    b = chain.sample(np.random.default_rng(7), 3, 28, 28)
    np.testing.assert_array_equal(a[0], b[0])
    padded = Compose((Pad(2), Jitter(1)))
    assert padded.out_size(6, 6) == (10, 10)
    x = images(1, 6, 6, 1)
    out = apply(padded, x, padded.identity(1))
    assert out.shape == (1, 10, 10, 1)
    np.testing.assert_array_equal(out[0, 2:8, 2:8], x[0])
    assert np.all(out[0, :2] == 0.5)


def test_standard_chain_scales_with_the_image():
    assert standard_transforms(224).transforms[0] == Jitter(8)
    assert standard_transforms(28).transforms[0] == Jitter(1)
    assert get_transforms(None, 28).transforms == ()
    assert get_transforms("none", 28).transforms == ()


@pytest.mark.parametrize(
    ("make", "match"),
    [(lambda: Jitter(-1), "Jitter"), (lambda: RandomScale((0.0,)), "RandomScale"),
     (lambda: Pad(2, mode="wrap"), "wrap"),
     (lambda: Compose((), fill="mirror"), "mirror"), (lambda: get_transforms("wild", 28), "'wild'"),
     (lambda: Compose(("jitter",)), "not a transform")],
)
def test_bad_transforms_are_refused(make, match):
    with pytest.raises(OptionError, match=match):
        make()
