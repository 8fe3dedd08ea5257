"""Fixtures of the model-kind tests: each model built once per test worker (lazily), saved as ``.keras``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")
pytest.importorskip("keras_hub")  # installed by `make install-test` (--no-deps, see the Makefile)

import models  # noqa: E402  (tests/kinds/models.py: the builders)


class Kind:
    """One built model, its ``.keras`` file and a folder of three images of its input size."""

    def __init__(self, name: str, folder: Path) -> None:
        keras.utils.set_random_seed(0)
        self.name = name
        self.model = models.BUILDERS[name]()
        self.path = folder / f"{name}.keras"
        self.model.save(self.path)
        self.shape = tuple(int(d) for d in self.model.inputs[0].shape[1:])
        self.images = folder / f"{name}_images"
        self.images.mkdir()
        rng = np.random.default_rng(1)
        for i in range(3):
            pixels = rng.integers(0, 256, (*self.shape[:2], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(self.images / f"im{i}.png")

    def x(self, n: int = 3, seed: int = 0) -> np.ndarray:
        """``n`` random inputs in [0, 1] of the model's input shape."""
        return np.random.default_rng(seed).random((n, *self.shape), dtype=np.float32)


class Kinds:
    """``kinds["unet"]``: the :class:`Kind`, built on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._built: dict[str, Kind] = {}

    def __getitem__(self, name: str) -> Kind:
        if name not in self._built:
            self._built[name] = Kind(name, self.folder)
        return self._built[name]


@pytest.fixture(scope="session")
def kinds(tmp_path_factory) -> Kinds:
    """The model kinds of :mod:`models`, each built once per test worker when first asked for."""
    return Kinds(tmp_path_factory.mktemp("kinds"))
