"""Bringing layer-resolution maps to the input: bilinear resampling as two small matrices, and [0, 1] scaling.

A map of ``h x w`` positions is placed on the ``H x W`` input by saying where each position is centred:
position ``i`` sits at input pixel ``start + i * jump``. Bilinear interpolation between those centres
(clamped at the borders) is linear in the map, so it is a matrix ``R (H, h)`` per axis and
``up(M) = R_rows @ M @ R_cols.T``: exact, cheap, identical on every backend, and usable inside numpy
batches (Score-CAM masks).

* ``"stretch"``: the map spans the whole image (``jump = H / h``, ``start = jump / 2 - 1/2``) — what
  ``tf.image.resize`` / Pillow bilinear do.
* ``"grid"``: the layer's receptive-field grid (:func:`convscope.models.grids.field_grid`), so a map
  from a ``valid`` conv lands where its positions really look (MNIST ``conv_1``: 24 positions centred on
  pixels 2..25 of 28, not stretched over 0..27). Falls back to ``"stretch"`` when no grid is known.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from convscope.errors import FieldsUnavailable, OptionError
from convscope.models.grids import Placement, field_grid
from convscope.models.keys import ActivationKey

log = logging.getLogger(__name__)

UPSAMPLE_MODES = ("grid", "stretch")


def resample_matrix(n_out: int, n_map: int, start: float, jump: float) -> np.ndarray:
    """``(n_out, n_map)`` bilinear weights: output pixel ``u`` from map positions centred at ``start + i*jump``.

    Each row sums to 1; pixels beyond the first/last centre take the border value.
    """
    pos = np.clip((np.arange(n_out, dtype=np.float64) - start) / jump, 0.0, n_map - 1.0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_map - 1)
    frac = pos - lo
    matrix = np.zeros((n_out, n_map), np.float64)
    np.add.at(matrix, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(matrix, (np.arange(n_out), hi), frac)
    return matrix.astype(np.float32)


def stretch_grid(n_in: int, n_map: int) -> tuple[float, float]:
    """``(start, jump)`` spreading ``n_map`` positions evenly over ``n_in`` pixels (half-pixel centres)."""
    jump = n_in / n_map
    return jump / 2 - 0.5, jump


def receptive_grid(model: Any, path: str, sample_shape: tuple[int, ...]) -> Placement | None:
    """The grid of a 2D layer's first call as ``((start_y, start_x), (jump_y, jump_x))``, or ``None`` if unknown
    (no such layer, not 2D, or the model's layer table cannot be computed: the grid is an optional refinement).
    """
    if not path:
        return None
    try:
        grid = field_grid(model, ActivationKey(path, 0), tuple(sample_shape))
    except FieldsUnavailable as exc:
        log.debug("%s", exc)
        return None
    return grid.placement if grid is not None and grid.ndim == 2 else None


class Resampler:
    """Bilinear ``(N, h, w) -> (N, H, W)`` by two matrices.

    Args:
        map_size: ``(h, w)``.
        out_size: ``(H, W)``.
        grid: ``((start_y, start_x), (jump_y, jump_x))``; ``None`` stretches the map over the image.
    """

    def __init__(
        self, map_size: tuple[int, int], out_size: tuple[int, int], grid: Placement | None = None
    ) -> None:
        (h, w), (height, width) = map_size, out_size
        if grid is None:
            (sy, jy), (sx, jx) = stretch_grid(height, h), stretch_grid(width, w)
        else:
            (sy, sx), (jy, jx) = grid
        self.mode = (
            "none" if (h, w) == (height, width) and grid is None else ("stretch" if grid is None else "grid")
        )
        self.rows = resample_matrix(height, h, sy, jy)
        self.cols = resample_matrix(width, w, sx, jx)

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        """``(N, h, w)`` -> ``(N, H, W)`` float32 (``(h, w)`` -> ``(H, W)`` also works)."""
        if self.mode == "none":
            return np.asarray(maps, np.float32)
        return np.matmul(np.matmul(self.rows, np.asarray(maps, np.float32)), self.cols.T)  # BLAS, float32


def make_resampler(
    model: Any,
    path: str,
    sample_shape: tuple[int, ...],
    map_size: tuple[int, int],
    out_size: tuple[int, int],
    mode: str,
) -> Resampler:
    """A :class:`Resampler` for ``path`` in ``mode`` (``"grid"`` falls back to stretching if unknown).

    Raises:
        OptionError: ``mode`` is not one of :data:`UPSAMPLE_MODES`.
    """
    if mode not in UPSAMPLE_MODES:
        raise OptionError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
    grid = receptive_grid(model, path, sample_shape) if mode == "grid" and map_size != out_size else None
    return Resampler(map_size, out_size, grid)


def normalize01(maps: np.ndarray) -> np.ndarray:
    """Min-max scale each ``maps[i]`` to [0, 1]; a constant map becomes zeros (NaN stays NaN)."""
    maps = np.asarray(maps, np.float32)
    flat = maps.reshape(len(maps), -1)
    with np.errstate(invalid="ignore"):
        lo = np.nanmin(flat, axis=1, initial=np.inf, where=~np.isnan(flat))
        hi = np.nanmax(flat, axis=1, initial=-np.inf, where=~np.isnan(flat))
        span = hi - lo
        safe = np.where(np.isfinite(span) & (span > 0), span, 1.0)
        out = (flat - lo[:, None]) / safe[:, None]
        out = np.where((np.isfinite(span) & (span > 0))[:, None], out, np.where(np.isnan(flat), np.nan, 0.0))
    return out.reshape(maps.shape).astype(np.float32)
