"""Minibatch linear CKA with the unbiased HSIC: checked against float64 numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.diagnose.cka import HsicAccumulator, gram, gram_terms, linear_cka, minibatches


def ref_hsic(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """Unbiased HSIC (Song et al. 2012) written with explicit matrices and ones vectors."""
    n = len(k)
    kt, lt = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
    one = np.ones(n)
    term = np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
    term -= 2.0 / (n - 2) * (one @ kt @ lt @ one)
    return float(term / (n * (n - 3)))


def ref_cka(xs: list[np.ndarray], ys: list[np.ndarray], parts: list[tuple[int, int]]) -> np.ndarray:
    """float64 reference: mean over the same partition of HSIC, then CKA, for every pair of layers."""
    out = np.zeros((len(xs), len(ys)))
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            kx = [x[a:b].reshape(b - a, -1).astype(np.float64) for a, b in parts]
            ky = [y[a:b].reshape(b - a, -1).astype(np.float64) for a, b in parts]
            xy = np.mean([ref_hsic(p @ p.T, q @ q.T) for p, q in zip(kx, ky)])
            xx = np.mean([ref_hsic(p @ p.T, p @ p.T) for p in kx])
            yy = np.mean([ref_hsic(q @ q.T, q @ q.T) for q in ky])
            out[i, j] = xy / np.sqrt(xx * yy)
    return out


def biased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s full-dataset linear CKA on centred features (the biased HSIC)."""
    x = x.reshape(len(x), -1) - x.reshape(len(x), -1).mean(0)
    y = y.reshape(len(y), -1) - y.reshape(len(y), -1).mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


@pytest.mark.parametrize(
    ("size", "batch", "expected"),
    [(10, 4, [(0, 4), (4, 10)]), (11, 4, [(0, 4), (4, 11)]), (12, 4, [(0, 4), (4, 8), (8, 12)]), (8, 8, [(0, 8)]), (9, 8, [(0, 9)])],
)
def test_minibatches_fold_a_short_remainder_into_the_last_batch(size, batch, expected):
    assert minibatches(size, batch) == expected


def test_minibatches_refuse_fewer_than_four():
    with pytest.raises(ValueError, match="at least 4"):
        minibatches(3, 8)


@pytest.fixture(scope="module")
def layers() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(103, 6)).astype(np.float32)
    a = [np.maximum(base @ rng.normal(size=(6, 20)), 0).astype(np.float32).reshape(103, 4, 5),
         (base @ rng.normal(size=(6, 3))).astype(np.float32)]  # fmt: skip
    b = [rng.normal(size=(103, 7)).astype(np.float32), (base[:, :3] ** 2).astype(np.float32)]
    return a, b


@pytest.mark.parametrize("batch", [16, 50, 103])
def test_accumulated_cka_equals_the_float64_reference_on_the_same_partition(layers, batch):
    a, b = layers
    parts = minibatches(103, batch)
    acc = HsicAccumulator(2, 2)
    for s, e in parts:
        acc.add(gram_terms([gram(x[s:e]) for x in a]), gram_terms([gram(y[s:e]) for y in b]))
    np.testing.assert_allclose(acc.cka(), ref_cka(a, b, parts), rtol=0, atol=1e-10)
    assert acc.batches == len(parts) and acc.examples == 103


def test_self_mode_matrix_is_symmetric_with_unit_diagonal_and_matches_the_reference(layers):
    a, _ = layers
    parts = minibatches(103, 20)
    acc = HsicAccumulator(2, 2)
    for s, e in parts:
        acc.add(gram_terms([gram(x[s:e]) for x in a]))
    np.testing.assert_allclose(acc.cka(), ref_cka(a, a, parts), atol=1e-10)
    np.testing.assert_allclose(np.diag(acc.cka()), 1.0, atol=1e-12)


def test_merging_partial_sums_gives_the_single_pass_numbers(layers):
    a, b = layers
    parts = minibatches(103, 10)
    whole, left, right = HsicAccumulator(2, 2), HsicAccumulator(2, 2), HsicAccumulator(2, 2)
    for i, (s, e) in enumerate(parts):
        ta, tb = gram_terms([gram(x[s:e]) for x in a]), gram_terms([gram(y[s:e]) for y in b])
        whole.add(ta, tb)
        (left if i % 2 else right).add(ta, tb)
    right.merge(left)
    np.testing.assert_allclose(right.cka(), whole.cka(), rtol=1e-13)
    assert right.batches == whole.batches


def test_one_batch_is_the_full_dataset_unbiased_cka_and_near_the_biased_one():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 8))
    y = np.tanh(x @ rng.normal(size=(8, 5))) + 0.5 * rng.normal(size=(1500, 5))
    full = linear_cka(x, y)
    assert full == pytest.approx(ref_cka([x], [y], [(0, 1500)])[0, 0], abs=1e-10)
    # the biased estimator's bias is O(d/n): small here (8 and 5 features over 1,500 examples)
    assert abs(full - biased_cka(x, y)) < 0.01
    assert 0.2 < full < 0.95  # a real, partial similarity, not a degenerate 0 or 1


def test_cka_is_invariant_to_rotation_and_scale_and_nan_for_a_constant_layer():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 10))
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    assert linear_cka(x, 3.0 * x @ q, batch=16) == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(linear_cka(x, np.ones((64, 4)), batch=16))
