"""Which channels to show: a small spec grammar, data-driven top-k, and inactive-channel detection.

Grammar of a channel spec (``C`` = number of channels):

* ``None`` or ``"all"``: every channel.
* ``"32"`` (or the int ``32``): the first 32 (all of them if ``C <= 32``).
* ``"0,3,5"``, ``"0-7,12"``: an explicit list in that order (ranges inclusive, duplicates dropped).
  A single channel is ``"5-5"`` or the sequence ``[5]``, since a lone number is a count.
* A sequence of ints, e.g. ``[4, 1, 9]``: an explicit list.
* ``"top16"``, ``"top16:mean"``, ``"top16:max"``: the 16 channels with the highest mean (default) or
  max activation in this sample, highest first (ties: lower index first).

A spec is first parsed on its own (:func:`parse_channel_spec`, a compact :class:`ChannelQuery` of ranges),
then checked against the layer's channel count before anything is expanded: no number written in a spec
sizes any allocation.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

import numpy as np

from convscope.errors import OptionError
from convscope.render.checks import is_int

ChannelSpec = str | int | np.integer | Sequence[int] | None
TOP_STATS: Final = ("mean", "max")
_GRAMMAR: Final = "'all', a count like '32', a list like '0,3,5' or '0-7,12', or 'top16[:mean|:max]'"
_TOP = re.compile(r"^top\s*([0-9]+)\s*(?::\s*(\w+))?$", re.ASCII)
_ITEM = re.compile(r"^([0-9]+)(?:\s*-\s*([0-9]+))?$", re.ASCII)
_COUNT = re.compile(r"^[0-9]+$", re.ASCII)


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
        shown = i if abs(i) < MAX_COUNT else f"{'below -' if i < 0 else 'over '}{MAX_COUNT:,}"
        raise OptionError(
            f"channel {shown} in spec {_show(spec)} is out of range: valid channels are 0..{n_channels - 1}"
        )
    return i


def _show(spec: object) -> str:
    """``repr`` of a spec for a message, cut to a readable length (never fails, even on a huge int)."""
    try:
        text = repr(spec)
    except ValueError:  # an int of more than 4,300 digits
        return f"<{type(spec).__name__} holding a number of more than 4,300 digits>"
    return text if len(text) <= 80 else text[:72] + "...'"


@dataclass(frozen=True)
class ChannelQuery:
    """A channel spec parsed for its grammar only: compact (ranges, never expanded), for any layer.

    Its size grows with the length of the spec's text, never with the numbers written in it, so a spec
    such as ``"0-1000000000"`` costs nothing until :meth:`plan` checks it against a real channel count.

    Attributes:
        kind: ``"all"``, ``"first"``, ``"list"`` or ``"top"``.
        count: How many (``first`` / ``top``) as written, capped at :data:`MAX_COUNT`.
        ranges: Inclusive ``(start, stop)`` pairs (``list``) in the written order; ``stop < start``
            counts down.
        stat: ``"mean"`` or ``"max"`` (``top``).
        spec: The spec as given, for messages.
    """

    kind: Literal["all", "first", "list", "top"]
    count: int = 0
    ranges: tuple[tuple[int, int], ...] = ()
    stat: str = "mean"
    spec: ChannelSpec = None

    def plan(self, n_channels: int) -> ChannelPlan:
        """Check every index against ``n_channels`` (before expanding anything) and build the plan.

        Raises:
            OptionError: ``n_channels < 1`` or an index outside ``0..n_channels-1``.
        """
        if isinstance(n_channels, (bool, np.bool_)) or not is_int(n_channels) or n_channels < 1:
            raise OptionError(
                f"a layer needs at least one channel to select from, got n_channels={n_channels!r}"
            )
        n = int(n_channels)
        if self.kind == "all":
            return ChannelPlan("all", n)
        if self.kind in ("first", "top"):
            return ChannelPlan(self.kind, n, count=min(self.count, n), stat=self.stat)
        for a, b in self.ranges:
            _check_index(a, n, self.spec)
            _check_index(b, n, self.spec)
        return ChannelPlan("list", n, indices=_unique_ranges(self.ranges))


MAX_COUNT: Final = 1 << 62
#: No layer convscope draws has more channels than this; a larger index is refused before any model loads.
MAX_CHANNELS: Final = 1 << 24
MAX_SPEC_CHARS: Final = 100_000
_DIGITS: Final = 18  # more digits than this cannot name a channel of any layer


def _unique_ranges(ranges: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """The indices of inclusive ranges in order, each once; work is O(len(ranges) log + output)."""
    covered: list[tuple[int, int]] = []  # sorted, disjoint, inclusive
    out: list[int] = []
    for a, b in ranges:
        lo, hi = min(a, b), max(a, b)
        i = bisect.bisect_left(covered, (lo, lo))
        if i and covered[i - 1][1] >= lo - 1:
            i -= 1
        j, gaps, cursor = i, [], lo
        while j < len(covered) and covered[j][0] <= hi + 1:
            c_lo, c_hi = covered[j]
            if c_lo > cursor:
                gaps.append((cursor, c_lo - 1))
            cursor = max(cursor, c_hi + 1)
            lo, hi = min(lo, c_lo), max(hi, c_hi)
            j += 1
        if cursor <= max(a, b):
            gaps.append((cursor, max(a, b)))
        covered[i:j] = [(lo, hi)]
        if a <= b:
            for g_lo, g_hi in gaps:
                out.extend(range(g_lo, g_hi + 1))
        else:
            for g_lo, g_hi in reversed(gaps):
                out.extend(range(g_hi, g_lo - 1, -1))
    return tuple(out)


def parse_channel_spec(spec: ChannelSpec) -> ChannelQuery:
    """Check a channel spec's grammar (see the module docstring) without knowing the layer.

    Nothing is expanded: ``"0-1000000000"`` is one range. Use this for an early check of a user option;
    :func:`parse_channels` (or :meth:`ChannelQuery.plan`) checks the indices against a layer.

    Raises:
        OptionError: A malformed spec; the message echoes it and says what is accepted.
    """
    if spec is None:
        return ChannelQuery("all", spec=spec)
    if isinstance(spec, (bool, np.bool_)):
        raise OptionError(f"invalid channel spec {spec!r}; expected {_GRAMMAR}")
    if is_int(spec):
        return _count_query(int(spec), spec)
    if isinstance(spec, str):
        return _parse_text(spec)
    if isinstance(spec, range) and spec.step in (1, -1) and len(spec):
        return ChannelQuery("list", ranges=((spec.start, spec[-1]),), spec=spec)
    try:
        items = [_as_int(v, spec) for v in cast("Sequence[object]", spec)]  # not an int: checked above
    except TypeError:
        raise OptionError(f"invalid channel spec {_show(spec)}; expected {_GRAMMAR}") from None
    if not items:
        raise OptionError(f"empty channel list {spec!r}; expected {_GRAMMAR}")
    return ChannelQuery("list", ranges=tuple((i, i) for i in items), spec=spec)


def parse_channels(spec: ChannelSpec, n_channels: int) -> ChannelPlan:
    """Parse a channel spec (see the module docstring) for a layer with ``n_channels`` channels.

    Every index is checked against ``n_channels`` before anything is expanded, so memory and time are
    bounded by the spec's length and ``n_channels``, never by a number written in the spec.

    Raises:
        OptionError: malformed spec or an index outside ``0..n_channels-1``; the message echoes the spec.
    """
    if isinstance(n_channels, (bool, np.bool_)) or not is_int(n_channels) or n_channels < 1:
        raise OptionError(f"a layer needs at least one channel to select from, got n_channels={n_channels!r}")
    return parse_channel_spec(spec).plan(n_channels)


def _as_int(value: object, spec: ChannelSpec) -> int:
    if isinstance(value, (bool, np.bool_)) or not is_int(value):
        raise OptionError(f"channel list {_show(spec)} holds {_show(value)}, which is not an integer index")
    return int(value)


def _number(digits: str) -> int:
    """An ASCII digit string as an int, saturated at :data:`MAX_COUNT` (never a huge conversion)."""
    digits = digits.lstrip("0") or "0"
    return MAX_COUNT if len(digits) > _DIGITS else int(digits)


def _count_query(count: int, spec: ChannelSpec) -> ChannelQuery:
    if count < 1:
        raise OptionError(f"channel count must be at least 1, got {_show(spec)}; expected {_GRAMMAR}")
    return ChannelQuery("first", count=min(count, MAX_COUNT), spec=spec)


def _parse_text(spec: str) -> ChannelQuery:
    if len(spec) > MAX_SPEC_CHARS:
        raise OptionError(
            f"channel spec {spec[:40]!r}... is {len(spec):,} characters long; the limit is "
            f"{MAX_SPEC_CHARS:,} (use ranges such as '0-511')"
        )
    text = spec.strip().lower()
    if text in ("all", "*", ""):
        return ChannelQuery("all", spec=spec)
    if _COUNT.match(text):
        return _count_query(_number(text), spec)
    top = _TOP.match(text)
    if top:
        count, stat = _number(top.group(1)), top.group(2) or "mean"
        if stat not in TOP_STATS:
            valid = ", ".join(TOP_STATS)
            raise OptionError(f"unknown statistic {stat!r} in channel spec {_show(spec)}; valid: {valid}")
        if count < 1:
            raise OptionError(f"top-k needs k >= 1, got {_show(spec)}")
        return ChannelQuery("top", count=count, stat=stat, spec=spec)
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        match = _ITEM.match(part.strip())
        if not match:
            raise OptionError(
                f"invalid channel spec {_show(spec)} (at {part.strip()[:40]!r}); expected {_GRAMMAR}"
            )
        a = _number(match.group(1))
        ranges.append((a, _number(match.group(2)) if match.group(2) else a))
    return ChannelQuery("list", ranges=tuple(ranges), spec=spec)


def _beyond_any_layer(index: int, spec: object) -> None:
    """Refuse an index no layer can have (:data:`MAX_CHANNELS`), before the model is even loaded.

    Used by :func:`check_spec` only: where the layer is known, the index is checked against its real channel
    count instead (a message naming the valid range).
    """
    if index >= MAX_CHANNELS:
        shown = f"{index:,}" if index < MAX_COUNT else f"over {MAX_COUNT:,}"
        raise OptionError(
            f"channel {shown} in spec {_show(spec)} is beyond any layer (at most {MAX_CHANNELS:,} channels); "
            f"expected {_GRAMMAR}"
        )


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
        scores = np.mean(maps, axis=axes, dtype=np.float64) if stat == "mean" else np.max(maps, axis=axes)
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


def inactive_channels(maps: np.ndarray) -> np.ndarray:
    """Channels whose values are all exactly zero (inactive on these maps; "dead" is for a whole dataset).

    Args:
        maps: ``(C, ...)`` activations.

    Returns:
        bool ``(C,)``. A channel holding any NaN or Inf is not inactive.
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
            raise OptionError(
                f"channel spec {spec!r} ranks channels by activation data, which is not "
                "available here; give a count like '16' or a list like '0-7,12'"
            )
        if (top.group(2) or "mean") not in TOP_STATS:
            raise OptionError(
                f"unknown statistic {top.group(2)!r} in channel spec {spec!r}; valid: {', '.join(TOP_STATS)}"
            )
        if int(top.group(1)) < 1:
            raise OptionError(f"top-k needs k >= 1, got {spec!r}")
        return spec
    for part in text.split(","):
        match = _ITEM.match(part.strip())
        if not match:
            raise OptionError(f"invalid channel spec {spec!r} (at {part.strip()!r}); expected {_GRAMMAR}")
        _beyond_any_layer(max(_number(g) for g in match.groups() if g is not None), spec)
    return spec
