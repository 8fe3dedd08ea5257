"""Shared steps of every renderer: check options once, read the activation, gather its statistics."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from convscope.errors import OptionError, RenderError
from convscope.render.annotate import Legend
from convscope.render.channels import ChannelSpec
from convscope.render.checks import positive_int
from convscope.render.colormap import resolve_cmap
from convscope.render.normalize import (
    ValueSpan,
    check_mode,
    check_percentile,
    check_vrange,
    default_cmap,
    has_legend,
    value_span,
)
from convscope.render.result import FeatureGrid

log = logging.getLogger(__name__)

DATA_FORMATS: Final = ("channels_last", "channels_first")


@dataclass(frozen=True)
class RenderOptions:
    """Validated rendering options (see :func:`convscope.render.render_activation`)."""

    layer: str = ""
    data_format: str = "channels_last"
    norm: str = "channel"
    cmap: str = "gray"
    channels: ChannelSpec = None
    cols: int | None = None
    rows: int | None = None
    scale: int | None = None
    labels: bool = True
    legend: bool = True
    percentile: tuple[float, float] = (1.0, 99.0)
    vrange: tuple[float, float] | None = None
    max_channels: int = 64
    notes: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        norm: str = "channel",
        cmap: str | None = None,
        data_format: str = "channels_last",
        percentile: Sequence[float] = (1.0, 99.0),
        vrange: Sequence[float] | None = None,
        max_channels: int = 64,
        **rest: Any,
    ) -> RenderOptions:
        """Validate and normalize the user's options (``cmap=None`` -> the mode's default).

        Raises:
            OptionError: any malformed option, echoing the value and listing what is accepted.
        """
        mode = check_mode(norm)
        if data_format not in DATA_FORMATS:
            raise OptionError(f"unknown data_format {data_format!r}; valid: {', '.join(DATA_FORMATS)}")
        max_channels = positive_int("max_channels", max_channels)
        if "notes" in rest:
            rest["notes"] = tuple(str(n) for n in rest["notes"] if n)
        for name in ("rows", "cols", "scale"):
            if rest.get(name) is not None:
                rest[name] = positive_int(name, rest[name])
        if vrange is not None and mode != "raw":
            raise OptionError(f"vrange={vrange!r} only applies to norm='raw' (got norm={mode!r})")
        return cls(
            norm=mode,
            cmap=resolve_cmap(cmap if cmap is not None else default_cmap(mode)),
            data_format=data_format,
            percentile=check_percentile(percentile),
            vrange=None if vrange is None else check_vrange(vrange),
            max_channels=max_channels,
            **rest,
        )

    @property
    def wants_legend(self) -> bool:
        """A colorbar for every mode but ``channel``; ``raw`` always gets one."""
        return self.norm == "raw" or (self.legend and has_legend(self.norm))


@dataclass(frozen=True)
class LayerStats:
    """Facts about one sample's activation, over all channels.

    Attributes:
        value_range: Finite ``(min, max)`` (NaN, NaN when nothing is finite).
        inactive: bool ``(C,)``: channel exactly zero at every position of this activation (inactive on
            this image; "dead" means zero over a whole scanned dataset, see :mod:`convscope.scan.health`).
        n_nan: Count of NaN values.
        n_pos_inf: Count of +Inf values.
        n_neg_inf: Count of -Inf values.
    """

    value_range: tuple[float, float]
    inactive: np.ndarray
    n_nan: int = 0
    n_pos_inf: int = 0
    n_neg_inf: int = 0

    @property
    def n_inf(self) -> int:
        return self.n_pos_inf + self.n_neg_inf

    @property
    def specials(self) -> tuple[str, ...]:
        """Which special values occur, as legend names."""
        counts = {"NaN": self.n_nan, "+Inf": self.n_pos_inf, "-Inf": self.n_neg_inf}
        return tuple(name for name, n in counts.items() if n)

    @property
    def all_finite(self) -> bool:
        return not (self.n_nan or self.n_pos_inf or self.n_neg_inf)

    def caption_fields(self) -> list[str]:
        """Counts of NaN / Inf values with their colors (the range is the picture's :class:`ValueSpan`)."""
        named = (
            ("NaN", self.n_nan, "magenta"),
            ("+Inf", self.n_pos_inf, "orange"),
            ("-Inf", self.n_neg_inf, "cyan"),
        )
        return [f"{n} {name} ({color})" for name, n, color in named if n]


def as_activation(act: Any) -> np.ndarray:
    """One sample's activation as a numpy array of real numbers (bool -> uint8).

    Raises:
        RenderError: empty, 0-d, complex or non-numeric input.
    """
    arr = np.asarray(act)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise RenderError(f"activations must be real numbers, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.size == 0:
        raise RenderError(f"cannot render an activation of shape {arr.shape}: it is empty or a scalar")
    return arr


def gather_channels(maps: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Copy the chosen channels out as a compact float32 ``(K, ...)`` array.

    ``maps`` is channel-first but usually a transposed view of channels-last data, where a plain
    ``maps[idx]`` walks the whole array once per channel (~14 ms for 32 channels of 224x224x64). Going
    through the pixels in cache-sized blocks and transposing each block is ~5x faster.

    Args:
        maps: ``(C, ...)`` activation (any strides).
        idx: ``(K,)`` channel indices.

    Returns:
        float32 ``(K, ...)``, C-contiguous.
    """
    last = np.moveaxis(maps, 0, -1)
    if maps.ndim < 2 or not last.flags.c_contiguous or maps.shape[0] == 1:
        return np.ascontiguousarray(maps[idx], dtype=np.float32)
    n_channels = maps.shape[0]
    flat = last.reshape(-1, n_channels)
    out = np.empty((len(idx), flat.shape[0]), np.float32)
    step = max(64, 65536 // n_channels)
    for start in range(0, flat.shape[0], step):
        out[:, start : start + step] = flat[start : start + step, idx].T
    return out.reshape(len(idx), *maps.shape[1:])


def layer_stats(arr: np.ndarray, channel_axis: int) -> LayerStats:
    """Value range, inactive channels and NaN / Inf counts, in two reductions when everything is finite.

    Args:
        arr: The activation, any layout.
        channel_axis: Which axis holds channels.
    """
    axes = tuple(a for a in range(arr.ndim) if a != channel_axis % arr.ndim)
    with np.errstate(invalid="ignore"):
        mins = np.min(arr, axis=axes)
        maxs = np.max(arr, axis=axes)
    inactive = (mins == 0) & (maxs == 0)
    if np.issubdtype(arr.dtype, np.integer) or (np.isfinite(mins).all() and np.isfinite(maxs).all()):
        return LayerStats((float(mins.min()), float(maxs.max())), inactive)
    finite = arr[np.isfinite(arr)]
    value_range = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
    return LayerStats(
        value_range,
        inactive,
        int(np.isnan(arr).sum()),
        int((arr == np.inf).sum()),
        int((arr == -np.inf).sum()),
    )


def norm_fields(opts: RenderOptions) -> list[str]:
    """Caption parts naming the normalization and colormap (the range itself is the span's field)."""
    return [f"norm={opts.norm}", f"cmap={opts.cmap}"]


def layer_span(maps: np.ndarray, opts: RenderOptions, stats: LayerStats, unit: str = "channels") -> ValueSpan:
    """The picture's one range, taken over the WHOLE layer (see :mod:`convscope.render.normalize`).

    Args:
        maps: ``(C, ...)`` the whole activation, every channel (any strides); ``(C,)`` for a vector.
        opts: Validated options (mode, percentile, vrange).
        stats: From :func:`layer_stats` on the same activation (its finite range is reused, not recomputed).
        unit: ``"channels"`` or ``"units"``, for the caption.
    """
    return value_span(
        maps,
        opts.norm,
        over=f"the layer (all {maps.shape[0]} {unit})",
        percentile=opts.percentile,
        vrange=opts.vrange,
        finite_range=stats.value_range,
        all_finite=stats.all_finite,
    )


def make_legend(opts: RenderOptions, span: ValueSpan, stats: LayerStats) -> Legend | None:
    """The legend for these options: a colorbar of ``span`` (non-``channel`` modes), special swatches."""
    bar = opts.wants_legend
    if not bar and not stats.specials:
        return None
    return Legend.from_span(opts.cmap, span, specials=stats.specials, show_bar=bar)


def warn_if_batched(shape: tuple[int, ...]) -> None:
    """Log a warning when a 4-D activation looks like it still carries a batch axis of 1."""
    if len(shape) == 4 and shape[0] == 1:
        log.warning(
            "activation of shape %s is drawn as Conv3D output (depth 1); if axis 0 is a batch "
            "axis, pass act[0]",
            shape,
        )


def make_grid(
    image: np.ndarray,
    caption: str,
    opts: RenderOptions,
    shape: tuple[int, ...],
    stats: LayerStats,
    shown: np.ndarray,
    n_channels: int,
    kind: str,
    legend: Legend | None = None,
    span: ValueSpan | None = None,
) -> FeatureGrid:
    """Bundle a finished picture with its metadata (``span`` and ``legend`` as drawn)."""
    return FeatureGrid(
        image=image,
        layer=opts.layer,
        shape=tuple(int(s) for s in shape),
        norm=opts.norm,
        cmap=opts.cmap,
        channels=tuple(int(i) for i in shown),
        n_channels=int(n_channels),
        value_range=stats.value_range,
        inactive=tuple(int(i) for i in np.flatnonzero(stats.inactive)),
        n_nan=stats.n_nan,
        n_inf=stats.n_inf,
        caption=caption,
        kind=kind,
        legend=legend,
        span=span,
    )
