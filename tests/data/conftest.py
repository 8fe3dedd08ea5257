"""Fixtures for the data tests: real image files written with Pillow into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datahelp import huge_png


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Override the suite-wide Keras seeding: these tests use seeded numpy only and never import Keras."""


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def huge_png_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 20000x20000 1-bit PNG of ~50 kB (400 M pixels once decoded)."""
    return huge_png(tmp_path_factory.mktemp("huge") / "huge.png", 20000, 20000)
