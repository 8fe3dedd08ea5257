"""Bounding the memory of decoding: how far a big image may be shrunk first, handing freed memory back, and
trimming the caches when the server goes idle."""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

#: Seconds without a request after which the caches are trimmed (see :class:`IdleTrim`).
IDLE_SECONDS = 3.0

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


class IdleTrim:
    """Pure-ASGI middleware: once no request has run for ``idle_seconds``, call ``trim()`` once.

    A burst of work fills the bounded caches up to their bounds; an explorer left open then holds that
    memory for nothing. After the burst, ``trim`` (the explorer's :meth:`idle_trim`) shrinks the caches to a
    small floor and gives the freed heap back, so resident memory returns near its warm baseline. A watcher
    thread is started by the first request after a trim and ends after the next trim (no thread while idle).

    Args:
        app: The wrapped app.
        trim: Called from the watcher thread, never while a request runs.
        idle_seconds: Quiet time before trimming.
    """

    def __init__(self, app: ASGIApp, trim: Callable[[], object], idle_seconds: float = IDLE_SECONDS) -> None:
        self.app = app
        self.trim = trim
        self.idle_seconds = float(idle_seconds)
        self._lock = threading.Lock()
        self._running = 0
        self._last = time.monotonic()
        self._watcher: threading.Thread | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self._lock:
            self._running += 1
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="convscope-idle-trim", daemon=True)
                self._watcher.start()
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self._running -= 1
                self._last = time.monotonic()

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.idle_seconds / 2))
            with self._lock:
                idle = self._running == 0 and time.monotonic() - self._last >= self.idle_seconds
                if not idle:
                    continue
                self._watcher = None  # the next request starts a new watcher
                try:
                    self.trim()
                except Exception:  # a failed trim must not take the server down; it is logged
                    log.exception("trimming the caches failed")
                return
