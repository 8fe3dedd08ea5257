"""Pure functions behind the explorer's JSON: where each channel sits in a grid picture, the statistics
of one channel, and the top-k prediction. No Keras, no web framework: numpy and convscope.render only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from convscope.render import FeatureGrid, auto_grid, auto_scale, parse_channels, plan_mosaic
from convscope.render.annotate import LEGEND_H, Legend
from convscope.render.colormap import get_lut
from convscope.render.grid import reduction_factor
from convscope.render.prepare import RenderOptions
from convscope.render.text import LABEL_H


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def mosaic_shape(
    shape: Sequence[int],
    channels: str | None,
    aspect: float,
    max_channels: int = 64,
    data_format: str = "channels_last",
    labels: bool = True,
) -> tuple[int, int] | None:
    """``(rows, cols)`` giving a 2-D activation's mosaic the width/height ``aspect`` of the screen area.

    Counts the channels the spec shows (as :func:`~convscope.render.render_activation` does: at most
    ``max_channels`` by default) and sizes cells like the renderer (upscale, label strip if ``labels``,
    separator). Returns ``None`` for activations that are not ``(H, W, C)`` maps.
    """
    if len(shape) != 3:
        return None
    h, w, c = (shape[1], shape[2], shape[0]) if data_format == "channels_first" else shape
    spec: str | int | None = (
        channels if channels is not None else (max_channels if c > max_channels else None)
    )
    plan = parse_channels(spec, c)
    k = {"all": c, "first": plan.count, "top": plan.count}.get(plan.kind, len(plan.indices))
    s = auto_scale(h, w)
    return auto_grid(k, (LABEL_H if labels else 0) + h * s + 1, w * s + 1, aspect)


def grid_geometry(
    grid: FeatureGrid,
    norm: str,
    data_format: str = "channels_last",
    rows: int | None = None,
    cols: int | None = None,
    labels: bool = True,
) -> dict[str, Any] | None:
    """Where each channel's tile lies in a 2-D mosaic picture, so a click can be mapped to a channel.

    The layout is recomputed with the same public planning functions the renderer uses
    (:func:`~convscope.render.plan_mosaic`, :func:`~convscope.render.grid.reduction_factor`) for the
    ``rows``/``cols`` it was given and the default scale, with channel labels (or without, as it was
    drawn: ``labels``); the caption height is what remains above the mosaic.

    Returns:
        ``{"top", "left", "rows", "cols", "cell_h", "cell_w", "sep", "width", "height"}`` in picture pixels,
        or ``None`` when the picture is not a 2-D mosaic or the arithmetic does not fit the picture.
    """
    if grid.kind != "2d" or len(grid.shape) != 3 or not grid.channels:
        return None
    h, w = (grid.shape[1], grid.shape[2]) if data_format == "channels_first" else grid.shape[:2]
    k = len(grid.channels)
    opts = RenderOptions.build(norm=norm, labels=labels, rows=rows, cols=cols)
    factor = reduction_factor(k, h, w, opts)
    if factor > 1 and h >= factor and w >= factor:
        h, w = h // factor, w // factor
    layout = plan_mosaic(k, h, w, rows=rows, cols=cols, labels=labels)
    legend = opts.wants_legend or grid.n_nan > 0 or grid.n_inf > 0
    height, width = grid.image.shape[:2]
    top = height - layout.height - (LEGEND_H if legend else 0)
    if top < 0 or layout.width > width:
        return None
    return {
        "top": top,
        "left": 0,
        "rows": layout.rows,
        "cols": layout.cols,
        "cell_h": layout.cell_h,
        "cell_w": layout.cell_w,
        "sep": layout.sep,
        "width": width,
        "height": height,
    }


def channel_at(geometry: dict[str, Any], channels: Sequence[int], y: float, x: float) -> int | None:
    """The channel whose cell contains picture pixel ``(y, x)``, or ``None`` (the same rule as the page)."""
    row = math.floor((y - geometry["top"] - geometry["sep"]) / geometry["cell_h"])
    col = math.floor((x - geometry["left"] - geometry["sep"]) / geometry["cell_w"])
    if not (0 <= row < geometry["rows"] and 0 <= col < geometry["cols"]):
        return None
    i = row * geometry["cols"] + col
    return int(channels[i]) if i < len(channels) else None


def grid_meta(
    grid: FeatureGrid,
    key: str,
    norm: str,
    data_format: str = "channels_last",
    layout: tuple[int, int] | None = None,
    labels: bool = True,
) -> dict[str, Any]:
    """JSON facts of a rendered grid: what is shown and where (see :func:`grid_geometry`; ``labels`` as
    the grid was drawn)."""
    rows, cols = layout if layout else (None, None)
    lo, hi = grid.value_range
    return {
        "layer": key,
        "shape": list(grid.shape),
        "kind": grid.kind,
        "norm": grid.norm,
        "cmap": grid.cmap,
        "channels": list(grid.channels),
        "n_channels": grid.n_channels,
        "value_range": [_finite(lo), _finite(hi)],
        "inactive": list(grid.inactive),
        "n_nan": grid.n_nan,
        "n_inf": grid.n_inf,
        "caption": grid.caption,
        "width": int(grid.image.shape[1]),
        "height": int(grid.image.shape[0]),
        "geometry": grid_geometry(grid, norm, data_format, rows, cols, labels),
    }


def legend_meta(grid: FeatureGrid, stops: int = 17) -> dict[str, Any] | None:
    """A picture's colorbar as JSON, for a page to draw as CSS and text.

    The bar is the grid's own :attr:`~convscope.render.FeatureGrid.legend`; an overlay drawn without its
    frame (``caption=False``) gets the bar of the range its colors stand for (its ``span``).

    Returns:
        ``None`` without a colorbar, else ``{"cmap", "lo", "hi", "symmetric", "colors"}`` where ``colors``
        are ``stops`` evenly spaced ``#rrggbb`` samples of the colormap from ``lo`` to ``hi``.
    """
    legend = grid.legend
    if legend is None and grid.kind == "overlay" and grid.span is not None:
        legend = Legend.from_span(grid.cmap, grid.span)
    if legend is None or not legend.show_bar:
        return None
    lut = get_lut(legend.cmap)
    picks = np.round(np.linspace(0, len(lut) - 1, stops)).astype(np.intp)
    return {
        "cmap": legend.cmap,
        "lo": _finite(legend.lo),
        "hi": _finite(legend.hi),
        "symmetric": legend.symmetric,
        "colors": ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in lut[i])) for i in picks],
    }


def bare_mosaic(grid: FeatureGrid, meta: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """Cut a 2-D grid drawn without channel labels down to its mosaic, for a page that writes the words.

    The caption strip and the colorbar are cut away; their content travels in the JSON: ``caption``,
    ``channels``, ``dead`` and ``legend`` (see :func:`legend_meta`), with ``geometry.top == 0`` and
    ``width``/``height`` those of the cut picture. Pictures that are not mosaics (``geometry`` is
    ``None``: vectors, strips, volumes) are returned whole, with ``legend`` ``None``.

    Args:
        grid: A grid drawn with ``labels=False``.
        meta: Its :func:`grid_meta` computed with ``labels=False``.

    Returns:
        ``(uint8 (h, w, 3) picture, meta with "labels": False)``.
    """
    geo = meta["geometry"]
    if geo is None:
        return np.asarray(grid.image), {**meta, "labels": True, "legend": None}
    height = geo["sep"] + geo["rows"] * geo["cell_h"]
    width = geo["sep"] + geo["cols"] * geo["cell_w"]
    body = np.asarray(grid.image)[geo["top"] : geo["top"] + height, geo["left"] : geo["left"] + width]
    geometry = {**geo, "top": 0, "left": 0, "width": width, "height": height}
    return body, {
        **meta,
        "geometry": geometry,
        "width": width,
        "height": height,
        "labels": False,
        "legend": legend_meta(grid),
    }


def channel_stats(
    act_hwc: np.ndarray,
    channel: int,
    grid: tuple[tuple[float, ...], tuple[float, ...]] | None,
    rf_size: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Statistics of one channel of a ``(h, w, C)`` activation, and where its peak looks in the input.

    Returns:
        ``min``, ``max``, ``mean``, ``std``, ``positive`` (fraction > 0), ``zero`` (fraction == 0), NaN/Inf
        counts, ``argmax`` ``[y, x]`` in map positions and, when the receptive-field grid is known,
        ``peak_center`` (input pixel the peak's field is centred on) and ``rf_size``.
    """
    values = np.asarray(act_hwc[:, :, channel], dtype=np.float64)
    finite = np.isfinite(values)
    good = values[finite]
    stats: dict[str, Any] = {
        "channel": int(channel),
        "map_shape": list(values.shape),
        "n_nan": int(np.isnan(values).sum()),
        "n_inf": int(np.isinf(values).sum()),
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "positive": None,
        "zero": None,
        "argmax": None,
    }
    if good.size:
        stats.update(
            min=float(good.min()),
            max=float(good.max()),
            mean=float(good.mean()),
            std=float(good.std()),
            positive=float((good > 0).mean()),
            zero=float((good == 0).mean()),
        )
        masked = np.where(finite, values, -np.inf)
        y, x = np.unravel_index(int(np.argmax(masked)), values.shape)
        stats["argmax"] = [int(y), int(x)]
        if grid is not None:
            (sy, sx), (jy, jx) = grid
            stats["peak_center"] = [float(sy + int(y) * jy), float(sx + int(x) * jx)]
    if rf_size is not None:
        stats["rf_size"] = [float(v) if not float(v).is_integer() else int(v) for v in rf_size]
    return stats


def top_predictions(
    output: np.ndarray, class_names: Sequence[str] | None = None, k: int = 5
) -> dict[str, Any]:
    """The top-``k`` classes of one sample's model output, as JSON for the page.

    The numbers and names come from :func:`convscope.models.predictions.top_classes`, the one rule every
    surface uses: a distribution is shown as probabilities, any other vector as raw scores.

    Returns:
        ``{"available": False, "reason": ...}`` when the output is neither a class vector nor a per-pixel
        class output, else ``{"available": True, "kind": "probability" | "score" | "pixels", "headline":
        ..., "top": [...]}`` with ``{"index", "label", "name", "score", "text"}`` per class (for
        ``pixels`` the score is the fraction of pixels the class wins).
    """
    from convscope.models.predictions import top_classes

    out = np.asarray(output, dtype=np.float64)
    pred = top_classes(out, class_names, k)
    if pred.kind == "none":
        return {
            "available": False,
            "reason": f"the model's output has shape {list(np.shape(output))}, not a class vector "
            "or per-pixel classes",
        }
    if not np.all(np.isfinite(out)):
        return {"available": False, "reason": "the model's output holds NaN or Inf"}
    top = [
        {"index": s.index, "label": s.label(), "name": s.name, "score": s.value, "text": pred.format_value(s)}
        for s in pred.top
    ]
    return {
        "available": True,
        "kind": pred.kind,
        "n_classes": int(out.shape[-1]) if out.ndim else 1,
        "headline": pred.headline(),
        "top": top,
    }
