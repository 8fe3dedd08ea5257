"""Fixtures for the attribution tests, and the ``tf_only`` marker.

Tests marked ``tf_only`` need TensorFlow as the Keras backend (a ``tf.GradientTape`` reference) or run the
other backends themselves in subprocesses (the cross-backend test). They run in the normal TensorFlow run
and are *deselected* (not skipped) when tests/test_backends.py reruns this folder under JAX and torch, so
that run still reports no skips.
"""

from __future__ import annotations

import numpy as np
import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tf_only: runs only with the TensorFlow Keras backend (deselected otherwise)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    dropped = [item for item in items if item.get_closest_marker("tf_only")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("tf_only")]


@pytest.fixture(scope="session")
def mnist():
    from convscope.models.load import load_model

    return load_model("mnist-cnn")


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from convscope.models.zoo import sample_digits

    x, y = sample_digits()
    return x, y
