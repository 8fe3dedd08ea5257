"""Which channels to show: a small spec grammar, data-driven top-k, and dead-channel detection.

Grammar of a channel spec (``C`` = number of channels):

* ``None`` or ``"all"``: every channel.
* ``"32"`` (or the int ``32``): the first 32 (all of them if ``C <= 32``).
* ``"0,3,5"``, ``"0-7,12"``: an explicit list in that order (ranges inclusive, duplicates dropped).
  A single channel is ``"5-5"`` or the sequence ``[5]``, since a lone number is a count.
* A sequence of ints, e.g. ``[4, 1, 9]``: an explicit list.
* ``"top16"``, ``"top16:mean"``, ``"top16:max"``: the 16 channels with the highest mean (default) or
  max activation in this sample, highest first (ties: lower index first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from convscope.errors import OptionError
from convscope.render.checks import is_int

ChannelSpec = str | int | Sequence[int] | None
TOP_STATS: Final = ("mean", "max")
_GRAMMAR: Final = "'all', a count like '32', a list like '0,3,5' or '0-7,12', or 'top16[:mean|:max]'"
_TOP = re.compile(r"^top\s*(\d+)\s*(?::\s*(\w+))?$")
_ITEM = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")


@dataclass(frozen=True)
class ChannelPlan:
    """A parsed channel spec, checked against the number of channels.

    Attributes:
        kind: ``"all"``, ``"first"``, ``"list"`` or ``"top"``.
        n_channels: Channels in the layer.
        count: How many to show (``first`` / ``top``; already capped at ``n_channels``).
        indices: The explicit indices (``list``).
        stat: ``"mean"`` or ``"max"`` (``top``).
    """

    kind: Literal["all", "first", "list", "top"]
    n_channels: int
    count: int = 0
    indices: tuple[int, ...] = ()
    stat: str = "mean"

    def resolve(self, maps: np.ndarray | None = None) -> np.ndarray:
        """The chosen channel indices (int64, display order); ``top`` needs ``maps`` ``(C, ...)``."""
        if self.kind == "all":
            return np.arange(self.n_channels)
        if self.kind == "first":
            return np.arange(self.count)
        if self.kind == "list":
            return np.array(self.indices, dtype=np.int64)
        if maps is None:
            raise OptionError(f"channel spec 'top{self.count}:{self.stat}' needs the activation data")
        return top_channels(maps, self.count, self.stat)

    def describe(self, unit: str = "channels") -> str:
        """A caption fragment such as ``"channels 0-31 of 64"`` or ``"top 16 by mean of 512"``."""
        n = self.n_channels
        if self.kind == "all" or (self.kind == "first" and self.count == n):
            return f"all {n} {unit}"
        if self.kind == "first":
            return f"{unit} {format_indices(range(self.count))} of {n}"
        if self.kind == "top":
            return f"top {self.count} by {self.stat} of {n}"
        return f"{unit} {format_indices(self.indices)} of {n}"


def format_indices(indices: Sequence[int] | range, limit: int = 60) -> str:
    """Compress indices into ranges, e.g. ``[0, 1, 2, 3, 7, 9, 10]`` -> ``"0-3,7,9-10"``.

    Longer than ``limit`` characters: cut at a comma and ended with ``,...``.
    """
    parts: list[str] = []
    idx = list(indices)
    i = 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        parts.append(str(idx[i]) if i == j else f"{idx[i]}-{idx[j]}")
        i = j + 1
    text = ",".join(parts)
    return text if len(text) <= limit else text[: limit - 3].rsplit(",", 1)[0] + ",..."


def _check_index(i: int, n_channels: int, spec: ChannelSpec) -> int:
    if not 0 <= i < n_channels:
        raise OptionError(
            f"channel {i} in spec {spec!r} is out of range: valid channels are 0..{n_channels - 1}"
        )
    return i


def parse_channels(spec: ChannelSpec, n_channels: int) -> ChannelPlan:
    """Parse a channel spec (see the module docstring) for a layer with ``n_channels`` channels.

    Raises:
        OptionError: malformed spec or an index outside ``0..n_channels-1``; the message echoes the spec.
    """
    if n_channels < 1:
        raise OptionError(f"a layer needs at least one channel to select from, got n_channels={n_channels}")
    if spec is None:
        return ChannelPlan("all", n_channels)
    if isinstance(spec, (bool, np.bool_)):
        raise OptionError(f"invalid channel spec {spec!r}; expected {_GRAMMAR}")
    if is_int(spec):
        return _count_plan(int(spec), n_channels, spec)
    if isinstance(spec, str):
        return _parse_text(spec, n_channels)
    try:
        items = [_as_int(v, spec) for v in spec]
    except TypeError:
        raise OptionError(f"invalid channel spec {spec!r}; expected {_GRAMMAR}") from None
    if not items:
        raise OptionError(f"empty channel list {spec!r}; expected {_GRAMMAR}")
    checked = [_check_index(i, n_channels, spec) for i in items]
    return ChannelPlan("list", n_channels, indices=_unique(checked))


def _as_int(value: object, spec: ChannelSpec) -> int:
    if not is_int(value):
        raise OptionError(f"channel list {spec!r} holds {value!r}, which is not an integer index")
    return int(value)


def _unique(items: list[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(items))


def _count_plan(count: int, n_channels: int, spec: ChannelSpec) -> ChannelPlan:
    if count < 1:
        raise OptionError(f"channel count must be at least 1, got {spec!r}; expected {_GRAMMAR}")
    return ChannelPlan("first", n_channels, count=min(count, n_channels))


def _parse_text(spec: str, n_channels: int) -> ChannelPlan:
    text = spec.strip().lower()
    if text in ("all", "*", ""):
        return ChannelPlan("all", n_channels)
    if text.isdigit():
        return _count_plan(int(text), n_channels, spec)
    top = _TOP.match(text)
    if top:
        count, stat = int(top.group(1)), top.group(2) or "mean"
        if stat not in TOP_STATS:
            valid = ", ".join(TOP_STATS)
            raise OptionError(f"unknown statistic {stat!r} in channel spec {spec!r}; valid: {valid}")
        if count < 1:
            raise OptionError(f"top-k needs k >= 1, got {spec!r}")
        return ChannelPlan("top", n_channels, count=min(count, n_channels), stat=stat)
    items: list[int] = []
    for part in text.split(","):
        match = _ITEM.match(part.strip())
        if not match:
            raise OptionError(f"invalid channel spec {spec!r} (at {part.strip()!r}); expected {_GRAMMAR}")
        a = _check_index(int(match.group(1)), n_channels, spec)
        b = _check_index(int(match.group(2)), n_channels, spec) if match.group(2) else a
        items.extend(range(a, b + 1) if a <= b else range(a, b - 1, -1))
    return ChannelPlan("list", n_channels, indices=_unique(items))


def channel_scores(maps: np.ndarray, stat: str = "mean") -> np.ndarray:
    """Mean or max of each channel over its finite values (``-inf`` for a channel with none).

    Args:
        maps: ``(C, ...)`` activations (a transposed view is fine; no copy is made).
        stat: ``"mean"`` or ``"max"``.

    Returns:
        float64 ``(C,)``.
    """
    if stat not in TOP_STATS:
        raise OptionError(f"unknown channel statistic {stat!r}; valid: {', '.join(TOP_STATS)}")
    axes = tuple(range(1, maps.ndim))
    with np.errstate(invalid="ignore", over="ignore"):
        scores = (np.mean(maps, axis=axes, dtype=np.float64) if stat == "mean" else np.max(maps, axis=axes))
        scores = np.asarray(scores, dtype=np.float64)
        bad = ~np.isfinite(scores)
        if bad.any():  # recompute those channels over their finite values only
            for c in np.flatnonzero(bad):
                finite = np.asarray(maps[c], dtype=np.float64)
                finite = finite[np.isfinite(finite)]
                scores[c] = (finite.mean() if stat == "mean" else finite.max()) if finite.size else -np.inf
    return scores


def top_channels(maps: np.ndarray, k: int, stat: str = "mean") -> np.ndarray:
    """Indices of the ``k`` channels with the highest score, highest first (stable for ties).

    Args:
        maps: ``(C, ...)`` activations.
        k: How many (capped at ``C``).
        stat: ``"mean"`` or ``"max"``.

    Returns:
        int64 ``(min(k, C),)``.
    """
    scores = channel_scores(maps, stat)
    return np.argsort(-scores, kind="stable")[:k].astype(np.int64)


def select_channels(maps: np.ndarray, spec: ChannelSpec) -> np.ndarray:
    """Resolve ``spec`` against activations ``maps`` ``(C, ...)``; int64 indices in display order."""
    return parse_channels(spec, maps.shape[0]).resolve(maps)


def dead_channels(maps: np.ndarray) -> np.ndarray:
    """Channels whose values are all exactly zero.

    Args:
        maps: ``(C, ...)`` activations.

    Returns:
        bool ``(C,)``. A channel holding any NaN or Inf is not dead.
    """
    axes = tuple(range(1, maps.ndim))
    return (np.min(maps, axis=axes) == 0) & (np.max(maps, axis=axes) == 0)


def check_spec(spec: str, *, allow_top: bool = True) -> str:
    """Check the grammar of a text channel spec before any layer is known (nothing is expanded).

    Indices are checked later, against the layer, by :func:`parse_channels`; this only refuses what no
    layer could accept, in time and memory independent of the numbers written.

    Args:
        spec: A spec as typed on a command line, e.g. ``"top16:max"`` or ``"0-7,12"``.
        allow_top: ``False`` where no activation data exists to rank by (feature visualization).

    Returns:
        ``spec`` unchanged.

    Raises:
        OptionError: malformed spec, a zero count, an unknown top-k statistic, or ``top`` when not allowed.
    """
    text = str(spec).strip().lower()
    if text in ("all", "*", ""):
        return spec
    if text.isdigit():
        if int(text) < 1:
            raise OptionError(f"channel count must be at least 1, got {spec!r}; expected {_GRAMMAR}")
        return spec
    top = _TOP.match(text)
    if top:
        if not allow_top:
            raise OptionError(f"channel spec {spec!r} ranks channels by activation data, which is not "
                              "available here; give a count like '16' or a list like '0-7,12'")
        if (top.group(2) or "mean") not in TOP_STATS:
            raise OptionError(f"unknown statistic {top.group(2)!r} in channel spec {spec!r}; "
                              f"valid: {', '.join(TOP_STATS)}")
        if int(top.group(1)) < 1:
            raise OptionError(f"top-k needs k >= 1, got {spec!r}")
        return spec
    for part in text.split(","):
        if not _ITEM.match(part.strip()):
            raise OptionError(f"invalid channel spec {spec!r} (at {part.strip()!r}); expected {_GRAMMAR}")
    return spec
