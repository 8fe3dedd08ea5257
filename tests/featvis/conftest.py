"""Shared fixtures of the feature-visualization tests (they also run under JAX and torch)."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST CNN (loaded once; the tests check it is never modified)."""
    from convscope.models.load import load_model

    return load_model("mnist-cnn")
