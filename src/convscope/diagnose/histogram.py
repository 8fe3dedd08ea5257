"""Per-channel streaming histograms with fixed edges, per-image spatial-max moments, and W1 between them.

Exact merges need the same bin edges in every partial, so a dataset comparison takes two passes: the
first finds each channel's range (:class:`SpatialMaxMoments`: min, max, mean and spread of the per-image
spatial max, merged with Chan et al.'s pairwise update), the second counts values into ``bins`` equal
bins between the smallest and largest value of *both* datasets (:class:`ChannelHistogram`). Counts are
integers, so any split of the data (batches, shards) merges into the same histogram, and the binning
is numpy's own (``np.histogram`` with the same edges gives the same counts: the last bin is closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Default number of bins per channel.
BINS = 64
#: Most bins per channel a comparison accepts (counts take ``8 x bins`` bytes per channel and dataset).
MAX_BINS = 4096


def spatial_max(act: np.ndarray) -> np.ndarray:
    """float64 ``(n, C)`` per-image maximum over positions of ``act (n, *spatial, C)`` (channels last)."""
    n, c = act.shape[0], act.shape[-1]
    return np.asarray(act).reshape(n, -1, c).max(axis=1).astype(np.float64)


@dataclass
class SpatialMaxMoments:
    """Count, mean, sum of squared deviations, min and max of each channel's per-image spatial max.

    Attributes:
        channels: ``C``.
        count: Images seen.
        mean: float64 ``(C,)``.
        m2: float64 ``(C,)`` sum of squared deviations from ``mean``.
        low: float64 ``(C,)`` smallest value.
        high: float64 ``(C,)`` largest value.
    """

    channels: int
    count: int = 0
    mean: np.ndarray = field(init=False)
    m2: np.ndarray = field(init=False)
    low: np.ndarray = field(init=False)
    high: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mean, self.m2 = np.zeros(self.channels), np.zeros(self.channels)
        self.low, self.high = np.full(self.channels, np.inf), np.full(self.channels, -np.inf)

    def add(self, values: np.ndarray) -> None:
        """Add per-image values ``(n, C)``."""
        if len(values) == 0:
            return
        part = SpatialMaxMoments(self.channels)
        part.count = len(values)
        part.mean = values.mean(axis=0)
        part.m2 = ((values - part.mean) ** 2).sum(axis=0)
        part.low, part.high = values.min(axis=0), values.max(axis=0)
        self.merge(part)

    def merge(self, other: SpatialMaxMoments) -> None:
        """Fold in the moments of a disjoint set of images (Chan, Golub & LeVeque)."""
        if other.count == 0:
            return
        na, nb = self.count, other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (nb / (na + nb))
        self.m2 = self.m2 + other.m2 + delta * delta * (na * nb / (na + nb))
        self.count = na + nb
        self.low, self.high = np.fmin(self.low, other.low), np.fmax(self.high, other.high)

    @property
    def var(self) -> np.ndarray:
        """float64 ``(C,)`` sample variance (``ddof=1``; NaN below two images)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.m2 / (self.count - 1) if self.count > 1 else np.full(self.channels, np.nan)


def edges_between(low: np.ndarray, high: np.ndarray, bins: int = BINS) -> np.ndarray:
    """float64 ``(C, bins + 1)`` equal-width edges from ``low`` to ``high`` per channel.

    A constant channel (``low == high``) gets the edges ``np.histogram`` uses for it (``low +- 0.5``);
    non-finite ranges become ``0..1``.
    """
    low, high = np.asarray(low, np.float64).copy(), np.asarray(high, np.float64).copy()
    bad = ~(np.isfinite(low) & np.isfinite(high))
    low[bad], high[bad] = 0.0, 1.0
    same = low == high
    low[same], high[same] = low[same] - 0.5, high[same] + 0.5
    return np.linspace(low, high, bins + 1, axis=1)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """int64 ``(n, C)`` bin of each value ``(n, C)`` under per-channel edges ``(C, B + 1)``, as ``np.histogram``
    bins it (``[e_i, e_i+1)``, the last bin closed); ``-1`` for a value outside the edges or NaN."""
    bins = edges.shape[1] - 1
    lo, hi = edges[:, 0], edges[:, -1]
    with np.errstate(invalid="ignore"):
        idx = np.floor((values - lo) * (bins / (hi - lo))).astype(np.int64, copy=False)
    idx = np.clip(idx, 0, bins - 1)
    cols = np.broadcast_to(np.arange(edges.shape[0]), idx.shape)
    idx -= values < edges[cols, idx]  # correct float rounding against the edges themselves
    inner = idx < bins - 1
    idx += inner & (values >= edges[cols, np.minimum(idx + 1, bins)])
    outside = ~((values >= lo) & (values <= hi))
    idx[outside] = -1
    return idx


@dataclass
class ChannelHistogram:
    """Counts of per-image values per channel in fixed bins (exactly mergeable).

    Attributes:
        edges: float64 ``(C, B + 1)`` bin edges.
        counts: int64 ``(C, B)``.
        outside: int64 ``(C,)`` values outside the edges (or NaN), not counted in a bin.
    """

    edges: np.ndarray
    counts: np.ndarray = field(init=False)
    outside: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        c, b = self.edges.shape[0], self.edges.shape[1] - 1
        self.counts = np.zeros((c, b), np.int64)
        self.outside = np.zeros(c, np.int64)

    def add(self, values: np.ndarray) -> None:
        """Count per-image values ``(n, C)``."""
        idx = bin_index(values, self.edges)
        c, b = self.counts.shape
        flat = (idx + np.arange(c) * b)[idx >= 0]
        self.counts += np.bincount(flat, minlength=c * b).reshape(c, b)
        self.outside += (idx < 0).sum(axis=0)

    def merge(self, other: ChannelHistogram) -> None:
        """Fold in the counts of a disjoint set of images (same edges)."""
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge histograms with different bin edges")
        self.counts = self.counts + other.counts
        self.outside = self.outside + other.outside


def wasserstein1(edges: np.ndarray, counts_a: np.ndarray, counts_b: np.ndarray) -> np.ndarray:
    """float64 ``(C,)`` Wasserstein-1 distance between two histograms per channel on the same edges.

    Each bin's mass sits at its centre, so this is ``scipy.stats.wasserstein_distance(centres, centres,
    counts_a, counts_b)`` per channel (and within one bin width of the distance between the raw values).
    NaN for a channel with an empty histogram.
    """
    na = counts_a.sum(axis=1, keepdims=True)
    nb = counts_b.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.cumsum(counts_a, axis=1) / na - np.cumsum(counts_b, axis=1) / nb
    centres = (edges[:, 1:] + edges[:, :-1]) / 2
    return np.sum(np.abs(diff[:, :-1]) * np.diff(centres, axis=1), axis=1)


def effect_size(a: SpatialMaxMoments, b: SpatialMaxMoments) -> tuple[np.ndarray, np.ndarray]:
    """``(d, pooled sd)``: Cohen's ``d = (mean_B - mean_A) / pooled sd`` per channel (``ddof=1`` variances).

    ``d`` is 0 where both sets are constant and equal, ``+-inf`` where they are constant and differ.
    """
    dof = a.count + b.count - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.sqrt((a.m2 + b.m2) / dof) if dof > 0 else np.full(a.channels, np.nan)
        diff = b.mean - a.mean
        d = diff / pooled
    d[(pooled == 0) & (diff == 0)] = 0.0
    return d, pooled
