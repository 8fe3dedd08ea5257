"""One fused pass over a batch's activations, compiled with numba (the optional ``fast`` extra).

The numpy path in :mod:`~convscope.scan.reduce` reads every value four times (sum, max, sum of squares,
positive count: one numpy reduction each). This kernel reads it once and updates all of them, with the
per-image sums and the sums of squares accumulated in float64. It is used when numba imports and the
batch is C-contiguous float32; otherwise :func:`~convscope.scan.reduce.summarize` falls back to numpy.
Why numba and not numpy: no numpy primitive computes several reductions in one pass, and on 2 cores the
statistics compete with the forward pass for the same CPU, so every pass over the data counts.

The kernel releases the GIL (``nogil``), so the scan's statistics threads run it in parallel. It is
compiled on first use (about a second) and cached on disk by numba.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _source(act: Any, lo: float, hi: float, bounded: bool, sums: Any, maxes: Any, sq: Any, pos: Any,
            sat: Any) -> None:  # pragma: no cover - compiled by numba; its Python body is never run
    """Fused reduction of ``act (n, P, C)``; see :func:`kernel` for the outputs."""
    n, p, c = act.shape
    s = np.empty(c, np.float64)
    m = np.empty(c, np.float32)
    nan = np.empty(c, np.int64)
    for i in range(n):
        s[:] = 0.0
        m[:] = -np.inf
        nan[:] = 0
        for j in range(p):
            for k in range(c):
                v = act[i, j, k]
                s[k] += v
                m[k] = max(m[k], v)
                sq[k] += np.float64(v) * np.float64(v)
                pos[k] += v > 0
                nan[k] += v != v
        if bounded:
            for j in range(p):
                for k in range(c):
                    v = act[i, j, k]
                    sat[k] += (v <= lo) | (v >= hi)
        for k in range(c):
            sums[i, k] = s[k]
            maxes[i, k] = np.nan if nan[k] else m[k]  # numpy's max: NaN wins


@functools.cache
def kernel() -> Callable[..., None] | None:
    """The compiled kernel, or ``None`` when numba is not installed (or fails to import).

    Called as ``kernel()(act, lo, hi, bounded, sums, maxes, sq, pos, sat)`` with ``act`` float32
    ``(n, P, C)`` C-contiguous; it writes ``sums`` float64 ``(n, C)`` (per image, sum over positions) and
    ``maxes`` float32 ``(n, C)`` (per image, max over positions; NaN if any value is NaN), and adds to
    ``sq`` float64 ``(C,)`` (sum of squares), ``pos`` int64 ``(C,)`` (values > 0) and, when ``bounded``,
    ``sat`` int64 ``(C,)`` (values ``<= lo`` or ``>= hi``).
    """
    try:
        import numba
    except Exception as exc:  # noqa: BLE001 - ImportError, or numba refusing this numpy version
        log.debug("numba unavailable (%s): scan statistics use numpy", exc)
        return None
    return numba.njit(cache=True, nogil=True)(_source)  # type: ignore[no-any-return]
