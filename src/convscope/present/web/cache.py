"""A thread-safe LRU cache bounded by bytes, with single-flight computation.

The explorer keeps three of these: activations per image (all layers of one forward pass), rendered
pictures per (image, layer, options), and prepared folder images. ``get_or_compute`` makes concurrent
requests for the same key wait for one computation instead of each running the model.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of one cache: entries, bytes held, hits and misses."""

    name: str
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int


class LRUCache(Generic[K, V]):
    """Least-recently-used cache holding at most ``max_bytes`` (as measured by ``sizeof``).

    Args:
        name: For logs and :meth:`stats`.
        max_bytes: Upper bound of the summed sizes; a value larger than this alone is returned, not kept.
        sizeof: Size of one value in bytes.
    """

    def __init__(self, name: str, max_bytes: int, sizeof: Callable[[V], int]) -> None:
        self.name = name
        self.max_bytes = int(max_bytes)
        self._sizeof = sizeof
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._flights: dict[K, threading.Lock] = {}
        self._hits = 0
        self._misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def get(self, key: K) -> V | None:
        """The value of ``key`` (marked as recently used), or ``None``."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            self._data.move_to_end(key)
            self._hits += 1
            return item[0]

    def put(self, key: K, value: V) -> None:
        """Store ``value``, evicting the least recently used entries to stay within ``max_bytes``."""
        size = int(self._sizeof(value))
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.max_bytes:
                log.debug(
                    "%s cache: %r (%d bytes) is larger than the whole cache; not kept", self.name, key, size
                )
                return
            self._data[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._data:
                evicted, (_, evicted_size) = self._data.popitem(last=False)
                self._bytes -= evicted_size
                log.debug("%s cache: evicted %r", self.name, evicted)

    def shrink(self, max_bytes: int, keep: int = 1) -> int:
        """Evict least recently used entries until at most ``max_bytes`` are held, always keeping the ``keep``
        most recently used ones; returns the bytes freed.

        The bound itself (``max_bytes`` of the constructor) is unchanged: the cache may grow again.
        """
        freed = 0
        with self._lock:
            while self._bytes > max_bytes and len(self._data) > keep:
                _, (_, size) = self._data.popitem(last=False)
                self._bytes -= size
                freed += size
        return freed

    def discard(self, key: K) -> None:
        """Forget ``key`` if present."""
        with self._lock:
            item = self._data.pop(key, None)
            if item is not None:
                self._bytes -= item[1]

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value of ``key``, computing and storing it once if missing.

        Concurrent callers asking for the same missing key wait for the first one's result; an exception
        in ``compute`` propagates to that caller and the next caller tries again.
        """
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        try:
            with flight:
                value = self.get(key)
                if value is not None:
                    return value
                with self._lock:
                    self._misses += 1
                value = compute()
                self.put(key, value)
                return value
        finally:
            with self._lock:
                if self._flights.get(key) is flight and not flight.locked():
                    del self._flights[key]

    def stats(self) -> CacheStats:
        """Entries, bytes and hit counts right now."""
        with self._lock:
            return CacheStats(
                self.name, len(self._data), self._bytes, self.max_bytes, self._hits, self._misses
            )
