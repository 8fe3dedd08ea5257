"""Bounding the memory of decoding: how far a big image may be shrunk first, and handing freed memory back."""

from __future__ import annotations

import ctypes
import functools
import math
from typing import Any

REDUCE_MARGIN = 4  # a reduced upload keeps at least this many times the model's input size


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` from the running process's own symbols, or ``None`` (other C libraries)."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (OSError, TypeError, AttributeError):
        return None


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; a no-op elsewhere).

    Large decodes are freed into per-thread malloc arenas that otherwise keep the process's resident size
    at its peak long after the pictures are gone.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def reduction_factor(
    width: int, height: int, target: tuple[int | None, int | None], max_free_side: int
) -> int:
    """The integer factor an image ``width x height`` can be shrunk by before preprocessing.

    ``target`` ``(height, width)`` of the model input (``None`` = any size): the image keeps at least
    :data:`REDUCE_MARGIN` times that size; a free size keeps at most ``max_free_side`` on the longer side.
    """
    th, tw = target
    if th and tw:
        return max(1, min(width // (REDUCE_MARGIN * tw), height // (REDUCE_MARGIN * th)))
    longest = max(width, height)
    return max(1, math.ceil(longest / max_free_side)) if longest > max_free_side else 1
