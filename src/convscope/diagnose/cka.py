"""Linear CKA over a dataset in minibatches, with the unbiased HSIC estimator (exactly mergeable sums).

Linear CKA (Kornblith et al. 2019) compares two representations of the same examples through their Gram
matrices ``K = X X^T`` and ``L = Y Y^T`` (``X``, ``Y`` the activations flattened per example)::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

Over a dataset too large for one ``N x N`` Gram matrix, Nguyen, Raghu & Kornblith (2021) average the
*unbiased* HSIC estimator (Song et al. 2012) over minibatches of ``n >= 4`` examples. With ``K~``, ``L~``
the Gram matrices with their diagonal set to zero::

    HSIC_1(K, L) = [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n (n-3))

and ``CKA = mean_b HSIC_1(K_b, L_b) / sqrt(mean_b HSIC_1(K_b, K_b) mean_b HSIC_1(L_b, L_b))``. Every
minibatch estimate is unbiased, so their mean is too, and memory is ``O(n^2)`` per layer whatever the
dataset size. The result is *defined by the minibatch partition* (:func:`minibatches`): its exact
reference is the same formula in numpy float64 over the same partition (with one batch holding the
whole dataset it is the full-dataset unbiased CKA).

All arithmetic is float64. For many layers at once each batch's ``K~`` are stacked as rows of one
matrix, so every pair's ``tr(K~ L~) = <K~, L~>`` comes out of one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Smallest minibatch the unbiased estimator is defined for (it divides by ``n (n-3)``).
MIN_BATCH = 4
#: Largest minibatch the commands accept: each layer's Gram terms take ``8 n^2`` bytes (8 MiB at 1024).
MAX_BATCH = 1024


def minibatches(size: int, batch: int) -> list[tuple[int, int]]:
    """The partition of rows ``0..size`` into consecutive minibatches of ``batch`` rows.

    A last remainder of fewer than :data:`MIN_BATCH` rows joins the batch before it (so every row is used
    and every batch has ``n >= 4``).

    Args:
        size: Number of rows (``>= MIN_BATCH``).
        batch: Rows per minibatch (``>= MIN_BATCH``).

    Returns:
        ``[(start, stop), ...]``.

    Raises:
        ValueError: ``size`` or ``batch`` below :data:`MIN_BATCH`.
    """
    if batch < MIN_BATCH or size < MIN_BATCH:
        raise ValueError(f"minibatches need at least {MIN_BATCH} rows (size {size}, batch {batch})")
    bounds = [(a, min(a + batch, size)) for a in range(0, size, batch)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < MIN_BATCH:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


@dataclass(frozen=True, eq=False)
class GramTerms:
    """What one minibatch of one or more layers contributes to HSIC: ``K~`` flattened, row sums, totals.

    Attributes:
        n: Examples in the minibatch.
        flat: float64 ``(L, n*n)``: each layer's Gram matrix with zero diagonal, flattened.
        rowsum: float64 ``(L, n)``: ``K~ 1``.
        total: float64 ``(L,)``: ``1^T K~ 1``.
    """

    n: int
    flat: np.ndarray
    rowsum: np.ndarray
    total: np.ndarray


def gram(x: np.ndarray) -> np.ndarray:
    """float64 ``(n, n)`` linear Gram matrix ``X X^T`` of ``x (n, ...)`` flattened per example."""
    flat = np.asarray(x).reshape(len(x), -1).astype(np.float64, copy=False)
    return flat @ flat.T


def gram_terms(grams: Sequence[np.ndarray]) -> GramTerms:
    """Stack the Gram matrices ``(n, n)`` of several layers (one minibatch) into :class:`GramTerms`."""
    n = grams[0].shape[0]
    flat = np.empty((len(grams), n * n))
    for i, k in enumerate(grams):
        kt = np.array(k, dtype=np.float64)
        np.fill_diagonal(kt, 0.0)
        flat[i] = kt.ravel()
    rowsum = flat.reshape(len(grams), n, n).sum(axis=2)
    return GramTerms(n, flat, rowsum, rowsum.sum(axis=1))


def hsic(a: GramTerms, b: GramTerms) -> np.ndarray:
    """float64 ``(La, Lb)`` unbiased HSIC of every layer of ``a`` with every layer of ``b`` (same batch)."""
    n = a.n
    if b.n != n:
        raise ValueError(f"batches of {a.n} and {b.n} examples")
    if n < MIN_BATCH:
        raise ValueError(f"the unbiased HSIC needs n >= {MIN_BATCH}, got {n}")
    trace = a.flat @ b.flat.T
    both = np.outer(a.total, b.total) / ((n - 1) * (n - 2))
    cross = (a.rowsum @ b.rowsum.T) * (2.0 / (n - 2))
    return (trace + both - cross) / (n * (n - 3))


def self_hsic(a: GramTerms) -> np.ndarray:
    """float64 ``(L,)`` unbiased ``HSIC(K, K)`` of each layer."""
    n = a.n
    trace = np.einsum("ij,ij->i", a.flat, a.flat)
    both = a.total * a.total / ((n - 1) * (n - 2))
    cross = np.einsum("ij,ij->i", a.rowsum, a.rowsum) * (2.0 / (n - 2))
    return (trace + both - cross) / (n * (n - 3))


@dataclass
class HsicAccumulator:
    """Sums over minibatches of the unbiased HSIC of rows x columns of layers (exact, any merge order).

    Attributes:
        rows: Layers of the first representation ``La``.
        cols: Layers of the second ``Lb`` (the same layers for a model with itself).
        cross: float64 ``(La, Lb)`` sum of ``HSIC_1(K_i, L_j)``.
        row_self: float64 ``(La,)`` sum of ``HSIC_1(K_i, K_i)``.
        col_self: float64 ``(Lb,)`` sum of ``HSIC_1(L_j, L_j)``.
        batches: Minibatches added.
        examples: Examples added.
    """

    rows: int
    cols: int
    cross: np.ndarray = field(init=False)
    row_self: np.ndarray = field(init=False)
    col_self: np.ndarray = field(init=False)
    batches: int = 0
    examples: int = 0

    def __post_init__(self) -> None:
        self.cross = np.zeros((self.rows, self.cols))
        self.row_self = np.zeros(self.rows)
        self.col_self = np.zeros(self.cols)

    def add(self, a: GramTerms, b: GramTerms | None = None) -> None:
        """Add one minibatch: ``a`` the row layers' terms, ``b`` the column layers' (``None``: ``a`` again)."""
        if b is None:
            cross = hsic(a, a)
            self.cross += cross
            self.row_self += np.diag(cross)
            self.col_self += np.diag(cross)
        else:
            self.cross += hsic(a, b)
            self.row_self += self_hsic(a)
            self.col_self += self_hsic(b)
        self.batches += 1
        self.examples += a.n

    def merge(self, other: HsicAccumulator) -> None:
        """Fold in the sums of another, disjoint set of minibatches."""
        if (other.rows, other.cols) != (self.rows, self.cols):
            raise ValueError("cannot merge HSIC sums of different layer sets")
        self.cross = self.cross + other.cross
        self.row_self = self.row_self + other.row_self
        self.col_self = self.col_self + other.col_self
        self.batches += other.batches
        self.examples += other.examples

    def cka(self) -> np.ndarray:
        """float64 ``(La, Lb)`` linear CKA; NaN where a layer's own HSIC is not positive (a constant layer)."""
        return cka_from_sums(self.cross, self.row_self, self.col_self)


def cka_from_sums(cross: np.ndarray, row_self: np.ndarray, col_self: np.ndarray) -> np.ndarray:
    """``cross / sqrt(row_self x col_self)`` with NaN where either self term is ``<= 0``."""
    denom = np.outer(row_self, col_self)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cross / np.sqrt(denom)
    out[~(denom > 0)] = np.nan
    return out


def linear_cka(x: np.ndarray, y: np.ndarray, batch: int | None = None) -> float:
    """Minibatch linear CKA of two representations ``x (N, ...)`` and ``y (N, ...)`` of the same examples.

    Args:
        x: First representation, one row per example.
        y: Second representation, same examples in the same order.
        batch: Minibatch size (``None``: the whole dataset as one batch).

    Returns:
        The CKA (NaN for a constant representation).
    """
    if len(x) != len(y):
        raise ValueError(f"{len(x)} and {len(y)} examples; CKA compares the same examples")
    acc = HsicAccumulator(1, 1)
    for a, b in minibatches(len(x), batch or len(x)):
        acc.add(gram_terms([gram(x[a:b])]), gram_terms([gram(y[a:b])]))
    return float(acc.cka()[0, 0])
