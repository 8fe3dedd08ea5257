"""Streaming, exactly mergeable statistics of one layer: moments, top-k, and the channels' co-moments.

:class:`LayerAccumulator` takes batches in any grouping and two accumulators built over disjoint parts
of a dataset merge into the one a single pass would give:

* mean / variance per channel: Chan, Golub & LeVeque's pairwise update of ``(count, mean, M2)``, in
  float64 (numerically stable whatever the split);
* the same update for the ``C x C`` co-moment matrix of the channels over every position of every
  image (a centred Gram matrix, one BLAS product per batch): the pixelwise Pearson correlation of every
  pair of channels over the whole dataset, for near-duplicate detection. Its memory is ``8 C^2`` bytes
  (13 MB at 1280 channels); layers wider than :data:`MAX_GRAM_CHANNELS` skip it;
* max, counts of positive / saturated values and the sum of per-image spatial maxima (exact sums);
* the top-k images per channel by spatial max, kept sorted by ``(-value, global image index)``, so ties
  are broken by the lower image index and a merge of partial top-k lists is exactly the global one.
  The position of the max is located only for images entering a top-k list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convscope.scan.reduce import Bounds, comoment, spatial_argmax, summarize

#: Widest layer whose ``C x C`` co-moment matrix is kept (``8 C^2`` bytes: 33.5 MB at 2048; each batch
#: costs ``positions * C^2 / 2`` multiply-adds). Wider layers get no correlation (no near-duplicates).
MAX_GRAM_CHANNELS = 2048


def _rank_key(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), -np.inf, values)


def select_top(values: np.ndarray, index: np.ndarray, pos: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Keep, per row (channel), the ``k`` entries with the highest value, ties by lower index.

    Args:
        values: float32 ``(C, m)`` spatial maxima (NaN ranks lowest).
        index: int64 ``(C, m)`` global image indices.
        pos: int64 ``(C, m)`` flat positions (``-1`` = not located yet).
        k: How many to keep.

    Returns:
        ``(values, index, pos)``, each ``(C, min(k, m))``, best first.
    """
    order = np.lexsort((index, -_rank_key(values)), axis=-1)[:, :k]
    return tuple(np.take_along_axis(a, order, axis=-1) for a in (values, index, pos))


@dataclass(frozen=True, eq=False)
class _Part:
    """The mergeable moments of a disjoint set of images (see :class:`LayerAccumulator`)."""

    images: int
    positions: int
    mean: np.ndarray
    m2: np.ndarray
    max: np.ndarray
    positive: np.ndarray
    saturated: np.ndarray | None
    spatial_max_sum: np.ndarray
    comoment: np.ndarray | None


@dataclass
class LayerAccumulator:
    """Running statistics of one layer's activation ``(N, *spatial, C)`` over a dataset.

    Attributes:
        channels: Number of channels ``C``.
        top_k: Images kept per channel.
        bounds: Bounded activation of the layer (counts saturated values), or ``None``.
        images: Images seen.
        positions: Positions per image.
        mean: float64 ``(C,)`` mean over images and positions.
        m2: float64 ``(C,)`` sum of squared deviations from ``mean``.
        max: float32 ``(C,)`` maximum.
        positive: int64 ``(C,)`` values ``> 0``.
        saturated: int64 ``(C,)`` values near a bound (``None`` without bounds).
        spatial_max_sum: float64 ``(C,)`` sum over images of the spatial max.
        comoment: float64 ``(C, C)`` sum over all images and positions of ``(x - mean)(x - mean)^T``
            (``None`` for a layer wider than :data:`MAX_GRAM_CHANNELS`).
        top_value: float32 ``(C, k)`` best spatial maxima, best first.
        top_index: int64 ``(C, k)`` their global image indices.
        top_pos: int64 ``(C, k)`` the flat position of each max.
    """

    channels: int
    top_k: int
    bounds: Bounds | None = None
    images: int = 0
    positions: int = 0
    mean: np.ndarray = field(init=False)
    m2: np.ndarray = field(init=False)
    max: np.ndarray = field(init=False)
    positive: np.ndarray = field(init=False)
    saturated: np.ndarray | None = field(init=False)
    spatial_max_sum: np.ndarray = field(init=False)
    comoment: np.ndarray | None = field(init=False)
    top_value: np.ndarray = field(init=False)
    top_index: np.ndarray = field(init=False)
    top_pos: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        c = self.channels
        self.mean, self.m2 = np.zeros(c), np.zeros(c)
        self.max = np.full(c, -np.inf, np.float32)
        self.positive = np.zeros(c, np.int64)
        self.saturated = None if self.bounds is None else np.zeros(c, np.int64)
        self.spatial_max_sum = np.zeros(c)
        self.comoment = np.zeros((c, c)) if c <= MAX_GRAM_CHANNELS else None
        self.top_value = np.zeros((c, 0), np.float32)
        self.top_index = np.zeros((c, 0), np.int64)
        self.top_pos = np.zeros((c, 0), np.int64)

    # -- adding data ------------------------------------------------------------------------------------
    def add_batch(self, act: np.ndarray, start: int) -> None:
        """Add a batch ``(n, *spatial, C)`` (channels last, C-contiguous float32) of images ``start..``."""
        s = summarize(act, self.bounds)
        n = act.shape[0]
        if n == 0:
            return
        if self.images and s.positions != self.positions:
            raise ValueError(f"batch has {s.positions} positions per image, earlier batches {self.positions}")
        batch_mean = s.sums.sum(axis=0) / (n * s.positions)
        gram = comoment(act, batch_mean, s.m2, s.nonzero) if self.comoment is not None else None
        m2 = s.m2 if gram is None else np.diag(gram).copy()  # the exact float64 sums of squared deviations
        candidates = np.ascontiguousarray(s.maxes.T)
        index = np.broadcast_to(np.arange(start, start + n, dtype=np.int64), candidates.shape)
        pending = np.full(candidates.shape, -1, np.int64)
        batch_max = np.max(s.maxes, axis=0) if not np.isnan(s.maxes).any() else np.nanmax(s.maxes, axis=0)
        self._merge_moments(
            _Part(
                n,
                s.positions,
                batch_mean,
                m2,
                batch_max,
                s.positive,
                s.saturated,
                s.maxes.sum(axis=0, dtype=np.float64),
                gram,
            )
        )
        if self.top_value.shape[1] == self.top_k:  # full: only images beating some channel's k-th can enter
            keep = np.any(_rank_key(candidates) >= _rank_key(self.top_value[:, -1:]), axis=0)
            candidates, index, pending = candidates[:, keep], index[:, keep], pending[:, keep]
        if candidates.shape[1]:
            self._merge_top(candidates, index, pending)
            self._locate(act, start)

    def _locate(self, act: np.ndarray, start: int) -> None:
        channel, slot = np.nonzero(self.top_pos < 0)
        if len(channel):
            images = self.top_index[channel, slot] - start
            self.top_pos[channel, slot] = spatial_argmax(act, images, channel)

    # -- merging ----------------------------------------------------------------------------------------
    def merge(self, other: LayerAccumulator) -> None:
        """Fold in an accumulator built over a disjoint set of images (exact; any order)."""
        if other.channels != self.channels or other.top_k != self.top_k:
            raise ValueError("cannot merge accumulators of different layers or top-k")
        if other.images == 0:
            return
        if self.images and other.positions != self.positions:
            raise ValueError(f"cannot merge {other.positions} positions per image with {self.positions}")
        self._merge_moments(
            _Part(
                other.images,
                other.positions,
                other.mean,
                other.m2,
                other.max,
                other.positive,
                other.saturated,
                other.spatial_max_sum,
                other.comoment,
            )
        )
        self._merge_top(other.top_value, other.top_index, other.top_pos)

    def _merge_moments(self, b: _Part) -> None:
        na, nb = self.images, b.images
        n = na + nb
        if na == 0:
            self.positions = b.positions
            self.mean, self.m2 = b.mean.copy(), b.m2.copy()
            self.comoment = None if b.comoment is None else b.comoment.copy()
        else:
            pa, pb = na * self.positions, nb * b.positions
            delta = b.mean - self.mean
            self.mean = self.mean + delta * (pb / (pa + pb))
            self.m2 = self.m2 + b.m2 + delta * delta * (pa * pb / (pa + pb))
            if self.comoment is not None and b.comoment is not None:
                self.comoment = self.comoment + b.comoment + np.outer(delta, delta) * (pa * pb / (pa + pb))
        self.images = n
        self.max = np.fmax(self.max, b.max)
        self.positive = self.positive + b.positive
        if self.saturated is not None and b.saturated is not None:
            self.saturated = self.saturated + b.saturated
        self.spatial_max_sum = self.spatial_max_sum + b.spatial_max_sum

    def _merge_top(self, values: np.ndarray, index: np.ndarray, pos: np.ndarray) -> None:
        self.top_value, self.top_index, self.top_pos = select_top(
            np.concatenate([self.top_value, values], axis=1),
            np.concatenate([self.top_index, index], axis=1),
            np.concatenate([self.top_pos, pos], axis=1),
            self.top_k,
        )

    # -- results ----------------------------------------------------------------------------------------
    def finish(self) -> dict[str, np.ndarray]:
        """The final per-channel arrays (see :class:`convscope.scan.layerstats.LayerStats` for their meaning)."""
        count = self.images * self.positions
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(self.m2 / count) if count else np.full(self.channels, np.nan)
        out = {
            "mean": self.mean.copy() if count else np.full(self.channels, np.nan),
            "std": std,
            "max": self.max.astype(np.float64),
            "frac_positive": self.positive / count if count else np.full(self.channels, np.nan),
            "mean_spatial_max": self.spatial_max_sum / self.images
            if self.images
            else np.full(self.channels, np.nan),
            "top_value": self.top_value.copy(),
            "top_index": self.top_index.copy(),
            "top_pos": self.top_pos.copy(),
        }
        if self.saturated is not None:
            out["frac_saturated"] = self.saturated / count if count else np.full(self.channels, np.nan)
        if self.comoment is not None:
            out["corr"] = correlation(self.comoment)
        return out


def correlation(comoment: np.ndarray) -> np.ndarray:
    """Pearson correlation ``(C, C)`` from a co-moment matrix; NaN for pairs with a constant channel."""
    var = np.diag(comoment)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = comoment / np.sqrt(np.outer(var, var))
    corr[~np.isfinite(corr) | (np.outer(var, var) <= 0)] = np.nan
    return np.clip(corr, -1.0, 1.0)
