"""Perturbing images for faithfulness metrics: pixel orders, Gaussian blur, ROAD's noisy linear imputation.

Pure numpy and scipy (imported when called; ``pip install 'convscope[eval]'``), no Keras. Used by
:mod:`convscope.attribution.evaluate`, which builds whole stacks of perturbed images from these pieces.

* :func:`removal_ranks` — each pixel's position in the order "decreasing map value" (ties broken by a
  priority per pixel position — a fixed random one in :func:`~convscope.attribution.evaluate.evaluate` — so
  that the many zeros of a ReLU'd map are not removed row by row from the top).
* :func:`pixel_counts` — how many pixels a removal fraction means.
* :func:`gaussian_blur` — the blurred image insertion starts from (``scipy.ndimage.gaussian_filter``).
* :func:`road_impute` — ROAD's noisy linear imputation (Rong et al., "A Consistent and Efficient Evaluation
  Strategy for Attribution Methods", ICML 2022): every removed pixel becomes the weighted mean of its 8
  neighbours (weight 1/6 for the 4 edge neighbours, 1/12 for the 4 diagonal ones, renormalized at the
  image border), removed neighbours included — one sparse linear system per image and mask, solved
  exactly — plus Gaussian noise.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator, Sequence
from types import ModuleType

import numpy as np

from convscope.errors import AttributionError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'convscope[eval]'"

#: ROAD's neighbour weights ``(d_row, d_col, weight)``: 1/6 for edge neighbours, 1/12 for diagonal ones.
ROAD_WEIGHTS: tuple[tuple[int, int, float], ...] = (
    (1, 1, 1 / 12),
    (0, 1, 1 / 6),
    (-1, 1, 1 / 12),
    (1, -1, 1 / 12),
    (0, -1, 1 / 6),
    (-1, -1, 1 / 12),
    (1, 0, 1 / 6),
    (-1, 0, 1 / 6),
)

#: Unknowns per solve: the systems of many images and masks are solved together (block diagonal) up to this.
MAX_UNKNOWNS = 1 << 16
#: A group of systems whose half-bandwidth (in raster order of the unknowns) is at most this is solved by a
#: banded Cholesky factorization (LAPACK ``pbsv``; cheap for narrow images), wider ones by sparse LU.
BANDED_MAX = 64


def require_scipy() -> ModuleType:
    """Import scipy or say how to install it.

    Raises:
        AttributionError: scipy is missing (the message gives the install line).
    """
    try:
        return importlib.import_module("scipy")
    except ImportError:
        raise AttributionError(
            "faithfulness metrics need scipy (ROAD's sparse linear solves, the Gaussian blur): "
            f"{INSTALL_HINT}"
        ) from None


def pixel_counts(fractions: Sequence[float] | np.ndarray, n_pixels: int) -> np.ndarray:
    """Pixels removed at each fraction: ``floor(f * n_pixels + 0.5)`` as int64 (fractions in [0, 1])."""
    return np.floor(np.asarray(fractions, np.float64) * n_pixels + 0.5).astype(np.int64)


def removal_ranks(maps: np.ndarray, tie_keys: np.ndarray) -> np.ndarray:
    """Each pixel's position when the pixels are sorted by decreasing map value.

    Args:
        maps: ``(N, H, W)`` attribution maps (NaN counts as the lowest value).
        tie_keys: ``(H * W,)`` a priority per pixel position (e.g. a random permutation of ``0..H*W-1``):
            among equal map values, the pixel with the lower key comes first.

    Returns:
        ``(N, H * W)`` int64: ``ranks[i, p] = k`` when pixel ``p`` (raster order) is the ``k``-th removed
        (``0`` = highest value). Removing the ``n`` most relevant pixels is ``ranks < n``; the ``n`` least
        relevant, ``ranks >= H * W - n``.
    """
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    flat = np.where(np.isnan(flat), -np.inf, flat)
    keys = np.broadcast_to(np.asarray(tie_keys), flat.shape)
    order = np.lexsort((keys, -flat), axis=-1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(flat.shape[1]), flat.shape), axis=1)
    return ranks


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """``(N, H, W, C)`` images blurred over H and W: ``scipy.ndimage.gaussian_filter`` (mode ``reflect``,
    truncated at 4 sigma), float32."""
    require_scipy()
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(np.asarray(x, np.float32), sigma=(0.0, sigma, sigma, 0.0), mode="reflect")


def _solve(
    diag: np.ndarray, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, rhs: np.ndarray
) -> np.ndarray:
    """Solve ``M v = rhs`` for the symmetric positive definite ``M`` given by its diagonal and its strictly
    upper entries ``M[rows, cols] = vals`` (``rows < cols``)."""
    n = len(diag)
    band = int((cols - rows).max()) if len(rows) else 0
    if band <= BANDED_MAX:
        from scipy.linalg import solveh_banded

        ab = np.zeros((band + 1, n))
        ab[band] = diag
        ab[band + rows - cols, cols] = vals
        return np.asarray(solveh_banded(ab, rhs, check_finite=False), np.float64)
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import splu

    every = np.arange(n)
    m = csc_matrix(
        (
            np.concatenate([diag, vals, vals]),
            (np.concatenate([every, rows, cols]), np.concatenate([every, cols, rows])),
        ),
        shape=(n, n),
    )
    lu = splu(m, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return np.asarray(lu.solve(rhs), np.float64)


def _impute_group(images: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The noise-free imputed values of every removed pixel of a group, ``(unknowns, C)`` in raster order."""
    b, h, w, c = images.shape
    p = h * w
    flat_removed = removed.reshape(-1)
    values = images.reshape(-1, c).astype(np.float64)
    unknown = np.flatnonzero(flat_removed)
    index = np.full(b * p, -1, np.int64)
    index[unknown] = np.arange(len(unknown))
    image, pos = np.divmod(unknown, p)
    row, col = np.divmod(pos, w)
    diag = np.zeros(len(unknown))
    rhs = np.zeros((len(unknown), c))
    rows, cols, vals = [], [], []
    for d_row, d_col, weight in ROAD_WEIGHTS:
        r, q = row + d_row, col + d_col
        inside = np.flatnonzero((r >= 0) & (r < h) & (q >= 0) & (q < w))
        neighbour = image[inside] * p + r[inside] * w + q[inside]
        diag[inside] += weight  # the weights of the neighbours inside the image sum to the diagonal
        gone = flat_removed[neighbour]
        i, j = inside[gone], index[neighbour[gone]]
        upper = i < j
        rows.append(i[upper])
        cols.append(j[upper])
        vals.append(np.full(int(upper.sum()), -weight))
        rhs[inside[~gone]] += weight * values[neighbour[~gone]]
    return _solve(diag, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), rhs)


def _bands(removed: np.ndarray) -> np.ndarray:
    """``(B,)`` half-bandwidth of each image's system: the largest raster-order distance, counted in unknowns,
    between two removed pixels that are neighbours."""
    b, h, w = removed.shape
    count = np.cumsum(removed.reshape(b, -1), axis=1, dtype=np.int64).reshape(b, h, w)
    band = np.zeros(b, np.int64)
    for d_row, d_col in ((0, 1), (1, -1), (1, 0), (1, 1)):
        c0, c1 = max(0, -d_col), w - max(0, d_col)
        src = (slice(None), slice(0, h - d_row), slice(c0, c1))
        dst = (slice(None), slice(d_row, h), slice(c0 + d_col, c1 + d_col))
        both = removed[src] & removed[dst]
        if both.size:
            gap = np.where(both, count[dst] - count[src], 0)
            band = np.maximum(band, gap.reshape(b, -1).max(axis=1))
    return band


def road_impute(images: np.ndarray, removed: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
    """ROAD's noisy linear imputation of the removed pixels of each image.

    For every image the removed pixels ``v`` solve ``d_i v_i - sum_j w_ij v_j = sum_k w_ik x_k``: each
    equals the weighted mean of its neighbours inside the image (:data:`ROAD_WEIGHTS`; ``d_i`` is the sum of
    those weights), removed neighbours ``j`` being unknowns themselves and kept neighbours ``k`` fixed. The
    matrix is symmetric positive definite as long as one pixel is kept, so the systems are solved exactly
    with ``scipy.sparse`` / ``scipy.linalg``: many images and masks at once, as one block-diagonal system
    (up to :data:`MAX_UNKNOWNS` unknowns per solve), by a banded Cholesky factorization when the unknowns'
    bandwidth is small (narrow images), else by sparse LU (SuperLU, symmetric minimum-degree ordering).
    Then ``noise`` is added to the imputed pixels (ROAD: Gaussian, std 0.01 on normalized images).

    Args:
        images: ``(B, H, W, C)`` images, channels last.
        removed: ``(B, H, W)`` bool, True where a pixel is removed (imputed).
        noise: ``(B, H, W, C)`` values added to the imputed pixels, or ``None`` for none.

    Returns:
        ``(B, H, W, C)`` float32: kept pixels unchanged, removed pixels imputed.

    Raises:
        AttributionError: A mask removes every pixel of its image (nothing to impute from), or the
            shapes disagree.
    """
    require_scipy()
    images = np.asarray(images)
    removed = np.asarray(removed, bool)
    if images.ndim != 4 or removed.shape != images.shape[:3]:
        raise AttributionError(
            f"road_impute needs images (B, H, W, C) and masks (B, H, W); got {images.shape} and {removed.shape}"
        )
    if noise is not None and np.shape(noise) != images.shape:
        raise AttributionError(f"noise must be shaped like the images {images.shape}, got {np.shape(noise)}")
    per_image = removed.reshape(len(removed), -1).sum(axis=1)
    full = np.flatnonzero(per_image == removed[0].size) if removed.size else np.empty(0, np.int64)
    if len(full):
        raise AttributionError(
            f"a ROAD mask removes all {removed[0].size} pixels of image {int(full[0])}; keep at least one"
        )
    with one_blas_thread():
        return _impute(images, removed, noise, per_image)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS / LAPACK limited to one thread while the systems are solved (restored after): a multi-threaded
    OpenBLAS factorizing narrow band matrices spins its workers beside TensorFlow's threads, which made the
    banded solves 10-30x slower on 2 cores. Uses threadpoolctl."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _impute(
    images: np.ndarray, removed: np.ndarray, noise: np.ndarray | None, per_image: np.ndarray
) -> np.ndarray:
    out = np.array(images, np.float32, copy=True)
    # Systems of similar bandwidth are solved together: a banded factorization costs ~ unknowns * band^2.
    order = np.argsort(_bands(removed), kind="stable")
    order = order[per_image[order] > 0]
    ends = np.cumsum(per_image[order])
    start = 0
    while start < len(order):
        # as many whole systems as fit in MAX_UNKNOWNS unknowns (at least one)
        limit = ends[start] - per_image[order[start]] + MAX_UNKNOWNS
        stop = max(start + 1, int(np.searchsorted(ends, limit, "right")))
        group = order[start:stop]
        mask = removed[group]
        solution = _impute_group(images[group], mask)
        part = out[group]
        part[mask] = solution if noise is None else solution + noise[group][mask]
        out[group] = part
        start = stop
    return out


__all__ = [
    "BANDED_MAX",
    "INSTALL_HINT",
    "MAX_UNKNOWNS",
    "ROAD_WEIGHTS",
    "gaussian_blur",
    "pixel_counts",
    "removal_ranks",
    "require_scipy",
    "road_impute",
]
