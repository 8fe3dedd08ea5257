"""How one layer's channels shift between two datasets: the per-channel numbers and their ranking.

Everything is about the same model on two datasets A and B. Per channel:

* ``mean`` / ``std`` of all activation values (every position of every image; the scan's statistics);
* the per-image spatial max (the value the scan ranks images by): its mean and sample standard
  deviation in each set, and its histogram on bins shared by both sets;
* ``effect``: Cohen's ``d = (mean_B - mean_A) / pooled sd`` of the per-image spatial max;
* ``w1``: the Wasserstein-1 distance between the two spatial-max histograms (in activation units);
* ``shift = w1 / pooled sd``: the distance in standard deviations, the number channels are ranked by
  (it is at least about ``|d|``, and also sees changes of shape that leave the mean alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convscope.diagnose.histogram import SpatialMaxMoments, effect_size, wasserstein1
from convscope.scan.layerstats import LayerStats

#: The per-channel arrays of a :class:`LayerShift` saved in ``shift.npz``.
ARRAYS = (
    "edges",
    "hist_a",
    "hist_b",
    "smax_mean_a",
    "smax_mean_b",
    "smax_std_a",
    "smax_std_b",
    "effect",
    "pooled_sd",
    "w1",
    "shift",
    "rank",
)


def shift_of(w1: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """``w1 / pooled`` with 0 where both are 0 and ``inf`` where only the spread is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = w1 / pooled
    out[(pooled == 0) & (w1 == 0)] = 0.0
    return out


def ranking(shift: np.ndarray) -> np.ndarray:
    """int64 ``(C,)`` channels by decreasing ``shift`` (ties: lower channel first; NaN last)."""
    key = np.where(np.isnan(shift), -np.inf, shift)
    return np.lexsort((np.arange(len(shift)), -key)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class LayerShift:
    """The shift of one layer's channels from dataset A to dataset B.

    Attributes:
        key: Activation key.
        a: The scan statistics of the layer over A (moments, top-k images, receptive field).
        b: The same over B.
        edges: float64 ``(C, B + 1)`` histogram bin edges, shared by A and B.
        hist_a: int64 ``(C, B)`` counts of A's per-image spatial max.
        hist_b: int64 ``(C, B)`` counts of B's.
        smax_mean_a: float64 ``(C,)`` mean per-image spatial max over A.
        smax_mean_b: float64 ``(C,)`` the same over B.
        smax_std_a: float64 ``(C,)`` its sample standard deviation over A (``ddof=1``).
        smax_std_b: float64 ``(C,)`` the same over B.
        effect: float64 ``(C,)`` Cohen's d of the spatial max, B relative to A.
        pooled_sd: float64 ``(C,)`` the pooled standard deviation in ``effect``.
        w1: float64 ``(C,)`` Wasserstein-1 distance between the histograms.
        shift: float64 ``(C,)`` ``w1 / pooled_sd``.
        rank: int64 ``(C,)`` channels by decreasing ``shift``.
    """

    key: str
    a: LayerStats
    b: LayerStats
    edges: np.ndarray
    hist_a: np.ndarray
    hist_b: np.ndarray
    smax_mean_a: np.ndarray
    smax_mean_b: np.ndarray
    smax_std_a: np.ndarray
    smax_std_b: np.ndarray
    effect: np.ndarray
    pooled_sd: np.ndarray
    w1: np.ndarray
    shift: np.ndarray
    rank: np.ndarray

    @classmethod
    def build(
        cls,
        a: LayerStats,
        b: LayerStats,
        moments: tuple[SpatialMaxMoments, SpatialMaxMoments],
        edges: np.ndarray,
        hists: tuple[np.ndarray, np.ndarray],
    ) -> LayerShift:
        """Derive every per-channel number from the two passes' accumulators."""
        ma, mb = moments
        effect, pooled = effect_size(ma, mb)
        w1 = wasserstein1(edges, *hists)
        shift = shift_of(w1, pooled)
        return cls(
            a.key,
            a,
            b,
            edges,
            hists[0],
            hists[1],
            ma.mean,
            mb.mean,
            np.sqrt(ma.var),
            np.sqrt(mb.var),
            effect,
            pooled,
            w1,
            shift,
            ranking(shift),
        )

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.a.channels)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-channel arrays as saved in ``shift.npz``."""
        return {name: np.asarray(getattr(self, name)) for name in ARRAYS}

    def channel(self, c: int) -> dict[str, Any]:
        """JSON-able numbers of channel ``c`` (rank 0 = the most shifted channel)."""
        c = int(c)
        return {
            "channel": c,
            "rank": int(np.flatnonzero(self.rank == c)[0]),
            "shift": _num(self.shift[c]),
            "effect": _num(self.effect[c]),
            "w1": _num(self.w1[c]),
            "mean_a": _num(self.a.mean[c]),
            "mean_b": _num(self.b.mean[c]),
            "std_a": _num(self.a.std[c]),
            "std_b": _num(self.b.std[c]),
            "spatial_max_mean_a": _num(self.smax_mean_a[c]),
            "spatial_max_mean_b": _num(self.smax_mean_b[c]),
            "spatial_max_std_a": _num(self.smax_std_a[c]),
            "spatial_max_std_b": _num(self.smax_std_b[c]),
            "top_a": [int(i) for i in self.a.top_index[c]],
            "top_b": [int(i) for i in self.b.top_index[c]],
        }

    def summary(self, top: int = 16) -> dict[str, Any]:
        """Per-layer summary and the ``top`` most shifted channels."""
        finite = self.shift[np.isfinite(self.shift)]
        return {
            "key": self.key,
            "channels": self.channels,
            "images_a": int(self.a.images),
            "images_b": int(self.b.images),
            "mean_abs_effect": _num(np.nanmean(np.abs(self.effect[np.isfinite(self.effect)])))
            if np.isfinite(self.effect).any()
            else None,
            "median_shift": _num(np.median(finite)) if len(finite) else None,
            "max_shift": _num(self.shift[self.rank[0]]),
            "top": [self.channel(c) for c in self.rank[:top]],
        }


def _num(value: Any) -> float | None:
    """A float for JSON (``None`` for NaN, ``"inf"``-free: infinities become ``None`` too)."""
    v = float(value)
    return v if np.isfinite(v) else None
