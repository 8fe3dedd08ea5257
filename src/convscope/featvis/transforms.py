"""Robustness transforms: random jitter, scale and rotation (and padding), seeded and differentiable.

Feature visualization without them finds high-frequency adversarial patterns; with them, each step sees a
slightly moved, zoomed and turned copy of the image, and only features that survive that grow.

Every random transform here is *size-preserving* and geometric, given by one affine matrix per image.
:class:`Compose` multiplies consecutive matrices (in numpy, float64) and resamples each image **once** with
a differentiable bilinear sampler written in ``keras.ops`` (:func:`affine_sample`): no blur from repeated
resampling, one gather per step. Where a transformed image looks outside its source, the ``fill`` mode
decides what it sees — ``"constant"`` (a flat value, default 0.5 = mid gray: the same as padding the image
first, as lucid does), ``"edge"`` or ``"reflect"``. :class:`Pad` pads explicitly (it changes the size, so
it suits fully convolutional models only).

Random parameters are drawn in numpy from a seeded ``Generator`` and passed to the compiled gradient
function as plain arrays of fixed shape, so runs are reproducible and the function is traced once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from convscope.errors import OptionError

Tensor = Any
FILL_MODES: Final = ("constant", "edge", "reflect")
PAD_MODES: Final = ("constant", "reflect")


def _translate(ty: np.ndarray, tx: np.ndarray) -> np.ndarray:
    """``(B, 3, 3)`` homogeneous matrices moving content by ``(ty, tx)`` pixels, in ``(y, x, 1)`` space."""
    m = np.tile(np.eye(3), (len(ty), 1, 1))
    m[:, 0, 2], m[:, 1, 2] = ty, tx
    return m


def _about_center(linear: np.ndarray, h: int, w: int) -> np.ndarray:
    """Embed ``(B, 2, 2)`` linear maps acting about the image center into ``(B, 3, 3)`` matrices."""
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    m = np.tile(np.eye(3), (len(linear), 1, 1))
    m[:, :2, :2] = linear
    m[:, :2, 2] = np.array([cy, cx]) - linear @ np.array([cy, cx])
    return m


class AffineTransform:
    """A random geometric transform: one forward matrix per image (content moves by it)."""

    def matrices(self, rng: np.random.Generator, batch: int, h: int, w: int) -> np.ndarray:
        """float64 ``(B, 3, 3)`` forward matrices in ``(y, x, 1)`` pixel coordinates."""
        raise NotImplementedError


@dataclass(frozen=True)
class Jitter(AffineTransform):
    """Translate each image by a random whole number of pixels in ``[-pixels, pixels]`` on both axes."""

    pixels: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.pixels, (int, np.integer)) or self.pixels < 0:
            raise OptionError(f"Jitter(pixels) must be an integer >= 0, got {self.pixels!r}")

    def matrices(self, rng: np.random.Generator, batch: int, h: int, w: int) -> np.ndarray:
        ty, tx = rng.integers(-self.pixels, self.pixels + 1, size=(2, batch))
        return _translate(ty.astype(np.float64), tx.astype(np.float64))


@dataclass(frozen=True)
class RandomScale(AffineTransform):
    """Zoom each image about its center by a factor drawn uniformly from ``scales``."""

    scales: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))

    def __post_init__(self) -> None:
        if not self.scales or not all(math.isfinite(s) and s > 0 for s in self.scales):
            raise OptionError(f"RandomScale(scales) must be positive numbers, got {self.scales!r}")

    def matrices(self, rng: np.random.Generator, batch: int, h: int, w: int) -> np.ndarray:
        s = rng.choice(np.asarray(self.scales, np.float64), size=batch)
        return _about_center(s[:, None, None] * np.eye(2), h, w)


@dataclass(frozen=True)
class RandomRotate(AffineTransform):
    """Turn each image about its center by an angle (degrees, counter-clockwise) drawn from ``degrees``."""

    degrees: tuple[float, ...] = tuple(range(-10, 11)) + (0,) * 5

    def __post_init__(self) -> None:
        if not self.degrees or not all(math.isfinite(d) for d in self.degrees):
            raise OptionError(f"RandomRotate(degrees) must be finite numbers, got {self.degrees!r}")

    def matrices(self, rng: np.random.Generator, batch: int, h: int, w: int) -> np.ndarray:
        theta = np.deg2rad(rng.choice(np.asarray(self.degrees, np.float64), size=batch))
        c, s = np.cos(theta), np.sin(theta)
        linear = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # y' = c y - s x, x' = s y + c x
        return _about_center(linear, h, w)


@dataclass(frozen=True)
class Pad:
    """Pad every side by ``pixels`` (``"constant"`` with ``value``, or ``"reflect"``); grows the image."""

    pixels: int
    mode: str = "constant"
    value: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.pixels, (int, np.integer)) or self.pixels < 0:
            raise OptionError(f"Pad(pixels) must be an integer >= 0, got {self.pixels!r}")
        if self.mode not in PAD_MODES:
            raise OptionError(f"unknown Pad mode {self.mode!r}; valid: {', '.join(PAD_MODES)}")

    def apply(self, x: Tensor) -> Tensor:
        from keras import ops

        p = int(self.pixels)
        widths = ((0, 0), (p, p), (p, p), (0, 0))
        if self.mode == "constant":
            return ops.pad(x, widths, mode="constant", constant_values=self.value)
        return ops.pad(x, widths, mode="reflect")


def _reflect(i: Tensor, n: int) -> Tensor:
    """Reflect integer indices into ``0..n-1`` (``-1 -> 1``, ``n -> n - 2``)."""
    from keras import ops

    if n == 1:
        return ops.zeros_like(i)
    period = 2 * n - 2
    i = ops.mod(i, period)
    return ops.where(i >= n, period - i, i)


def affine_sample(x: Tensor, theta: Tensor, *, fill: str = "constant", value: float = 0.5) -> Tensor:
    """Resample each image at ``theta @ (y, x, 1)`` with bilinear interpolation (differentiable in ``x``).

    At whole-number source coordinates the result is exact (the weights are 0 and 1), so the identity
    matrix returns ``x`` and a one-pixel translation shifts by exactly one pixel.

    Args:
        x: ``(B, H, W, C)`` images.
        theta: ``(B, 2, 3)``: maps output pixel coordinates ``(y, x, 1)`` to source coordinates.
        fill: What lies outside the source: ``"constant"`` (``value``), ``"edge"`` or ``"reflect"``.
        value: The constant for ``fill="constant"``.

    Returns:
        ``(B, H, W, C)``.
    """
    from keras import ops

    b, h, w, c = (int(d) for d in x.shape)
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    grid = np.stack([ys.ravel(), xs.ravel(), np.ones(h * w)]).astype(np.float32)  # (3, N)
    src = ops.matmul(theta, ops.convert_to_tensor(grid))  # (B, 2, N)
    sy, sx = src[:, 0], src[:, 1]
    y0f, x0f = ops.floor(sy), ops.floor(sx)
    wy, wx = sy - y0f, sx - x0f
    y0, x0 = ops.cast(y0f, "int32"), ops.cast(x0f, "int32")
    flat = ops.reshape(x, (b * h * w, c))
    base = ops.convert_to_tensor((np.arange(b, dtype=np.int32) * (h * w))[:, None])
    indices, weights = [], []
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yi, xi = y0 + dy, x0 + dx
        weight = (wy if dy else 1.0 - wy) * (wx if dx else 1.0 - wx)  # (B, N)
        if fill == "reflect":
            yi, xi = _reflect(yi, h), _reflect(xi, w)
        else:
            if fill == "constant":
                ok = ops.logical_and(ops.logical_and(yi >= 0, yi < h), ops.logical_and(xi >= 0, xi < w))
                weight = weight * ops.cast(ok, weight.dtype)
            yi, xi = ops.clip(yi, 0, h - 1), ops.clip(xi, 0, w - 1)
        indices.append(base + yi * w + xi)
        weights.append(weight)
    weight = ops.stack(weights)  # (4, B, N): one gather for all four corners
    # rows of a 3-D tensor: on torch a 2-D ``take`` becomes an embedding lookup, whose backward
    # (embedding_dense_backward) was 8 ms of a 49 ms step at 64 x 28 x 28; index_select's is a plain index_add
    values = ops.take(ops.reshape(flat, (b * h * w, 1, c)), ops.reshape(ops.stack(indices), (-1,)), axis=0)
    out = ops.sum(ops.reshape(values, (4, b, h * w, c)) * weight[..., None], axis=0)
    if fill == "constant" and value != 0:
        out = out + (1.0 - ops.sum(weight, axis=0))[:, :, None] * value
    return ops.reshape(out, (b, h, w, c))


@dataclass(frozen=True)
class Compose:
    """A chain of transforms; consecutive affine ones are fused into a single resampling.

    Attributes:
        transforms: :class:`AffineTransform` and :class:`Pad` instances, applied in order.
        fill: Out-of-image mode of the resampling (see :func:`affine_sample`).
        value: Constant for ``fill="constant"`` (in [0, 1] image units).
    """

    transforms: tuple[Any, ...] = ()
    fill: str = "constant"
    value: float = 0.5
    _stages: tuple[tuple[Any, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.fill not in FILL_MODES:
            raise OptionError(f"unknown fill mode {self.fill!r}; valid: {', '.join(FILL_MODES)}")
        stages: list[tuple[Any, ...]] = []
        for t in self.transforms:
            if not isinstance(t, (AffineTransform, Pad)):
                raise OptionError(f"not a transform: {t!r}; use Jitter, RandomScale, RandomRotate or Pad")
            if isinstance(t, AffineTransform) and stages and isinstance(stages[-1][0], AffineTransform):
                stages[-1] = (*stages[-1], t)
            else:
                stages.append((t,))
        object.__setattr__(self, "_stages", tuple(stages))

    @property
    def key(self) -> tuple[Any, ...]:
        """Structure of the chain (the random values are inputs, not part of it)."""
        return (tuple(repr(t) for t in self.transforms), self.fill, self.value)

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        """Image size after the chain."""
        grow = sum(2 * int(t.pixels) for t in self.transforms if isinstance(t, Pad))
        return h + grow, w + grow

    def sample(self, rng: np.random.Generator, batch: int, h: int, w: int) -> list[np.ndarray]:
        """Draw this step's random parameters: one float32 ``(B, 2, 3)`` matrix stack per affine stage."""
        out: list[np.ndarray] = []
        for stage in self._stages:
            if isinstance(stage[0], Pad):
                h, w = h + 2 * int(stage[0].pixels), w + 2 * int(stage[0].pixels)
                continue
            forward = np.tile(np.eye(3), (batch, 1, 1))
            for t in stage:
                forward = t.matrices(rng, batch, h, w) @ forward
            out.append(np.linalg.inv(forward)[:, :2, :].astype(np.float32))
        return out

    def identity(self, batch: int) -> list[np.ndarray]:
        """Parameters that leave every image as it is (same shapes as :meth:`sample`)."""
        n = sum(1 for s in self._stages if isinstance(s[0], AffineTransform))
        return [np.tile(np.eye(3)[:2], (batch, 1, 1)).astype(np.float32) for _ in range(n)]

    def apply(self, x: Tensor, params: Sequence[Tensor]) -> Tensor:
        """Transform ``(B, H, W, C)`` images with parameters from :meth:`sample` (keras.ops)."""
        it = iter(params)
        for stage in self._stages:
            if isinstance(stage[0], Pad):
                x = stage[0].apply(x)
            else:
                x = affine_sample(x, next(it), fill=self.fill, value=self.value)
        return x


def standard_transforms(size: int = 224) -> Compose:
    """lucid's standard robustness chain, sized for ``size``-pixel images, at a fixed output size.

    lucid pads 12 px (constant 0.5), jitters 8, scales by 0.9..1.1, rotates by -10..10 degrees and jitters
    4 at 224 px. Here the padding is the constant fill of the resampling (so the size stays fixed) and the
    jitters scale with the image: ``round(8 * size / 224)`` and ``round(4 * size / 224)``, at least 1.
    """
    f = size / 224.0
    return Compose(
        (Jitter(max(1, round(8 * f))), RandomScale(), RandomRotate(), Jitter(max(1, round(4 * f)))),
        fill="constant",
        value=0.5,
    )


def get_transforms(transforms: str | Compose | Sequence[Any] | None, size: int) -> Compose:
    """A :class:`Compose` from ``"default"``/``"standard"``, ``"none"``/``None``, a list or a Compose.

    Raises:
        OptionError: unknown name or a list item that is not a transform.
    """
    if transforms is None:
        return Compose(())
    if isinstance(transforms, Compose):
        return transforms
    if isinstance(transforms, str):
        key = transforms.strip().lower()
        if key in ("default", "standard"):
            return standard_transforms(size)
        if key in ("none", ""):
            return Compose(())
        raise OptionError(f"unknown transforms {transforms!r}; valid: 'default', 'none', a list or a Compose")
    return Compose(tuple(transforms))
