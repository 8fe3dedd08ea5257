"""Per-batch reductions of one layer's activation: the only code that touches every activation value.

A batch of activations ``(n, *spatial, C)`` is reduced to small per-image and per-channel arrays
(:class:`BatchSummary`): in one compiled pass when numba is installed (:mod:`~convscope.scan.fused`, the
``fast`` extra), else in a few streaming numpy passes over cache-sized chunks of images. Two tricks keep
the numpy passes at memory speed although ``C`` (the contiguous axis) is small:

* the positions of one image are folded into rows ``R * C`` floats wide (``R`` divides the number of
  positions), so every reduction runs over long contiguous rows instead of ``C``-wide ones;
* positive values are counted by summing the boolean mask as bytes, at most 255 rows per partial sum so
  no byte overflows.

Second moments are taken about zero (float32 per chunk or per block of positions, combined in float64);
when that would lose precision (a channel whose mean is large against its spread, condition
``(mean^2 + var) / var > KAPPA_MAX``) the batch is reduced again about its own mean, so the variance stays
accurate for any offset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Above this condition number the uncentred second moment is recomputed about the batch mean.
KAPPA_MAX = 64.0
#: Target bytes of activation per chunk (fits in a core's L2 cache).
CHUNK_BYTES = 1 << 20
_GROUP = 255  # rows per uint8 partial sum of a boolean mask (a byte holds at most 255)
_GATHER_PAIRS = 256  # above this many (image, channel) pairs, argmax positions are found image by image
#: Use the one-pass numba kernel when numba is installed (set False to force the numpy passes).
USE_FUSED = True
#: Rows of a layer's ``(positions, C)`` matrix per Gram product (bounds the temporary copy).
GRAM_CHUNK_BYTES = 1 << 21
#: The Gram matrix is taken about zero (no centring copy) when every channel's condition
#: ``(mean^2 + var) / var`` is at most this; above it the values are shifted by the mean first.
UNCENTRED_KAPPA = 4.0
#: Layers with at most this fraction of nonzero values (ReLU layers: 11% on MNIST conv_1) and at most
#: :data:`SPARSE_MAX_CHANNELS` channels get the sparse Gram kernel (needs numba) instead of a dense BLAS product.
SPARSE_DENSITY = 0.2
SPARSE_MAX_CHANNELS = 256
#: Products of the Gram matrix in float64 (True: r exact to ~1e-12, about 2.5x the cost) or float32
#: (False, the default: each BLAS call sums in float32, so r is within ~5e-6 of the float64 value --
#: 3.3e-6 measured on MNIST conv_0, whose constant background makes the rounding systematic -- far below
#: what the near-duplicate threshold needs, and the scan keeps its throughput). Both accumulate the
#: per-chunk products in float64 and merge exactly.
GRAM_FLOAT64 = False


@dataclass(frozen=True, eq=False)
class Bounds:
    """A bounded activation (tanh, sigmoid, ...) and what counts as "near a bound".

    Attributes:
        name: The activation's name, e.g. ``"tanh"``.
        low: Lower bound of its output.
        high: Upper bound of its output.
        margin: A value is saturated when it is within ``margin * (high - low)`` of a bound.
    """

    name: str
    low: float
    high: float
    margin: float = 0.01

    @property
    def thresholds(self) -> tuple[float, float]:
        """``(lo, hi)``: values ``<= lo`` or ``>= hi`` count as saturated."""
        span = (self.high - self.low) * self.margin
        return self.low + span, self.high - span


@dataclass(frozen=True, eq=False)
class BatchSummary:
    """What one batch contributes to one layer's statistics.

    Attributes:
        sums: float64 ``(n, C)``: per image, the sum over positions.
        maxes: float32 ``(n, C)``: per image, the maximum over positions (the spatial max).
        m2: float64 ``(C,)``: sum of squared deviations from the batch mean, over images and positions.
        positive: int64 ``(C,)``: values ``> 0``.
        saturated: int64 ``(C,)`` values near a bound, or ``None`` for an unbounded activation.
        positions: Positions per image (product of the spatial sizes; 1 for a vector).
        nonzero: int64 ``(C,)`` values ``!= 0`` (counted by the fused pass only; ``None`` from the numpy
            passes).
    """

    sums: np.ndarray
    maxes: np.ndarray
    m2: np.ndarray
    positive: np.ndarray
    saturated: np.ndarray | None
    positions: int
    nonzero: np.ndarray | None = None


def fold_factor(positions: int, limit: int = 64) -> int:
    """The largest divisor of ``positions`` that is ``<= limit`` (rows ``R * C`` wide, see module doc)."""
    return max(d for d in range(1, min(positions, limit) + 1) if positions % d == 0)


def count_positive(mask: np.ndarray) -> np.ndarray:
    """Per column, how many entries of a boolean ``(rows, C)`` C-contiguous mask are True (int64 ``(C,)``).

    Rows are summed as bytes, at most 255 at a time (a byte cannot overflow), which numpy vectorizes.
    """
    counts = np.zeros(mask.shape[1], np.int64)
    as_bytes = mask.view(np.uint8)
    for first in range(0, mask.shape[0], _GROUP):
        counts += as_bytes[first : first + _GROUP].sum(axis=0, dtype=np.uint8)
    return counts


def as_channels_last(act: np.ndarray, channels_first: bool) -> np.ndarray:
    """``(n, *spatial, C)`` C-contiguous float32 (a view when it already is)."""
    if channels_first and act.ndim > 2:
        act = np.moveaxis(act, 1, -1)
    if act.dtype != np.float32:
        act = act.astype(np.float32)
    return np.ascontiguousarray(act)


def summarize(act: np.ndarray, bounds: Bounds | None = None, *, fused: bool | None = None) -> BatchSummary:
    """Reduce one batch ``(n, *spatial, C)`` (channels last, C-contiguous float32).

    Args:
        act: The batch's activations.
        bounds: The layer's bounded activation, to count saturated values; ``None`` to skip.
        fused: Use the one-pass numba kernel (:mod:`~convscope.scan.fused`); ``None`` = when numba is
            installed and :data:`USE_FUSED` is on. ``False`` = the numpy passes.

    Returns:
        The :class:`BatchSummary` (exact up to float32 rounding of short partial sums).
    """
    n, channels = act.shape[0], act.shape[-1]
    positions = act.size // max(n * channels, 1)
    kernel = _fused_kernel() if fused or (fused is None and USE_FUSED) else None
    if fused and kernel is None:
        raise RuntimeError("fused=True needs numba (pip install 'convscope[fast]')")
    r = fold_factor(positions)
    wide = act.reshape(n, positions // r, r * channels)
    per_chunk = max(1, CHUNK_BYTES // max(act[0].nbytes, 1))
    saturated = None if bounds is None else np.zeros(channels, np.int64)
    nonzero = None
    if kernel is not None and n and act.dtype == np.float32 and act.flags.c_contiguous:
        sums = np.empty((n, channels), np.float64)
        maxes = np.empty((n, channels), np.float32)
        sq = np.zeros(channels, np.float64)
        positive = np.zeros(channels, np.int64)
        nonzero = np.zeros(channels, np.int64)
        lo, hi = bounds.thresholds if bounds is not None else (0.0, 0.0)
        kernel(
            act.reshape(n, positions, channels),
            float(lo),
            float(hi),
            bounds is not None,
            sums,
            maxes,
            sq,
            positive,
            nonzero,
            saturated if saturated is not None else np.zeros(channels, np.int64),
        )
    else:
        sums, maxes, sq, positive = _numpy_passes(wide, r, channels, per_chunk, bounds, saturated)
    total = n * positions
    batch_sum = sums.sum(axis=0)
    m2 = sq - batch_sum * batch_sum / total
    # condition (mean^2 + var) / var = sq / m2; recompute when it is large or m2 came out <= 0
    if np.any((sq > 0) & np.isfinite(sq) & ~(m2 * KAPPA_MAX >= sq)):
        m2, sums = _centred(wide, batch_sum / total, r, channels, per_chunk)
    return BatchSummary(sums, maxes, np.maximum(m2, 0.0), positive, saturated, positions, nonzero)


def _fused_kernel() -> Any:
    from convscope.scan.fused import kernel

    return kernel()


def _sparse_kernel() -> Any:
    from convscope.scan.fused import sparse_gram_kernel

    return sparse_gram_kernel()


def _numpy_passes(
    wide: np.ndarray,
    r: int,
    channels: int,
    per_chunk: int,
    bounds: Bounds | None,
    saturated: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-image sums and maxima, sums of squares and positive counts in numpy passes over chunks.

    Adds the saturated counts into ``saturated`` when ``bounds`` is given.
    """
    n = wide.shape[0]
    sums = np.empty((n, channels), np.float64)
    maxes = np.empty((n, channels), np.float32)
    sq = np.zeros(channels, np.float64)
    positive = np.zeros(channels, np.int64)
    for i in range(0, n, per_chunk):
        chunk = wide[i : i + per_chunk]
        k = chunk.shape[0]
        sums[i : i + k] = chunk.sum(axis=1).reshape(k, r, channels).sum(axis=1)  # 3x faster than einsum here
        maxes[i : i + k] = chunk.max(axis=1).reshape(k, r, channels).max(axis=1)
        flat = chunk.reshape(-1, r * channels)  # r interleaved copies of the channels per row
        sq += _fold(np.einsum("ij,ij->j", flat, flat), r, channels)
        positive += _fold(count_positive(np.greater(flat, 0)), r, channels)
        if saturated is not None and bounds is not None:
            lo, hi = bounds.thresholds
            low, high = count_positive(np.less_equal(flat, lo)), count_positive(np.greater_equal(flat, hi))
            saturated += _fold(low + high, r, channels)
    return sums, maxes, sq, positive


def _fold(values: np.ndarray, r: int, channels: int) -> np.ndarray:
    """Sum the ``r`` interleaved copies of per-channel partial results ``(r * C,)`` -> ``(C,)``."""
    return values.reshape(r, channels).sum(axis=0, dtype=np.float64 if values.dtype.kind == "f" else np.int64)


def _centred(
    wide: np.ndarray, mean: np.ndarray, r: int, channels: int, per_chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce again about a float32 copy ``s`` of ``mean``: float64 ``(M2 (C,), per-image sums (n, C))``.

    Both are accurate for any offset: deviations from ``s`` are small, so their float32 sums lose nothing.
    """
    shift = mean.astype(np.float32)
    row = np.tile(shift, r)
    n, rows = wide.shape[0], wide.shape[1]
    m2 = np.zeros(channels, np.float64)
    sums = np.empty((n, channels), np.float64)
    for i in range(0, n, per_chunk):
        d = wide[i : i + per_chunk] - row
        k = d.shape[0]
        sums[i : i + k] = d.sum(axis=1).reshape(k, r, channels).sum(axis=1, dtype=np.float64)
        flat = d.reshape(-1, r * channels)
        m2 += _fold(np.einsum("ij,ij->j", flat, flat), r, channels)
    s64 = shift.astype(np.float64)
    # sum (x - m)^2 = sum (x - s)^2 - count (s - m)^2 for the shift s
    return m2 - n * rows * r * (s64 - mean) ** 2, sums + rows * r * s64


def comoment(
    act: np.ndarray,
    mean: np.ndarray,
    m2: np.ndarray | None = None,
    nonzero: np.ndarray | None = None,
    *,
    float64: bool | None = None,
) -> np.ndarray:
    """The co-moment (centred Gram) matrix of a batch's channels over all its images and positions.

    ``sum (x - m)(x - m)^T = sum (x - s)(x - s)^T - P (m - s)(m - s)^T`` for any shift ``s``, with ``P`` the
    number of rows (images x positions). Three ways to the left side, the cheapest that stays accurate:

    * ``s = 0`` and a sparse kernel that skips zero entries (:mod:`~convscope.scan.fused`), when at most
      :data:`SPARSE_DENSITY` of the values are nonzero (ReLU layers) and the condition below holds;
    * ``s = 0`` and BLAS on the activations as they are (no copy), when every channel's condition
      ``(m^2 + var) / var`` is at most :data:`UNCENTRED_KAPPA` (so the correction loses under 2 bits);
    * else ``s = m`` rounded to float32, subtracted chunk by chunk before each BLAS product (a channel at
      3000 +- 1 loses nothing).

    Each chunk's product is summed in float64; a chunk's own sums are float32 unless ``float64``.

    Args:
        act: ``(n, *spatial, C)`` channels-last float32 activations, C-contiguous.
        mean: float64 ``(C,)``, the batch's mean per channel over all ``n * positions`` values.
        m2: float64 ``(C,)``, the batch's sum of squared deviations per channel (from :func:`summarize`);
            ``None`` = always shift.
        nonzero: int64 ``(C,)``, the batch's nonzero count per channel; ``None`` = no sparse kernel.
        float64: Multiply in float64 (default :data:`GRAM_FLOAT64`, always shifted); float32 products are
            2-2.5x as fast but round each chunk's sums to about 1e-6 relative.

    Returns:
        float64 ``(C, C)``: ``sum over images and positions of (x - mean)(x - mean)^T`` (its diagonal is
        the per-channel sum of squared deviations).
    """
    c = act.shape[-1]
    flat = act.reshape(-1, c)
    wide = GRAM_FLOAT64 if float64 is None else float64
    route = gram_route(flat, mean, m2, nonzero, wide)
    out = np.zeros((c, c))
    if route == "sparse":
        _sparse_kernel()(flat, out)
    elif route == "about zero":
        rows = max(1, GRAM_CHUNK_BYTES // (c * 4))
        for first in range(0, len(flat), rows):
            chunk = flat[first : first + rows]
            out += chunk.T @ chunk  # numpy runs X^T X as a BLAS syrk (half a general product)
    else:
        dtype = np.float64 if wide else np.float32
        shift = mean.astype(dtype)
        rows = max(1, GRAM_CHUNK_BYTES // (c * np.dtype(dtype).itemsize))
        buf = np.empty((min(rows, len(flat)), c), dtype)
        for first in range(0, len(flat), rows):
            chunk = flat[first : first + rows]
            d = buf[: len(chunk)]
            np.subtract(chunk, shift, out=d)
            out += d.T @ d
        delta = mean - shift.astype(np.float64)
        if delta.any():
            out -= len(flat) * np.outer(delta, delta)
        return out
    out -= len(flat) * np.outer(mean, mean)
    return out


def gram_route(
    flat: np.ndarray, mean: np.ndarray, m2: np.ndarray | None, nonzero: np.ndarray | None, float64: bool
) -> str:
    """Which way :func:`comoment` takes for a ``(P, C)`` matrix: ``"sparse"``, ``"about zero"`` or ``"shifted"``."""
    if float64 or m2 is None or not np.all(len(flat) * mean * mean <= (UNCENTRED_KAPPA - 1) * m2):
        return "shifted"
    if (
        nonzero is not None
        and flat.shape[1] <= SPARSE_MAX_CHANNELS
        and nonzero.sum() <= SPARSE_DENSITY * flat.size
        and flat.flags.c_contiguous
        and flat.dtype == np.float32
        and _sparse_kernel() is not None
    ):
        return "sparse"
    return "about zero"


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS (the Gram products) to one thread per caller while a scan runs; restored after.

    The statistics run in :data:`~convscope.scan.engine.STAT_THREADS` threads next to the forward pass;
    a multi-threaded BLAS called from two threads at once, beside TensorFlow's own threads, oversubscribes
    the cores (its workers spin), which made a scan ~30x slower on 2 cores. Uses threadpoolctl.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def spatial_argmax(act: np.ndarray, images: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """Flat position of the first maximum of ``act[image, ..., channel]`` for each pair (int64 ``(m,)``).

    Ties go to the first position in row-major order; NaN counts as the maximum (numpy's rule).
    """
    if len(images) == 0:
        return np.zeros(0, np.int64)
    n, c = act.shape[0], act.shape[-1]
    flat = act.reshape(n, -1, c)
    if len(images) <= _GATHER_PAIRS:  # few pairs: one strided gather
        return np.argmax(flat[images, :, channels], axis=1).astype(np.int64)
    out = np.empty(len(images), np.int64)  # many pairs: image by image, reading each image's rows once
    for image in np.unique(images):
        pairs = np.flatnonzero(images == image)
        out[pairs] = flat[image][:, channels[pairs]].argmax(axis=0)
    return out
