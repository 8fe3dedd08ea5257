"""Integrated Gradients completeness, and SmoothGrad vs saliency, on the MNIST CNN (every backend).

The logits used as the reference ``f`` are computed without convscope: a functional sub-model gives the
``dropout_1`` features and the logits are formed from the ``predictions`` kernel in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import attrib_refs as ref  # noqa: E402

from convscope.attribution import cam  # noqa: E402

ROWS = [0, 2, 4, 6, 9]  # digits 0, 1, 2, 3 and one more


def logits(model, x):
    hidden = keras.Model(model.inputs, model.get_layer("dropout_1").output)([x], training=False)
    kernel, bias = ref.weights(model.get_layer("predictions"))
    return ref.to_numpy(hidden).astype(np.float64) @ kernel + bias


@pytest.mark.parametrize("rule,baseline", [("trapezoid", None), ("midpoint", 0.1)])
def test_integrated_gradients_completeness(mnist, digits, rule, baseline):
    x = digits[0][ROWS]
    res = cam(mnist, x, "integrated_gradients", steps=64, rule=rule, baseline=baseline, batch_size=128)
    f_x = logits(mnist, x)
    f_b = logits(mnist, np.full_like(x, 0.0 if baseline is None else baseline))
    rows = np.arange(len(x))
    expected = f_x[rows, res.targets] - f_b[rows, res.targets]
    np.testing.assert_allclose(res.scores, f_x[rows, res.targets], rtol=1e-4, atol=1e-4)
    total = res.raw.reshape(len(x), -1).sum(axis=1)
    rel = np.abs(total - expected) / np.abs(expected)
    assert np.all(rel <= 0.01), f"completeness off by {rel} (sums {total}, f(x) - f(x') {expected})"
    assert res.used_logits and res.layer == "input" and res.maps.shape == (len(x), 28, 28)
    assert res.raw.min() < 0 < res.raw.max()  # signed attributions; maps show |raw|


def test_smoothgrad_without_noise_is_saliency(mnist, digits):
    x = digits[0][:4]
    sal = cam(mnist, x, "saliency")
    smooth = cam(mnist, x, "smoothgrad", sigma=0.0, n=3)
    np.testing.assert_allclose(smooth.raw, sal.raw, rtol=1e-5, atol=1e-6 * float(sal.raw.max()))
    assert smooth.targets == sal.targets


def test_smoothgrad_is_seeded_and_batch_size_independent(mnist, digits):
    x = digits[0][:3]
    a = cam(mnist, x, "smoothgrad", n=6, seed=3)
    b = cam(mnist, x, "smoothgrad", n=6, seed=3, batch_size=5)
    c = cam(mnist, x, "smoothgrad", n=6, seed=4)
    np.testing.assert_allclose(a.raw, b.raw, rtol=1e-5, atol=1e-6 * float(a.raw.max()))
    assert np.abs(a.raw - c.raw).max() > 1e-3 * a.raw.max()  # another seed, other noise
    sal = cam(mnist, x, "saliency")
    assert np.abs(a.raw - sal.raw).max() > 1e-3 * sal.raw.max()  # the noise does something
