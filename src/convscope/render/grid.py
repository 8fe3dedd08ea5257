"""The main entry: one sample's activation of any layer kind -> a captioned :class:`FeatureGrid`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convscope.errors import RenderError
from convscope.render.annotate import compose
from convscope.render.channels import ChannelPlan, ChannelSpec, parse_channels
from convscope.render.colormap import to_indices
from convscope.render.mosaic import draw_indexed, plan_mosaic
from convscope.render.nonspatial import render_1d, render_3d, render_vector
from convscope.render.normalize import normalize
from convscope.render.prepare import (
    LayerStats,
    RenderOptions,
    as_activation,
    gather_channels,
    layer_span,
    layer_stats,
    make_grid,
    make_legend,
    norm_fields,
    warn_if_batched,
)
from convscope.render.result import FeatureGrid

# A mosaic of full-size maps bigger than this is drawn from block means (and the caption says so).
MAX_PIXELS = 40_000_000
_ACCEPTED = "(C,) vector, (L, C) Conv1D, (H, W, C) Conv2D or (D, H, W, C) Conv3D (channels_last)"


def render_activation(
    act: Any,
    *,
    layer: str = "",
    data_format: str = "channels_last",
    norm: str = "channel",
    cmap: str | None = None,
    channels: ChannelSpec = None,
    cols: int | None = None,
    rows: int | None = None,
    scale: int | None = None,
    labels: bool = True,
    legend: bool = True,
    percentile: Sequence[float] = (1.0, 99.0),
    vrange: Sequence[float] | None = None,
    max_channels: int = 64,
    notes: Sequence[str] = (),
) -> FeatureGrid:
    """Draw one sample's activation of a layer as a captioned picture.

    The kind of picture follows ``act.ndim``: ``(C,)`` -> bar chart (heat grid above 256 units);
    ``(L, C)`` -> one heat strip per channel; ``(H, W, C)`` -> mosaic of channel maps;
    ``(D, H, W, C)`` -> one row of depth slices per channel. The caption states layer, shape,
    normalization, colormap, channels shown, inactive channels (zero on this input), the value range the colors
    stand for (the same numbers as the colorbar: ``grid.span``) and NaN / Inf counts.

    Args:
        act: One sample's activation exactly as the layer outputs it, without the batch axis.
        layer: Layer name for the caption.
        data_format: ``"channels_last"`` (Keras default) or ``"channels_first"`` (``(C, H, W)`` etc.).
        norm: ``channel``, ``layer``, ``symmetric``, ``percentile`` or ``raw`` (see
            :mod:`convscope.render.normalize`). The shared modes take their range over the whole layer,
            also when ``channels`` picks a subset, so every picture of a layer uses one scale.
        cmap: ``gray``, ``viridis``, ``magma``, ``diverging`` (or an alias); ``None`` -> ``diverging``
            for ``symmetric``, else ``gray``.
        channels: Channel spec (see :mod:`convscope.render.channels`). ``None``: the first
            ``max_channels`` channels; for a vector, all units.
        cols: Mosaic columns (2-D maps; ``None`` chooses).
        rows: Mosaic rows (2-D maps; ``None`` chooses).
        scale: Integer upscale of each map (``None``: small maps are enlarged to ~48 px, at most 8x).
            For ``(L, C)`` input this is the horizontal scale of the strips.
        labels: Print channel numbers above the maps.
        legend: Draw a colorbar for ``layer``, ``symmetric`` and ``percentile`` modes (``raw`` always
            has one).
        percentile: ``(low, high)`` clip percentiles for ``norm="percentile"``.
        vrange: ``(lo, hi)`` fixed range for ``norm="raw"``.
        max_channels: Default cap on channels shown when ``channels`` is None.
        notes: Caption fields put after the layer name (e.g. how a token layer became maps).

    Returns:
        A :class:`FeatureGrid`; ``.to_png()``, ``.save(path)`` and ``.to_figure()`` turn it into output.

    Raises:
        RenderError: unsupported shape or dtype.
        OptionError: a malformed option (the message lists what is accepted).
    """
    opts = RenderOptions.build(
        layer=layer,
        data_format=data_format,
        norm=norm,
        cmap=cmap,
        channels=channels,
        cols=cols,
        rows=rows,
        scale=scale,
        labels=bool(labels),
        legend=bool(legend),
        percentile=percentile,
        vrange=vrange,
        max_channels=max_channels,
        notes=notes,
    )
    arr = as_activation(act)
    if arr.ndim > 4:
        raise RenderError(
            f"cannot render an activation of shape {arr.shape}; accepted: {_ACCEPTED}. "
            "Pass one sample (no batch axis)."
        )
    first = opts.data_format == "channels_first"
    channel_axis = 0 if (first or arr.ndim == 1) else -1
    stats = layer_stats(arr, channel_axis)
    maps = arr if channel_axis == 0 else np.moveaxis(arr, -1, 0)  # (C, ...) view, no copy
    if arr.ndim == 1:
        return render_vector(arr, opts, stats)
    plan = _default_plan(opts, maps.shape[0])
    if arr.ndim == 2:
        return render_1d(maps, arr.shape, opts, stats, plan)
    if arr.ndim == 4:
        warn_if_batched(arr.shape)
        return render_3d(maps, arr.shape, opts, stats, plan)
    return render_2d(maps, arr.shape, opts, stats, plan)


def _default_plan(opts: RenderOptions, n_channels: int) -> ChannelPlan:
    if opts.channels is None and n_channels > opts.max_channels:
        return parse_channels(opts.max_channels, n_channels)
    return parse_channels(opts.channels, n_channels)


def render_2d(
    maps: np.ndarray, shape: tuple[int, ...], opts: RenderOptions, stats: LayerStats, plan: ChannelPlan
) -> FeatureGrid:
    """Mosaic of 2-D channel maps.

    Args:
        maps: ``(C, H, W)`` (may be a transposed view of channels-last data).
        shape: The activation's shape as given, for the caption.
        opts: Validated options.
        stats: From :func:`convscope.render.prepare.layer_stats`.
        plan: Which channels.
    """
    idx = plan.resolve(maps)
    selected = gather_channels(maps, idx)  # (K, H, W), one gather copy
    factor = reduction_factor(len(idx), selected.shape[1], selected.shape[2], opts)
    if factor > 1:
        selected = block_mean(selected, factor)
    span = layer_span(maps, opts, stats)
    normed = normalize(selected, opts.norm, span=span)
    indices, codes = to_indices(normed.values)
    k, h, w = selected.shape
    layout = plan_mosaic(k, h, w, rows=opts.rows, cols=opts.cols, scale=opts.scale, labels=opts.labels)
    fields = [opts.layer, *opts.notes, str(tuple(shape)), *norm_fields(opts), plan.describe()]
    if factor > 1:
        fields.append(f"maps shown at 1/{factor} size (mean of {factor}x{factor} blocks)")
    n_inactive = int(stats.inactive.sum())
    if n_inactive:
        fields.append(f"{n_inactive} inactive")
    fields += [span.caption(), *stats.caption_fields()]
    legend = make_legend(opts, span, stats)
    image, body, caption = compose(layout.height, layout.width, fields, legend)
    draw_indexed(
        body,
        indices,
        codes,
        layout,
        opts.cmap,
        labels=[str(i) for i in idx] if opts.labels else None,
        flagged=stats.inactive[idx],
    )
    return make_grid(image, caption, opts, shape, stats, idx, maps.shape[0], "2d", legend, span)


def reduction_factor(k: int, h: int, w: int, opts: RenderOptions) -> int:
    """1, or the integer factor by which maps must shrink to keep the mosaic under :data:`MAX_PIXELS`."""
    layout = plan_mosaic(k, h, w, rows=opts.rows, cols=opts.cols, scale=opts.scale, labels=opts.labels)
    data_pixels = k * (h * layout.scale) * (w * layout.scale)
    if data_pixels <= MAX_PIXELS or layout.scale > 1:
        return 1
    return int(np.ceil(np.sqrt(data_pixels / MAX_PIXELS)))


def block_mean(maps: np.ndarray, factor: int) -> np.ndarray:
    """Shrink maps by averaging ``factor x factor`` blocks.

    Edge rows / columns that do not fill a block are dropped; NaN / Inf in a block carry into its mean,
    so they stay visible.

    Args:
        maps: float32 ``(K, H, W)``.
        factor: Block size.

    Returns:
        float32 ``(K, H // factor, W // factor)`` (``maps`` itself if a side is shorter than ``factor``).
    """
    k, h, w = maps.shape
    hh, ww = max(h // factor, 1) * factor, max(w // factor, 1) * factor
    if hh > h or ww > w:  # a side shorter than the factor: keep it whole
        return maps
    blocks = maps[:, :hh, :ww].reshape(k, hh // factor, factor, ww // factor, factor)
    with np.errstate(invalid="ignore"):
        return blocks.mean(axis=(2, 4), dtype=np.float32)
