"""Streaming per-channel histograms, spatial-max moments, W1 and Cohen's d against numpy/scipy references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from convscope.diagnose.histogram import (
    ChannelHistogram,
    SpatialMaxMoments,
    bin_index,
    edges_between,
    effect_size,
    spatial_max,
    wasserstein1,
)


@pytest.fixture(scope="module")
def values() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    a = rng.gamma(2.0, 1.0, size=(301, 5)).astype(np.float32).astype(np.float64)
    b = (rng.gamma(2.0, 1.0, size=(257, 5)) * np.array([1, 1.5, 0.5, 1, 3]) + [0, 0, 0, 1, 0])
    b = b.astype(np.float32).astype(np.float64)
    a[:, 2] = 0.25  # a constant channel in A
    return a, b


def test_bins_are_numpys_including_values_on_the_edges(values):
    a, b = values
    edges = edges_between(np.minimum(a.min(0), b.min(0)), np.maximum(a.max(0), b.max(0)), 13)
    probe = np.concatenate([a, edges[:, :].T])  # every edge itself, the last one included
    idx = bin_index(probe, edges)
    for c in range(5):
        counts, _ = np.histogram(probe[:, c], bins=edges[c])
        np.testing.assert_array_equal(np.bincount(idx[:, c], minlength=13), counts)
    assert (bin_index(np.full((1, 5), np.nan), edges) == -1).all()
    assert (bin_index(edges[:, :1].T - 1.0, edges) == -1).all()


def test_histogram_merges_exactly_over_any_split(values):
    a, _ = values
    edges = edges_between(a.min(0), a.max(0), 8)
    whole, parts = ChannelHistogram(edges), [ChannelHistogram(edges) for _ in range(3)]
    whole.add(a)
    for i, s in enumerate(range(0, len(a), 37)):
        parts[i % 3].add(a[s : s + 37])
    parts[0].merge(parts[1])
    parts[0].merge(parts[2])
    np.testing.assert_array_equal(parts[0].counts, whole.counts)
    assert whole.counts.sum() == a.size and not whole.outside.any()
    with pytest.raises(ValueError, match="different bin edges"):
        whole.merge(ChannelHistogram(edges + 1))


def test_w1_equals_scipys_on_the_same_bins_and_is_within_a_bin_of_the_raw_distance(values):
    a, b = values
    edges = edges_between(np.minimum(a.min(0), b.min(0)), np.maximum(a.max(0), b.max(0)), 64)
    ha, hb = ChannelHistogram(edges), ChannelHistogram(edges)
    ha.add(a)
    hb.add(b)
    w1 = wasserstein1(edges, ha.counts, hb.counts)
    centres = (edges[:, 1:] + edges[:, :-1]) / 2
    for c in range(5):
        ref = wasserstein_distance(centres[c], centres[c], ha.counts[c], hb.counts[c])
        assert w1[c] == pytest.approx(ref, rel=1e-12, abs=1e-14)
        raw = wasserstein_distance(a[:, c], b[:, c])
        assert abs(w1[c] - raw) <= edges[c, 1] - edges[c, 0]
    assert w1[3] > 0.9  # channel 3 moved by +1


def test_moments_and_effect_size_match_numpy_over_the_whole_sets(values):
    a, b = values
    ma, mb = SpatialMaxMoments(5), SpatialMaxMoments(5)
    for s in range(0, len(a), 50):
        ma.add(a[s : s + 50])
    other = SpatialMaxMoments(5)
    other.add(b[:100])
    mb.add(b[100:])
    mb.merge(other)
    np.testing.assert_allclose(ma.mean, a.mean(0), rtol=1e-12)
    np.testing.assert_allclose(mb.var, b.var(0, ddof=1), rtol=1e-10)
    np.testing.assert_array_equal(mb.low, b.min(0))
    np.testing.assert_array_equal(mb.high, b.max(0))
    d, pooled = effect_size(ma, mb)
    ref_pooled = np.sqrt(((len(a) - 1) * a.var(0, ddof=1) + (len(b) - 1) * b.var(0, ddof=1)) / (len(a) + len(b) - 2))
    np.testing.assert_allclose(pooled, ref_pooled, rtol=1e-10)
    np.testing.assert_allclose(d, (b.mean(0) - a.mean(0)) / ref_pooled, rtol=1e-10)


def test_effect_size_of_constant_sets():
    ma, mb, mc = SpatialMaxMoments(1), SpatialMaxMoments(1), SpatialMaxMoments(1)
    ma.add(np.zeros((4, 1)))
    mb.add(np.zeros((3, 1)))
    mc.add(np.ones((3, 1)))
    assert effect_size(ma, mb)[0][0] == 0.0
    assert effect_size(ma, mc)[0][0] == np.inf


def test_spatial_max_is_the_per_image_max_over_positions():
    x = np.random.default_rng(0).normal(size=(3, 4, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(spatial_max(x), x.max(axis=(1, 2)).astype(np.float64))
