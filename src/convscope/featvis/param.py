"""Image parameterizations: what the optimizer changes, and how it becomes an image in [0, 1].

Two parameterizations, after Olah et al., "Feature Visualization" (Distill, 2017) and lucent:

* :class:`PixelParam`: one free logit per pixel and channel.
* :class:`FourierParam`: the image's 2-D real spectrum, each frequency scaled by ``1 / f**decay_power``
  so that low frequencies dominate and every frequency learns at a similar rate.

Both share the last two steps (:func:`to_unit`): with 3 channels the logits are *color decorrelated* by
a square root of the ImageNet RGB covariance (independent latent channels, correlated colors), then a
sigmoid maps them to [0, 1]. With another channel count there is no decorrelation.

A parameterization holds no state: :meth:`Param.init` makes the numpy arrays the optimizer updates and
:meth:`Param.render` turns them into a ``(B, H, W, C)`` image with ``keras.ops`` (differentiable, any
backend). :class:`ValueMap` then maps [0, 1] to the range the model was trained on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from convscope.errors import OptionError

Tensor = Any

#: ImageNet RGB covariance (pixel values in [0, 1]) from its principal components: the eigenvalues and
#: eigenvectors used for AlexNet's "PCA lighting" augmentation (Krizhevsky et al., 2012).
IMAGENET_EIGVAL: Final = np.array([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC: Final = np.array(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
)
IMAGENET_COLOR_COV: Final = IMAGENET_EIGVEC @ np.diag(IMAGENET_EIGVAL) @ IMAGENET_EIGVEC.T
_EPS: Final = 1e-6
#: lucent's constant: the Fourier image is divided by 4 before the sigmoid.
FOURIER_DIVISOR: Final = 4.0


def color_sqrt(cov: np.ndarray = IMAGENET_COLOR_COV, method: str = "svd") -> np.ndarray:
    """A matrix ``M`` with ``M @ M.T == cov``.

    Args:
        cov: Symmetric positive definite ``(C, C)`` color covariance.
        method: ``"svd"`` (``U @ diag(sqrt(s))``, what lucid uses) or ``"cholesky"`` (lower triangular).

    Returns:
        float64 ``(C, C)``.
    """
    cov = np.asarray(cov, np.float64)
    if method == "cholesky":
        return np.linalg.cholesky(cov)
    if method != "svd":
        raise OptionError(f"unknown square-root method {method!r}; valid: svd, cholesky")
    u, s, _ = np.linalg.svd(cov)
    return u * np.sqrt(s)[None, :]


def decorrelation_matrix(channels: int, decorrelate: bool = True) -> np.ndarray:
    """The matrix applied to latent colors: ImageNet ``color_sqrt`` scaled to unit max column norm.

    Scaling by the largest column norm (as lucid does) keeps the logits' magnitude near the latent's.

    Returns:
        float32 ``(C, C)``; the identity unless ``channels == 3`` and ``decorrelate``.
    """
    if channels != 3 or not decorrelate:
        return np.eye(channels, dtype=np.float32)
    m = color_sqrt(IMAGENET_COLOR_COV)
    return (m / np.max(np.linalg.norm(m, axis=0))).astype(np.float32)


def to_unit(logits: Tensor, matrix: np.ndarray) -> Tensor:
    """Decorrelate and squash: ``sigmoid(logits @ matrix.T)``.

    Args:
        logits: ``(B, H, W, C)`` latent values.
        matrix: ``(C, C)`` from :func:`decorrelation_matrix`.

    Returns:
        ``(B, H, W, C)`` in (0, 1).
    """
    from keras import ops

    if not np.array_equal(matrix, np.eye(matrix.shape[0], dtype=matrix.dtype)):
        logits = ops.matmul(logits, ops.convert_to_tensor(matrix.T))
    return ops.sigmoid(logits)


def from_unit(image01: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Numpy inverse of :func:`to_unit`: the latent logits that render to ``image01`` (clipped to (0, 1))."""
    p = np.clip(np.asarray(image01, np.float64), _EPS, 1 - _EPS)
    logits = np.log(p) - np.log1p(-p)
    return logits @ np.linalg.inv(matrix.astype(np.float64)).T


class Param:
    """Base class: a parameterization of a batch of ``B`` images of ``H x W x C``."""

    kind: str = "?"

    def init(self, rng: np.random.Generator, shape: tuple[int, int, int, int]) -> list[np.ndarray]:
        """Random starting parameters for images of ``shape = (B, H, W, C)`` (float32 arrays)."""
        raise NotImplementedError

    def from_image(self, image01: np.ndarray) -> list[np.ndarray]:
        """Parameters that render to ``image01`` (``(B, H, W, C)`` in [0, 1]), for a chosen start."""
        raise NotImplementedError

    def render(self, params: Sequence[Tensor], shape: tuple[int, int, int, int]) -> Tensor:
        """The images, ``(B, H, W, C)`` in (0, 1), as a differentiable function of ``params``."""
        raise NotImplementedError

    @property
    def key(self) -> tuple[Any, ...]:
        """Everything that changes the computation (for the compile cache)."""
        return (type(self).__name__, *sorted(vars(self).items()))


@dataclass(frozen=True)
class PixelParam(Param):
    """One logit per pixel and channel, initialised from ``N(0, sd)``.

    Attributes:
        sd: Standard deviation of the initial logits (0.01: a flat mid-gray start).
        decorrelate: Apply ImageNet color decorrelation when there are 3 channels.
    """

    sd: float = 0.01
    decorrelate: bool = True
    kind: str = "pixel"

    def init(self, rng: np.random.Generator, shape: tuple[int, int, int, int]) -> list[np.ndarray]:
        return [(rng.standard_normal(shape) * self.sd).astype(np.float32)]

    def from_image(self, image01: np.ndarray) -> list[np.ndarray]:
        matrix = decorrelation_matrix(image01.shape[-1], self.decorrelate)
        return [from_unit(image01, matrix).astype(np.float32)]

    def render(self, params: Sequence[Tensor], shape: tuple[int, int, int, int]) -> Tensor:
        return to_unit(params[0], decorrelation_matrix(shape[-1], self.decorrelate))


def rfft2_freqs(h: int, w: int) -> np.ndarray:
    """Spatial frequency magnitude (cycles per pixel) of each ``rfft2`` coefficient, ``(h, w // 2 + 1)``."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def _irfft2_matrices(h: int, w: int) -> tuple[np.ndarray, ...]:
    """Real matrices computing ``np.fft.irfft2(S, s=(h, w), norm="ortho")`` from ``S``'s real/imag parts.

    ``Y = E_y @ S`` (complex inverse DFT along y), then ``img = Re(Y) @ A - Im(Y) @ B`` where ``A``, ``B``
    hold ``c_k cos`` / ``c_k sin`` of the x phases, ``c_k = 1`` for the DC (and even-``w`` Nyquist) column
    and 2 for the others; irfft ignores the imaginary part of those two columns, and so does this.

    Returns:
        float32 ``(cos_y, sin_y, a_x, b_x)`` of shapes ``(h, h), (h, h), (wr, w), (wr, w)``.
    """
    wr = w // 2 + 1
    phase_y = 2 * np.pi * np.outer(np.arange(h), np.arange(h)) / h  # [y, ky]
    phase_x = 2 * np.pi * np.outer(np.arange(wr), np.arange(w)) / w  # [kx, x]
    weight = np.full(wr, 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    norm = 1.0 / math.sqrt(h * w)
    a_x = weight[:, None] * np.cos(phase_x) * norm
    b_x = weight[:, None] * np.sin(phase_x) * norm
    return tuple(m.astype(np.float32) for m in (np.cos(phase_y), np.sin(phase_y), a_x, b_x))


@functools.lru_cache(maxsize=16)
def _irfft2_blocks(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The matrices of :func:`_irfft2_matrices` as two real block matrices: two matmuls per image.

    Along x, ``[R I] @ mx = [R a - I b, R b + I a] = [T1 T2]`` (the real and imaginary parts after the
    inverse DFT along x); along y, ``my @ [T1; T2] = cos_y T1 - sin_y T2``, the image. Two plain matrix
    products (plus one small transpose) instead of six einsums: forward + backward 1.5x faster at
    64 x 28 x 28 and 16 x 224 x 224 x 3 on TensorFlow (CPU), about even (0.9x) for one 224 x 224 x 3 image.

    Returns:
        float32 ``mx`` ``(2 Wr, 2 W)`` and ``my`` ``(H, 2 H)``.
    """
    cos_y, sin_y, a_x, b_x = _irfft2_matrices(h, w)
    mx = np.block([[a_x, b_x], [-b_x, a_x]])
    my = np.concatenate([cos_y, -sin_y], axis=1)
    return mx.astype(np.float32), my.astype(np.float32)


@dataclass(frozen=True)
class FourierParam(Param):
    """The image's spectrum, scaled by ``1 / max(f, 1 / max(H, W)) ** decay_power``.

    The parameters are the real and imaginary parts, each ``(B, C, H, W // 2 + 1)``, initialised from
    ``N(0, sd)``. Rendering: scale, orthonormal inverse real 2-D FFT (two products with small real DFT
    block matrices, :func:`_irfft2_blocks`, so it is differentiable and identical on every backend),
    divide by 4, decorrelate colors, sigmoid.

    Attributes:
        sd: Standard deviation of the initial spectrum.
        decay_power: Exponent of the ``1/f`` scaling (1 = lucid's default; 0 = white).
        decorrelate: Apply ImageNet color decorrelation when there are 3 channels.
    """

    sd: float = 0.01
    decay_power: float = 1.0
    decorrelate: bool = True
    kind: str = "fft"

    def scale(self, h: int, w: int) -> np.ndarray:
        """float32 ``(H, W // 2 + 1)`` factor applied to the parameters: ``1 / max(f, 1/max(H, W))**p``.

        With the orthonormal inverse FFT this equals lucid's ``sqrt(H W) / f`` with its unnormalized one.
        """
        freqs = rfft2_freqs(h, w)
        return (1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** self.decay_power).astype(np.float32)

    def init(self, rng: np.random.Generator, shape: tuple[int, int, int, int]) -> list[np.ndarray]:
        b, h, w, c = shape
        size = (b, c, h, w // 2 + 1)
        return [(rng.standard_normal(size) * self.sd).astype(np.float32) for _ in range(2)]

    def from_image(self, image01: np.ndarray) -> list[np.ndarray]:
        _, h, w, c = image01.shape
        logits = from_unit(image01, decorrelation_matrix(c, self.decorrelate))
        spectrum = np.fft.rfft2(np.moveaxis(logits, -1, 1) * FOURIER_DIVISOR, norm="ortho")
        spectrum /= self.scale(h, w)
        return [spectrum.real.astype(np.float32), spectrum.imag.astype(np.float32)]

    def render(self, params: Sequence[Tensor], shape: tuple[int, int, int, int]) -> Tensor:
        from keras import ops

        b, h, w, c = shape
        wr = w // 2 + 1
        mx, my = _irfft2_blocks(h, w)
        scale = ops.convert_to_tensor(self.scale(h, w) / FOURIER_DIVISOR)
        spec = ops.concatenate([params[0] * scale, params[1] * scale], axis=-1)  # (B, C, H, 2 Wr) = [R I]
        t = ops.matmul(ops.reshape(spec, (b * c * h, 2 * wr)), ops.convert_to_tensor(mx))  # [T1 T2]
        t = ops.transpose(ops.reshape(t, (b * c, h, 2, w)), (0, 2, 1, 3))  # (BC, 2, H, W)
        image = ops.matmul(ops.convert_to_tensor(my), ops.reshape(t, (b * c, 2 * h, w)))  # (BC, H, W)
        if c == 1:
            image = ops.reshape(image, (b, h, w, 1))
        else:
            image = ops.transpose(ops.reshape(image, (b, c, h, w)), (0, 2, 3, 1))
        return to_unit(image, decorrelation_matrix(c, self.decorrelate))


PARAMS: Final = {"fft": FourierParam, "fourier": FourierParam, "pixel": PixelParam}


def get_param(param: str | Param, decorrelate: bool = True) -> Param:
    """A :class:`Param` from a name (``"fft"``, ``"pixel"``) or the instance itself.

    Raises:
        OptionError: unknown name, listing the valid ones.
    """
    if isinstance(param, Param):
        return param
    key = param.strip().lower() if isinstance(param, str) else param
    if key not in PARAMS:
        raise OptionError(f"unknown parameterization {param!r}; valid: fft, pixel (or a Param instance)")
    return PARAMS[key](decorrelate=decorrelate)
