"""The streaming passes a dataset comparison makes, built on the scan's engine (one forward pass per batch
for all layers, statistics reduced in background threads, memory bounded by two batches).

* :class:`StatsPass`: the scan's own :class:`~convscope.scan.stats.LayerAccumulator` per layer (moments,
  top-k images, positions) plus the per-image spatial-max moments and range
  (:class:`~convscope.diagnose.histogram.SpatialMaxMoments`);
* :class:`HistogramPass`: per-channel histograms of the per-image spatial max on fixed edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from convscope.diagnose.histogram import ChannelHistogram, SpatialMaxMoments, spatial_max
from convscope.scan.engine import ScanJob, ShardScanner
from convscope.scan.stats import LayerAccumulator


class StatsPass(ShardScanner):
    """The scan's statistics of every layer, plus each channel's per-image spatial-max moments.

    Attributes:
        moments: ``{key: SpatialMaxMoments}`` after :meth:`scan`.
    """

    def __init__(self, job: ScanJob, model: Any = None) -> None:
        super().__init__(job, model)
        self.moments: dict[str, SpatialMaxMoments] = {}

    def _accumulate(self, accs: dict[str, LayerAccumulator], key: str, act: np.ndarray, first: int) -> None:
        super()._accumulate(accs, key, act, first)
        if self.extractor.is_output(key):
            return
        values = spatial_max(self.channels_last(key, act))
        if key not in self.moments:
            self.moments[key] = SpatialMaxMoments(values.shape[1])
        self.moments[key].add(values)


class HistogramPass(ShardScanner):
    """Histograms of each channel's per-image spatial max, on edges fixed before the pass.

    Args:
        job: What to scan.
        model: The loaded model.
        edges: ``{key: (C, B + 1) edges}``; other layers are skipped.

    Attributes:
        histograms: ``{key: ChannelHistogram}`` after :meth:`scan`.
    """

    def __init__(self, job: ScanJob, model: Any, edges: Mapping[str, np.ndarray]) -> None:
        super().__init__(job, model)
        self.edges = dict(edges)
        self.histograms: dict[str, ChannelHistogram] = {}

    def _accumulate(self, accs: dict[str, LayerAccumulator], key: str, act: np.ndarray, first: int) -> None:
        if key not in self.edges:
            return
        if key not in self.histograms:
            self.histograms[key] = ChannelHistogram(self.edges[key])
        self.histograms[key].add(spatial_max(self.channels_last(key, act)))
