"""Every view works on a mixed-precision model (issue 18, item 9): ``mixed_float16`` layers, float32 head.

The reference is a float32 twin with the same weights: a float16 model computes the same function to
about three significant digits, so each view must agree with the twin's within float16 tolerances.
tests/test_backends.py runs this file under JAX and torch too.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

METHODS = ["gradcam", "gradcam++", "layercam", "scorecam", "saliency", "smoothgrad", "integrated_gradients"]


def _build() -> keras.Model:
    keras.utils.set_random_seed(3)
    inp = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, activation="relu", name="c0")(inp)
    x = L.Conv2D(8, 3, activation="relu", name="c1")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    x = L.Dense(4, name="logits")(x)
    return keras.Model(inp, L.Activation("softmax", dtype="float32", name="probs")(x), name="mixed")


@pytest.fixture(scope="module")
def twins() -> tuple[keras.Model, keras.Model]:
    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = _build()
    finally:
        keras.mixed_precision.set_global_policy(before)
    plain = _build()
    plain.set_weights(mixed.get_weights())
    assert mixed.get_layer("c1").compute_dtype == "float16" and plain.get_layer("c1").compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == before
    return mixed, plain


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32")


def test_policy_is_restored(twins):
    assert keras.mixed_precision.global_policy().name == "float32"


def test_probe_matches_the_float32_twin(twins, x):
    from convscope.api import activations

    mixed, plain = twins
    a, b = activations(mixed, x, layers=["c0", "c1"]), activations(plain, x, layers=["c0", "c1"])
    for key in ("c0", "c1"):
        assert a[key].dtype == np.float16
        np.testing.assert_allclose(a[key].astype(np.float32), b[key], atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("method", METHODS)
def test_every_cam_method_matches_the_float32_twin(twins, x, method):
    from convscope.attribution.api import cam

    mixed, plain = twins
    a, b = cam(mixed, x, method), cam(plain, x, method)
    assert a.maps.shape == b.maps.shape == (3, 16, 16) and np.isfinite(a.maps).all()
    # maps are normalized per image: compare them as pictures
    assert np.abs(a.maps - b.maps).max() <= 0.1, np.abs(a.maps - b.maps).max()


def test_maximize_matches_the_float32_twin(twins):
    from convscope.featvis.optimize import maximize_channels

    mixed, plain = twins
    a = maximize_channels(mixed, "c1", "0-3", steps=6, seed=1, param="pixel")
    b = maximize_channels(plain, "c1", "0-3", steps=6, seed=1, param="pixel")
    assert np.isfinite(a.final).all() and a.images.shape == b.images.shape
    np.testing.assert_allclose(a.initial, b.initial, atol=2e-2, rtol=2e-2)
    np.testing.assert_allclose(a.final, b.final, atol=5e-2, rtol=5e-2)


def test_scan_matches_the_float32_twin(twins, x):
    from convscope.scan.run import scan

    mixed, plain = twins
    a, b = scan(mixed, x, top_k=2), scan(plain, x, top_k=2)
    np.testing.assert_allclose(a["c1"].mean, b["c1"].mean, atol=1e-2, rtol=1e-2)
    np.testing.assert_allclose(a["c1"].max, b["c1"].max, atol=2e-2, rtol=2e-2)
