"""Scale activation maps to [0, 1] for a colormap; the mode is a choice the user sees in the picture.

Modes (``maps`` is channel-first, ``(C, ...)``):

* ``channel``: each channel by its own finite min..max (best contrast, hides magnitudes).
* ``layer``: one finite min..max for all channels (channels comparable).
* ``symmetric``: ``0.5 + 0.5 * v / max|v|`` over the layer, so 0 -> 0.5 (the middle of the diverging
  map). For tanh outputs and pre-activations.
* ``percentile``: clip at two percentiles of the layer's finite values, then scale (robust to outliers).
* ``raw``: a fixed ``vrange=(lo, hi)``, values outside clipped; without ``vrange`` the layer's finite
  min..max. Always drawn with a legend.

Constant data never divides by zero: a channel (or layer) whose finite values are all equal maps to 0
(0.5 in ``symmetric`` mode) and is flagged in :attr:`Normalized.constant`. NaN and +/-Inf are kept as
NaN / +/-Inf so the colormap can show them in their own colors; they never enter a min, max or
percentile.

One range per picture: the range a picture's colors stand for is a :class:`ValueSpan` (lo, hi, mode and
what it was computed over), made once by :func:`value_span` and handed to :func:`normalize`; the caption
(:meth:`ValueSpan.caption`) and the colorbar are both drawn from that object, never recomputed.

What "the layer" means when only some channels are drawn: the shared modes (``layer``, ``symmetric``,
``percentile``, ``raw`` without ``vrange``) take their range over the WHOLE layer, all its channels, so
any subset of a layer (the first 16, ``top16``, a page in the explorer) is drawn on the same scale as the
full layer and two pictures of one layer can be compared color for color. The caption says so
("over the layer (all 64 channels)"). ``channel`` mode scales each drawn channel by its own range; its
caption states the layer's range too, as a fact about the data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from convscope.errors import OptionError, RenderError, nearest
from convscope.render.display import dims, one_line

log = logging.getLogger(__name__)

NORM_MODES: Final = ("channel", "layer", "symmetric", "percentile", "raw")
_SPANNED: Final = ("layer", "symmetric", "percentile", "raw")  # modes drawn with a colorbar legend


@dataclass(frozen=True)
class ValueSpan:
    """The one value range a picture's colors stand for; caption and colorbar are both drawn from it.

    Attributes:
        lo: Value at the low end of the colormap (NaN when there is no finite value).
        hi: Value at the high end. In ``symmetric`` mode ``lo == -hi``.
        mode: The normalization mode (see the module docstring).
        over: What the range was computed over, as a noun phrase for the caption, e.g.
            ``"the layer (all 64 channels)"``, ``"channel 3"``, ``"the mean of 64 channels"``.
        percentile: ``(low, high)`` percentiles in ``percentile`` mode, else ``None``.
        fixed: True when the range is the user's ``vrange`` (``raw`` mode), not computed from data.
    """

    lo: float
    hi: float
    mode: str
    over: str = ""
    percentile: tuple[float, float] | None = None
    fixed: bool = False

    @property
    def ends(self) -> tuple[str, str]:
        """``lo`` and ``hi`` as printed, in the caption and at the ends of the colorbar alike."""
        return fmt(self.lo), fmt(self.hi)

    def caption(self) -> str:
        """The caption field stating this range, e.g. ``"range [0, 1.69] over the layer (all 64 channels)"``.

        Its two numbers are :attr:`ends`, the texts printed at the ends of the colorbar.
        """
        lo, hi = self.ends
        if self.fixed:
            return f"vrange [{lo}, {hi}] (fixed, values outside clipped)"
        text = f"range [{lo}, {hi}]"
        if self.percentile is not None:
            text += f" = p{fmt(self.percentile[0])}-p{fmt(self.percentile[1])}"
        if self.over:
            text += f" of {self.over}" if self.percentile is not None else f" over {self.over}"
        if self.mode == "channel":
            text += ", each channel scaled to its own min..max"
        return text


def fmt(value: float) -> str:
    """Short number for captions and legends: 3 significant digits, ``-0`` shown as ``0``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    text = f"{float(value):.3g}"
    return "0" if text in ("-0", "0", "-0.0") else text


@dataclass(frozen=True, eq=False)
class Normalized:
    """Maps scaled to [0, 1] and the value range each channel was scaled from.

    Attributes:
        values: float32 ``(C, ...)`` in [0, 1]; NaN / +Inf / -Inf where the input had them.
        lo: float64 ``(C,)`` value mapped to 0 (NaN for a channel without finite values).
        hi: float64 ``(C,)`` value mapped to 1.
        mode: The normalization mode used.
        constant: bool ``(C,)``, True where a channel's finite values are all equal (or absent).
        span: The range the picture states (caption and colorbar); in ``channel`` mode the extremes of
            the per-channel ranges unless the caller described the layer's range.
    """

    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    mode: str
    constant: np.ndarray
    span: ValueSpan

    def __repr__(self) -> str:
        return one_line(
            "Normalized",
            f"mode={self.mode!r}",
            f"values={dims(self.values.shape)}",
            f"range=[{self.span.ends[0]}, {self.span.ends[1]}]",
            f"constant={int(np.count_nonzero(self.constant))}",
        )


def check_mode(mode: str) -> str:
    """Return ``mode`` lower-cased if it is one of :data:`NORM_MODES`.

    Raises:
        OptionError: unknown mode; the message lists the valid ones.
    """
    key = mode.strip().lower() if isinstance(mode, str) else mode
    if key not in NORM_MODES:
        hint = nearest(str(mode), NORM_MODES, n=1) if isinstance(mode, str) else []
        more = f"; did you mean {hint[0]!r}?" if hint else ""
        raise OptionError(f"unknown normalization {mode!r}; valid: {', '.join(NORM_MODES)}{more}")
    return key


def default_cmap(mode: str) -> str:
    """The colormap that suits a normalization mode: ``diverging`` for ``symmetric``, else ``gray``."""
    return "diverging" if check_mode(mode) == "symmetric" else "gray"


def has_legend(mode: str) -> bool:
    """True for modes whose picture carries a colorbar legend (all but ``channel``)."""
    return check_mode(mode) in _SPANNED


def check_percentile(percentile: Sequence[float]) -> tuple[float, float]:
    """Validate ``(low, high)`` percentiles with ``0 <= low < high <= 100``.

    Raises:
        OptionError: malformed pair, echoing it.
    """
    try:
        low, high = (float(p) for p in percentile)
    except (TypeError, ValueError):
        raise OptionError(f"percentile must be two numbers (low, high), got {percentile!r}") from None
    if not (0.0 <= low < high <= 100.0):
        raise OptionError(f"percentile must satisfy 0 <= low < high <= 100, got {percentile!r}")
    return low, high


def check_vrange(vrange: Sequence[float]) -> tuple[float, float]:
    """Validate a fixed value range ``(lo, hi)``: two finite numbers with ``lo < hi``.

    Raises:
        OptionError: malformed range, echoing it.
    """
    try:
        lo, hi = (float(v) for v in vrange)
    except (TypeError, ValueError):
        raise OptionError(f"vrange must be two numbers (lo, hi), got {vrange!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise OptionError(f"vrange must be finite with lo < hi, got {vrange!r}")
    return lo, hi


def channel_min_max(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Finite min and max of each row of ``flat``.

    Args:
        flat: float ``(C, N)``.

    Returns:
        ``(mins, maxs, all_finite)``: float64 ``(C,)`` each (NaN for a row without finite values), and
        whether every value in ``flat`` is finite.
    """
    mins = flat.min(axis=1).astype(np.float64)
    maxs = flat.max(axis=1).astype(np.float64)
    odd = ~(np.isfinite(mins) & np.isfinite(maxs))  # NaN propagates through min/max, Inf shows up
    if odd.any():
        for c in np.flatnonzero(odd):
            finite = flat[c][np.isfinite(flat[c])]
            mins[c], maxs[c] = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
    return mins, maxs, not odd.any()


def _layer_span(mins: np.ndarray, maxs: np.ndarray) -> tuple[float, float]:
    """One finite min and max over all channels (NaN, NaN if there is no finite value at all)."""
    if np.isnan(mins).all():
        return math.nan, math.nan
    return float(np.nanmin(mins)), float(np.nanmax(maxs))


def finite_span(values: np.ndarray) -> tuple[float, float]:
    """Finite ``(min, max)`` of any array (``(nan, nan)`` when nothing is finite)."""
    flat = np.asarray(values).reshape(1, -1)
    mins, maxs, _ = channel_min_max(flat)
    return float(mins[0]), float(maxs[0])


def value_span(
    values: np.ndarray,
    mode: str,
    *,
    over: str,
    percentile: Sequence[float] = (1.0, 99.0),
    vrange: Sequence[float] | None = None,
    finite_range: tuple[float, float] | None = None,
    all_finite: bool | None = None,
) -> ValueSpan:
    """The range a picture of ``values`` is drawn with, computed once over ALL of ``values``.

    Pass the whole layer (every channel, any layout) to draw a subset of it on the layer's scale.

    Args:
        values: The numbers the range is taken over (any shape, any layout; not modified).
        mode: One of :data:`NORM_MODES`. ``channel`` mode gets the finite min..max of ``values`` (a fact
            for the caption; each channel is still scaled by its own range).
        over: What ``values`` are, for the caption (see :attr:`ValueSpan.over`).
        percentile: ``(low, high)`` for ``percentile`` mode.
        vrange: The fixed ``(lo, hi)`` of ``raw`` mode (``None``: the finite min..max).
        finite_range: The finite ``(min, max)`` of ``values`` if the caller already has it (saves a pass).
        all_finite: Whether every value is finite, if known (saves a pass in ``percentile`` mode).

    Returns:
        A :class:`ValueSpan`; ``symmetric`` gives ``[-m, m]`` with ``m`` the largest finite ``|v|``.

    Raises:
        OptionError: unknown mode, malformed ``percentile`` / ``vrange``, or ``vrange`` with another mode.
    """
    mode = check_mode(mode)
    if vrange is not None and mode != "raw":
        raise OptionError(f"vrange={vrange!r} only applies to norm='raw' (got norm={mode!r})")
    if mode == "raw" and vrange is not None:
        lo, hi = check_vrange(vrange)
        return ValueSpan(lo, hi, mode, over="", fixed=True)
    if mode == "percentile":
        pair = check_percentile(percentile)
        x = np.asarray(values)
        if all_finite is None:
            all_finite = bool(np.isfinite(x).all())
        finite = x if all_finite else x[np.isfinite(x)]
        if not finite.size:
            return ValueSpan(math.nan, math.nan, mode, over, percentile=pair)
        lo, hi = (float(v) for v in np.percentile(finite.astype(np.float32, copy=False), pair))
        return ValueSpan(lo, hi, mode, over, percentile=pair)
    lo, hi = finite_range if finite_range is not None else finite_span(values)
    if mode == "symmetric":
        m = max(abs(lo), abs(hi)) if math.isfinite(lo) else math.nan
        return ValueSpan(-m, m, mode, over)
    return ValueSpan(float(lo), float(hi), mode, over)


def normalize(
    maps: np.ndarray,
    mode: str = "channel",
    *,
    percentile: Sequence[float] = (1.0, 99.0),
    vrange: Sequence[float] | None = None,
    span: ValueSpan | None = None,
    over: str | None = None,
) -> Normalized:
    """Scale channel-first maps to [0, 1] with the chosen mode (see the module docstring).

    Args:
        maps: ``(C, ...)`` numbers (any real dtype); not modified.
        mode: One of :data:`NORM_MODES`.
        percentile: ``(low, high)`` percentiles for ``mode="percentile"``.
        vrange: ``(lo, hi)`` for ``mode="raw"``; only allowed with that mode.
        span: The range to use, from :func:`value_span` (e.g. over the whole layer when ``maps`` holds
            only the channels drawn). ``None``: computed over ``maps``. In ``channel`` mode each channel
            is scaled by its own range whatever ``span`` says; ``span`` is what the caption states.
        over: Caption phrase for a span computed here (default ``"all C channels"``).

    Returns:
        A :class:`Normalized` with float32 ``values`` of the same shape as ``maps``.

    Raises:
        OptionError: unknown mode, malformed ``percentile`` / ``vrange``, ``vrange`` with another mode,
            or a ``span`` made for another mode.
        RenderError: ``maps`` is empty, 0-d or not real-valued.
    """
    mode = check_mode(mode)
    x = np.asarray(maps)
    if x.ndim < 1 or x.size == 0:
        raise RenderError(f"cannot normalize an empty or 0-d array of shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.iscomplexobj(x):
        raise RenderError(f"activations must be real numbers, got dtype {x.dtype}")
    if vrange is not None and mode != "raw":
        raise OptionError(f"vrange={vrange!r} only applies to norm='raw' (got norm={mode!r})")
    if span is not None and span.mode != mode:
        raise OptionError(f"a span made for norm={span.mode!r} cannot normalize with norm={mode!r}")
    flat = np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32)
    mins, maxs, all_finite = channel_min_max(flat)
    constant = ~(maxs > mins)  # also True for channels without finite values (NaN compares False)
    n = len(mins)
    given = span is not None
    if span is None:
        span = value_span(
            flat,
            mode,
            over=over or f"all {n} channels",
            percentile=percentile,
            vrange=vrange,
            finite_range=_layer_span(mins, maxs),
            all_finite=all_finite,
        )

    if mode == "channel":
        lo, hi = mins, maxs
    else:
        lo, hi = np.full(n, span.lo), np.full(n, span.hi)

    values = _scale(flat, lo, hi, symmetric=mode == "symmetric")
    if mode in ("percentile", "raw") or (given and mode != "channel"):  # a given span may be narrower
        _clip_finite(values, all_finite)
    if constant.any():
        log.debug("normalize(%s): %d constant channel(s): %s", mode, constant.sum(), np.flatnonzero(constant))
    return Normalized(values.reshape(x.shape), lo, hi, mode, constant, span)


def _scale(flat: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, symmetric: bool) -> np.ndarray:
    """``(v - lo) / (hi - lo)`` per row; rows with a zero, NaN or unusable span are handled apart.

    Degenerate rows (``hi == lo``): finite values above ``hi`` -> 1, others -> 0 (0.5 if ``symmetric``);
    non-finite values pass through.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return _scale_rows(flat, lo, hi, symmetric)


def _scale_rows(flat: np.ndarray, lo: np.ndarray, hi: np.ndarray, symmetric: bool) -> np.ndarray:
    span = hi - lo
    inv = 1.0 / span
    good = np.isfinite(inv) & (span > 0)
    if symmetric:  # v * 0.5 / m + 0.5, with lo = -m
        mult = np.where(good, inv, 0.0).astype(np.float32)[:, None]
        out = np.multiply(flat, mult)
        out += np.float32(0.5)
    else:
        out = np.subtract(flat, np.where(good, lo, 0.0).astype(np.float32)[:, None])
        out *= np.where(good, inv, 0.0).astype(np.float32)[:, None]
    for c in np.flatnonzero(~good):
        row = flat[c]
        flat_value = 0.5 if symmetric else 0.0
        above = row > hi[c] if math.isfinite(hi[c]) else np.zeros(row.shape, bool)
        out[c] = np.where(np.isfinite(row), np.where(above, 1.0, flat_value), row)
    return out


def _clip_finite(values: np.ndarray, all_finite: bool) -> None:
    """Clip finite values to [0, 1] in place, leaving +/-Inf (and NaN) as they are."""
    if all_finite:
        np.clip(values, 0.0, 1.0, out=values)
        return
    inf = np.isinf(values)
    saved = values[inf]
    np.clip(values, 0.0, 1.0, out=values)
    values[inf] = saved
