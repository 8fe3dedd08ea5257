"""The backend gradient primitive, checked against the closed form on a linear model (every backend)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from convscope import backend  # noqa: E402


def test_value_and_grad_matches_closed_form_and_leaves_model_alone():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="d")])
    kernel, bias = model.layers[0].get_weights()
    x = np.random.default_rng(0).normal(size=(2, 5)).astype("float32")

    def fn(call, wrt, scale):
        y = call(wrt[0])
        return keras.ops.sum(y[:, 1]) * scale, (y,)

    b = backend.get()
    run = b.value_and_grad(model, fn)
    value, aux, grads = run([x], keras.ops.convert_to_tensor(np.float32(2.0)))
    expected_value = 2.0 * float(np.sum(x @ kernel[:, 1] + bias[1]))
    assert abs(float(b.to_numpy(value)) - expected_value) <= 1e-4 * max(1.0, abs(expected_value))
    np.testing.assert_allclose(b.to_numpy(grads[0]), np.tile(2.0 * kernel[:, 1], (2, 1)), atol=1e-5)
    np.testing.assert_allclose(b.to_numpy(aux[0]), x @ kernel + bias, atol=1e-5)
    # weights unchanged, no optimizer attached
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], kernel)
    assert getattr(model, "optimizer", None) is None
