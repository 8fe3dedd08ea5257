"""The threads that decode and preprocess image files for a scan, in parallel and in order.

Pillow's decoders and resizers and numpy release the GIL, so a few threads decode a batch's images at
once while the forward pass of the previous batch runs (the scan reads batches ahead in a background
thread, :func:`convscope.scan.engine._prefetch`, through a bounded queue). Results come back in row
order, so a scan with workers gives exactly what a sequential read gives.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: Threads decoding image files per process: half the cores (the forward pass keeps the rest), 2 to 8.
DECODE_THREADS = max(2, min(8, (os.cpu_count() or 2) // 2))

_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def decode_pool(workers: int) -> ThreadPoolExecutor:
    """The process-wide pool of ``workers`` decoding threads (created on first use, then reused)."""
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="convscope-decode")
            _pools[workers] = pool
        return pool


def map_in_order(
    fn: Callable[[int], T], rows: Sequence[int], workers: int, inline: Callable[[int], bool] | None = None
) -> list[T]:
    """``[fn(row) for row in rows]``, computed by ``workers`` threads, in order, with the same errors.

    Args:
        fn: Reads one row.
        rows: The rows, in the order the results are returned.
        workers: Threads; ``<= 1`` runs everything in the calling thread.
        inline: Rows for which it returns True run in the calling thread at their turn (readers that keep
            state between rows, such as the last decoded stack).

    Returns:
        One result per row, in order. The first row (in order) that raises raises here, as a sequential
        loop would; the rows not yet started are cancelled.
    """
    if workers <= 1 or len(rows) <= 1:
        return [fn(row) for row in rows]
    pool = decode_pool(workers)
    futures: list[Future[T] | None] = [
        None if inline is not None and inline(row) else pool.submit(fn, row) for row in rows
    ]
    try:
        return [fn(row) if future is None else future.result() for row, future in zip(rows, futures)]
    except BaseException:
        for future in futures:
            if future is not None:
                future.cancel()
        raise
