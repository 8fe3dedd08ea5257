"""Helpers of the feature-visualization tests (a uniquely named module, imported by the test files)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")


def to_np(t) -> np.ndarray:
    """A backend tensor (or array) as numpy."""
    return np.asarray(keras.ops.convert_to_numpy(t))


def jit(fn):
    """``fn`` compiled under JAX (whose eager mode compiles every operation separately), else ``fn``."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def assert_untouched(model, weights: list[np.ndarray]) -> None:
    """Same weights, no wrapper left in any layer, never compiled."""
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for layer in model._flatten_layers(include_self=True):  # test-only use of a private helper
        assert "call" not in vars(layer), layer.name
    assert getattr(model, "optimizer", None) is None


def input_grad(fn, x: np.ndarray) -> np.ndarray:
    """The gradient of the scalar ``fn(x)`` with respect to ``x``, with the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = fn(t)
        return tape.gradient(y, t).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    import torch

    t = torch.tensor(x, requires_grad=True)
    fn(t).backward()
    return t.grad.numpy()
