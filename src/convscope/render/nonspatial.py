"""Faithful pictures for activations that are not 2-D maps, so no layer crashes the renderer.

* ``(C,)`` vector (Dense, Flatten, global pooling): up to :data:`MAX_BARS` units, a bar chart drawn in
  numpy (bars up / down from a zero line, height = raw value on one shared scale, red = positive,
  blue = negative) over a heat strip that shows the normalized value through the colormap. More units:
  a heat grid, the vector wrapped into rows, each row labelled with the index of its first unit.
* ``(L, C)`` Conv1D: one heat strip per channel (rows = channels, columns = positions).
* ``(D, H, W, C)`` Conv3D: per channel a row of its ``D`` depth slices, normalized over the volume.

All go through the same :func:`~convscope.render.normalize.normalize` and colormap code as 2-D maps.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from convscope.render.annotate import BG, PAD, compose, fmt
from convscope.render.channels import ChannelPlan, parse_channels
from convscope.render.colormap import NAN_COLOR, NEGINF_COLOR, POSINF_COLOR, colorize, to_indices
from convscope.render.mosaic import INACTIVE_COLOR, LABEL_COLOR, draw_indexed, plan_mosaic
from convscope.render.normalize import normalize
from convscope.render.prepare import (
    LayerStats,
    RenderOptions,
    gather_channels,
    layer_span,
    make_grid,
    make_legend,
    norm_fields,
)
from convscope.render.result import FeatureGrid
from convscope.render.text import LABEL_H, draw_text, text_width

MAX_BARS: Final = 256
PLOT_H: Final = 120
STRIP_H: Final = 10
TARGET_W: Final = 480  # bar charts, heat grids and strips aim for about this many pixels of data
POS_COLOR: Final = (214, 96, 77)
NEG_COLOR: Final = (67, 147, 195)
AXIS_COLOR: Final = (150, 150, 150)


def render_vector(values: np.ndarray, opts: RenderOptions, stats: LayerStats) -> FeatureGrid:
    """Bar chart (<= 256 units shown) or heat grid of a ``(C,)`` vector; ``channels`` picks units."""
    n = values.shape[0]
    plan = parse_channels(opts.channels, n)
    idx = plan.resolve(values[:, None])
    shown = np.asarray(values[idx], dtype=np.float64)
    span = layer_span(values, opts, stats, "units")
    normed = normalize(shown[None, :], opts.norm, span=span)
    indices, codes = to_indices(normed.values[0])
    fields = [opts.layer, *opts.notes, str(values.shape), *norm_fields(opts), plan.describe("units")]
    n_zero = int(stats.inactive.sum())
    if n_zero:
        fields.append(f"{n_zero} zero")
    fields += [span.caption(), *stats.caption_fields()]
    if len(idx) <= MAX_BARS:
        fields.append("bars = value, strip = colormap")
        body = _bars(shown, colorize(indices, codes, opts.cmap), idx)
    else:
        row_len, labels = _wrap_width(len(idx)), plan.kind in ("all", "first")
        fields.append(f"{row_len} units per row" + ("" if labels else ", in selection order"))
        body = _heat_grid(indices, codes, opts.cmap, row_len, idx if labels else None)
    legend = make_legend(opts, span, stats)
    image, dst, caption = compose(body.shape[0], body.shape[1], fields, legend)
    dst[...] = body
    return make_grid(image, caption, opts, values.shape, stats, idx, n, "vector", legend, span)


def _bars(values: np.ndarray, strip_colors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Draw the bar chart body.

    Args:
        values: float64 ``(K,)`` raw values.
        strip_colors: uint8 ``(K, 3)`` colormap colors of the normalized values.
        idx: ``(K,)`` unit indices, for the x labels.

    Returns:
        uint8 ``(H, W, 3)``.
    """
    k = len(values)
    pitch = int(np.clip(TARGET_W // k, 2, 24))
    bar_w = pitch - 1 if pitch >= 4 else pitch
    finite = np.isfinite(values)
    pos = max(float(values[finite].max(initial=0.0)), 0.0)
    neg = max(-float(values[finite].min(initial=0.0)), 0.0)
    px = PLOT_H / (pos + neg) if pos + neg > 0 else 0.0
    zero = round(pos * px) if pos + neg > 0 else PLOT_H // 2
    size = np.where(finite, np.round(np.abs(np.where(finite, values, 0.0)) * px), 0).astype(np.intp)
    top = np.where(values > 0, zero - size, zero + 1)
    bottom = np.where(values > 0, zero, zero + 1 + size)
    top[~finite], bottom[~finite] = 0, PLOT_H + 1
    colors = np.where((values > 0)[:, None], POS_COLOR, NEG_COLOR).astype(np.uint8)
    colors[np.isnan(values)] = NAN_COLOR
    colors[values == np.inf] = POSINF_COLOR
    colors[values == -np.inf] = NEGINF_COLOR

    left = max(text_width(fmt(v)) for v in (pos, -neg, 0.0)) + 4
    plot_top = PAD + 2
    strip_top = plot_top + PLOT_H + 1 + 3
    height = strip_top + STRIP_H + 2 + LABEL_H + PAD
    width = left + k * pitch + PAD
    out = np.empty((height, width, 3), np.uint8)
    out[:] = BG
    rows = np.arange(PLOT_H + 1)[:, None]
    inside = (rows >= top) & (rows < bottom)  # (PLOT_H + 1, K)
    plot = out[plot_top : plot_top + PLOT_H + 1, left : left + k * pitch].reshape(PLOT_H + 1, k, pitch, 3)
    plot[:, :, :bar_w] = np.where(inside[..., None], colors[None], np.array(BG, np.uint8))[:, :, None, :]
    line = plot[zero]
    line[~inside[zero]] = AXIS_COLOR  # the zero line, interrupted only by NaN / Inf bars
    strip = out[strip_top : strip_top + STRIP_H, left : left + k * pitch].reshape(STRIP_H, k, pitch, 3)
    strip[:, :, :bar_w] = strip_colors[None, :, None, :]

    for value, y in ((pos, 0), (-neg, PLOT_H), (0.0, zero)):
        if value or y == zero:
            draw_text(
                out,
                fmt(value),
                left - 3,
                plot_top + y - LABEL_H // 2,
                AXIS_COLOR,
                BG,
                height=LABEL_H,
                align="right",
            )
    every = math.ceil((max(text_width(str(i)) for i in idx) + 2) / pitch)
    for j in range(0, k, every):
        draw_text(
            out,
            str(int(idx[j])),
            left + j * pitch + bar_w // 2,
            strip_top + STRIP_H + 2,
            LABEL_COLOR,
            BG,
            height=LABEL_H,
            align="center",
        )
    return out


def _wrap_width(k: int) -> int:
    """Units per row of a heat grid: about twice as wide as tall, a multiple of 8."""
    return min(k, int(math.ceil(math.sqrt(2 * k) / 8) * 8))


def _heat_grid(
    indices: np.ndarray, codes: np.ndarray | None, cmap: str, row_len: int, idx: np.ndarray | None
) -> np.ndarray:
    """A long vector wrapped into rows of ``row_len`` cells; rows labelled by first unit (or rank)."""
    k = len(indices)
    cell = int(np.clip(TARGET_W // row_len, 2, 8))
    layout = plan_mosaic(k, 1, 1, cols=row_len, scale=cell, sep=0)
    grid = np.empty((layout.height, layout.width, 3), np.uint8)
    draw_indexed(
        grid, indices.reshape(k, 1, 1), None if codes is None else codes.reshape(k, 1, 1), layout, cmap
    )
    starts = [int(idx[r * row_len]) if idx is not None else r * row_len for r in range(layout.rows)]
    names = [str(s) if idx is not None else f"#{s}" for s in starts]
    left = max(text_width(t) for t in names) + 4
    out = np.empty((layout.height + 2 * PAD, left + layout.width + PAD, 3), np.uint8)
    out[:] = BG
    out[PAD : PAD + layout.height, left : left + layout.width] = grid
    every = math.ceil((LABEL_H + 1) / cell)
    for r in range(0, layout.rows, every):
        draw_text(out, names[r], left - 3, PAD + r * cell, LABEL_COLOR, BG, height=LABEL_H, align="right")
    return out


def render_1d(
    maps: np.ndarray, shape: tuple[int, ...], opts: RenderOptions, stats: LayerStats, plan: ChannelPlan
) -> FeatureGrid:
    """One heat strip per channel of a ``(C, L)`` activation (rows = channels, columns = positions)."""
    idx = plan.resolve(maps)
    selected = gather_channels(maps, idx)  # (K, L)
    span = layer_span(maps, opts, stats)
    normed = normalize(selected, opts.norm, span=span)
    indices, codes = to_indices(normed.values)
    k, length = selected.shape
    sx = opts.scale or int(np.clip(math.ceil(256 / length), 1, 8))
    rh = 10 if k <= 24 else max(2, 240 // k)
    # each channel is a 1 x L tile, stretched to rh x (L * sx) before placement (1-D data is small)
    tiles = np.repeat(np.repeat(indices[:, None, :], rh, axis=1), sx, axis=2)
    tile_codes = None if codes is None else np.repeat(np.repeat(codes[:, None, :], rh, axis=1), sx, axis=2)
    layout = plan_mosaic(k, rh, length * sx, cols=1, scale=1, sep=1 if rh >= 4 else 0)
    strips = np.empty((layout.height, layout.width, 3), np.uint8)
    draw_indexed(strips, tiles, tile_codes, layout, opts.cmap, flagged=stats.inactive[idx])

    left = text_width(str(int(idx.max()))) + 4
    height = layout.height + 2 + LABEL_H
    fields = [opts.layer, *opts.notes, str(tuple(shape)), *norm_fields(opts), plan.describe()]
    if stats.inactive.any():
        fields.append(f"{int(stats.inactive.sum())} inactive")
    fields += [
        span.caption(),
        *stats.caption_fields(),
        f"rows = channels, columns = positions 0..{length - 1}",
    ]
    legend = make_legend(opts, span, stats)
    image, dst, caption = compose(height, left + layout.width + PAD, fields, legend)
    dst[:] = BG
    dst[: layout.height, left : left + layout.width] = strips
    every = math.ceil(LABEL_H / (rh + layout.sep))
    for r in range(0, k, every):
        y = layout.tile_origin(r)[0] + (rh - LABEL_H) // 2
        color = INACTIVE_COLOR if stats.inactive[idx[r]] else LABEL_COLOR
        draw_text(dst, str(int(idx[r])), left - 3, max(y, 0), color, BG, height=LABEL_H, align="right")
    draw_text(dst, "0", left, layout.height + 1, LABEL_COLOR, BG, height=LABEL_H)
    draw_text(
        dst,
        str(length - 1),
        left + layout.width,
        layout.height + 1,
        LABEL_COLOR,
        BG,
        height=LABEL_H,
        align="right",
    )
    return make_grid(image, caption, opts, shape, stats, idx, maps.shape[0], "1d", legend, span)


def render_3d(
    maps: np.ndarray, shape: tuple[int, ...], opts: RenderOptions, stats: LayerStats, plan: ChannelPlan
) -> FeatureGrid:
    """Per channel of a ``(C, D, H, W)`` activation, one row of its ``D`` depth slices.

    ``rows`` / ``cols`` options are ignored: rows are channels and columns are depth slices.
    """
    idx = plan.resolve(maps)
    selected = gather_channels(maps, idx)  # (K, D, H, W)
    span = layer_span(maps, opts, stats)
    normed = normalize(selected, opts.norm, span=span)
    indices, codes = to_indices(normed.values)
    k, depth, h, w = selected.shape
    layout = plan_mosaic(k * depth, h, w, rows=k, cols=depth, scale=opts.scale, labels=opts.labels)
    fields = [opts.layer, *opts.notes, str(tuple(shape)), *norm_fields(opts), plan.describe()]
    if stats.inactive.any():
        fields.append(f"{int(stats.inactive.sum())} inactive")
    fields += [
        span.caption(),
        *stats.caption_fields(),
        f"rows = channels, columns = depth slices 0..{depth - 1}",
    ]
    legend = make_legend(opts, span, stats)
    image, dst, caption = compose(layout.height, layout.width, fields, legend)
    labels = [f"{c} d{z}" for c in idx for z in range(depth)] if opts.labels else None
    draw_indexed(
        dst,
        indices.reshape(k * depth, h, w),
        None if codes is None else codes.reshape(k * depth, h, w),
        layout,
        opts.cmap,
        labels=labels,
        flagged=np.repeat(stats.inactive[idx], depth),
    )
    return make_grid(image, caption, opts, shape, stats, idx, maps.shape[0], "3d", legend, span)
