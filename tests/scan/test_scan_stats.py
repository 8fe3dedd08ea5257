"""Exactness of the streaming statistics: any split into batches and shards, merged in any order, equals a
single-pass float64 numpy reference (explicit tolerances); top-k ties are broken by image index."""

from __future__ import annotations

import numpy as np
import pytest
from scanhelp import assert_matches, reference

from convscope.scan import reduce
from convscope.scan.fused import kernel
from convscope.scan.reduce import Bounds, count_positive, fold_factor, summarize
from convscope.scan.stats import LayerAccumulator


@pytest.fixture(autouse=True, params=["fused", "numpy"])
def impl(request, monkeypatch) -> str:
    """Every test runs on both reductions: the numba one-pass kernel and the numpy passes."""
    monkeypatch.setattr(reduce, "USE_FUSED", request.param == "fused")
    return request.param


def accumulate(x: np.ndarray, k: int, shards: list[tuple[int, int]], batch: int, bounds: Bounds | None = None,
               order: list[int] | None = None) -> dict[str, np.ndarray]:
    parts = []
    for a, b in shards:
        acc = LayerAccumulator(x.shape[-1], k, bounds)
        for s in range(a, b, batch):
            acc.add_batch(np.ascontiguousarray(x[s : min(b, s + batch)], dtype=np.float32), s)
        parts.append(acc)
    total = LayerAccumulator(x.shape[-1], k, bounds)
    for i in order or range(len(parts)):
        total.merge(parts[i])
    return total.finish()


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(7)
    x = np.maximum(rng.normal(size=(203, 9, 7, 16)), 0).astype(np.float32)
    x[..., 3] = 0.0  # dead channel: constant, corr NaN
    x[..., 4] += 3000.0  # large offset: the variance must survive it
    x[..., 5] = np.round(x[..., 5])  # many ties in value and position
    x[..., 6] = x[..., 7] * 2 + 1  # exact duplicate (corr 1)
    x[17, 2, 3, 8] = x[150, 4, 4, 8] = 50.0  # a tie for the top spot: image 17 must come first
    return x


@pytest.mark.parametrize("batch", [1, 16, 64, 500])
def test_single_shard_any_batch_size_matches_reference(data, batch):
    assert_matches(accumulate(data, 5, [(0, len(data))], batch), reference(data, 5))


@pytest.mark.parametrize("shards,order", [
    ([(0, 64), (64, 65), (65, 203)], None),
    ([(0, 64), (64, 65), (65, 203)], [2, 0, 1]),
    ([(i, min(i + 13, 203)) for i in range(0, 203, 13)], list(range(15, -1, -1))),
])
def test_shards_merged_in_any_order_match_reference(data, shards, order):
    got = accumulate(data, 7, shards, 8, order=order)
    ref = reference(data, 7)
    assert_matches(got, ref)
    assert got["top_index"][8, 0] == 17 and got["top_index"][8, 1] == 150  # tie -> lower image index


def test_top_k_larger_than_dataset_keeps_everything(data):
    got = accumulate(data[:5], 16, [(0, 3), (3, 5)], 2)
    assert got["top_index"].shape == (16, 5)
    assert_matches(got, reference(data[:5], 16))


def test_saturation_counts_for_bounded_activations():
    rng = np.random.default_rng(0)
    x = np.tanh(rng.normal(scale=[0.3, 50.0, 1.0], size=(40, 6, 6, 3))).astype(np.float32)
    tanh = Bounds("tanh", -1.0, 1.0)
    got = accumulate(x, 3, [(0, 17), (17, 40)], 5, bounds=tanh)
    ref = reference(x, 3, bounds=tanh)
    assert_matches(got, ref)
    assert got["frac_saturated"][1] > 0.9 and got["frac_saturated"][0] < 0.01


def test_vector_layers_and_odd_channel_counts():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 13)).astype(np.float32)  # Dense output: one position, 13 channels
    assert_matches(accumulate(x, 4, [(0, 20), (20, 50)], 6), reference(x, 4))
    y = rng.normal(size=(30, 11, 5)).astype(np.float32)  # Conv1D output, 5 channels
    assert_matches(accumulate(y, 4, [(0, 30)], 7), reference(y, 4))


def test_helpers():
    assert fold_factor(576) == 64 and fold_factor(676) == 52 and fold_factor(13) == 13 and fold_factor(1) == 1
    mask = np.random.default_rng(2).random((1000, 24)) > 0.3
    np.testing.assert_array_equal(count_positive(mask), mask.sum(axis=0))
    s = summarize(np.full((4, 3, 3, 8), 7.0, np.float32))
    np.testing.assert_array_equal(s.m2, 0.0)  # constant channels: variance exactly 0


def test_importing_scan_and_its_cli_stays_light():
    import subprocess
    import sys

    code = ("import sys, convscope.scan, convscope.present.cli_scan, convscope.scan.result, convscope.scan.health\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'ray', 'jax', 'torch') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_fused_kernel_is_used_and_agrees_with_the_numpy_passes_on_nan_inf_and_bounds(impl):
    assert kernel() is not None, "numba is in the test extra: the fused kernel must load"
    rng = np.random.default_rng(5)
    x = np.tanh(rng.normal(scale=3.0, size=(9, 5, 4, 6))).astype(np.float32)
    x[2, 1, 1, 0] = np.nan  # NaN wins the max and poisons the sum, as in numpy
    x[3, 0, 0, 1], x[3, 4, 3, 1] = np.inf, -np.inf  # max inf, sum NaN
    x[4, :, :, 2] = 0.0
    tanh = Bounds("tanh", -1.0, 1.0)
    one, many = summarize(x, tanh, fused=True), summarize(x, tanh, fused=False)
    ref_max = x.reshape(9, -1, 6).max(axis=1)
    np.testing.assert_array_equal(one.maxes, ref_max)
    np.testing.assert_array_equal(many.maxes, ref_max)
    np.testing.assert_allclose(one.sums, x.reshape(9, -1, 6).astype(np.float64).sum(axis=1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(one.sums, many.sums, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(one.positive, (x > 0).sum(axis=(0, 1, 2)))
    np.testing.assert_array_equal(one.positive, many.positive)
    lo, hi = tanh.thresholds
    np.testing.assert_array_equal(one.saturated, ((x <= lo) | (x >= hi)).sum(axis=(0, 1, 2)))
    np.testing.assert_array_equal(one.saturated, many.saturated)
    finite = [3, 4, 5]  # channels without NaN/inf: the second moments agree too
    np.testing.assert_allclose(one.m2[finite], many.m2[finite], rtol=1e-5)
    assert one.positions == many.positions == 20
