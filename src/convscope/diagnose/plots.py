"""Pictures of the diagnose results, drawn with numpy (no matplotlib on the hot path).

* :func:`histogram_picture`: per channel, the histograms of the per-image spatial max in A and B
  overlaid on their shared bins;
* :func:`heatmap_picture`: a layer x layer CKA matrix, one cell per pair with its value written in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convscope.diagnose.shift import LayerShift
from convscope.render.annotate import BG, FG, Legend, compose
from convscope.render.colormap import apply_colormap
from convscope.render.mosaic import tile
from convscope.render.text import LINE_H, draw_text, text_width

COLOR_A = np.array([70, 150, 255], np.uint8)
COLOR_B = np.array([255, 140, 40], np.uint8)
COLOR_BOTH = np.array([190, 120, 170], np.uint8)
PANEL_H = 56
CELL = 40
HEATMAP_CMAP = "magma"


def histogram_panel(counts_a: np.ndarray, counts_b: np.ndarray, height: int = PANEL_H) -> np.ndarray:
    """uint8 ``(height, 2 B, 3)``: two histograms ``(B,)`` as fractions of their totals, overlaid."""
    fa = counts_a / max(int(counts_a.sum()), 1)
    fb = counts_b / max(int(counts_b.sum()), 1)
    top = max(float(fa.max()), float(fb.max()), 1e-12)
    ha, hb = np.repeat(fa / top * height, 2), np.repeat(fb / top * height, 2)
    level = np.arange(height, 0, -1, dtype=np.float64)[:, None] - 0.5  # row y sits at this height
    in_a, in_b = level < ha[None], level < hb[None]
    out = np.empty((height, len(ha), 3), np.uint8)
    out[:] = (20, 20, 20)
    out[in_a & ~in_b] = COLOR_A
    out[in_b & ~in_a] = COLOR_B
    out[in_a & in_b] = COLOR_BOTH
    return out


def histogram_picture(layer: LayerShift, channels: Sequence[int], names: tuple[str, str]) -> np.ndarray:
    """The spatial-max histograms of ``channels`` of one layer (A blue, B orange, both purple)."""
    panels = np.stack([histogram_panel(layer.hist_a[c], layer.hist_b[c]) for c in channels])
    labels = [f"ch {c} shift {layer.shift[c]:.2g} d {layer.effect[c]:+.2g}" for c in channels]
    body = tile(panels, cols=min(4, len(channels)), scale=1, labels=labels)
    fields = [
        f"{layer.key}: per-image spatial max, the {len(channels)} most shifted channels",
        f"blue = A: {names[0]}",
        f"orange = B: {names[1]}",
        "purple = both",
        "x: each channel's range over both sets (shared bins); y: fraction of images",
        "shift = W1 / pooled sd, d = Cohen's d",
    ]
    image, area, _ = compose(body.shape[0], body.shape[1], fields, None)
    area[:] = body
    return image


def heatmap_picture(
    matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, names: tuple[str, str]
) -> np.ndarray:
    """A CKA matrix ``(R, C)`` (values in [0, 1], NaN shown in the NaN color) with its labels and values.

    Args:
        matrix: The matrix.
        rows: Row labels (layers of the first model).
        cols: Column labels (layers of the second model).
        title: First caption field.
        names: How the row and column models are named.
    """
    r, c = matrix.shape
    left = max(text_width(str(x)) for x in rows) + 8
    body_h, body_w = LINE_H + r * CELL, left + c * CELL
    cells = np.repeat(
        np.repeat(apply_colormap(np.asarray(matrix, np.float64), HEATMAP_CMAP), CELL, 0), CELL, 1
    )
    fields = [
        title,
        f"rows: {names[0]}",
        f"columns: {names[1]} ({', '.join(f'{j}: {x}' for j, x in enumerate(cols))})",
    ]
    image, area, _ = compose(body_h, body_w, fields, Legend(HEATMAP_CMAP, 0.0, 1.0))
    area[:] = BG
    area[LINE_H:, left:] = cells
    for j in range(c):
        draw_text(area, str(j), left + j * CELL + CELL // 2, 0, FG, BG, align="center")
    for i, name in enumerate(rows):
        draw_text(
            area,
            str(name),
            left - 4,
            LINE_H + i * CELL + (CELL - LINE_H) // 2,
            FG,
            BG,
            align="right",
            max_width=left - 4,
        )
        for j in range(c):
            value = matrix[i, j]
            cell = area[LINE_H + i * CELL : LINE_H + (i + 1) * CELL, left + j * CELL : left + (j + 1) * CELL]
            bg = tuple(int(v) for v in cell[CELL // 2, CELL // 2])
            fg = (0, 0, 0) if sum(bg) > 380 else (255, 255, 255)
            text = "-" if not np.isfinite(value) else f"{value:.2f}"
            y = (CELL - LINE_H) // 2
            cell[y : y + LINE_H, 2 : CELL - 2] = bg
            draw_text(cell, text, CELL // 2, y, fg, bg, align="center")  # type: ignore[arg-type]
    return image


PALETTE = np.array(
    [
        [70, 150, 255],
        [255, 140, 40],
        [90, 200, 90],
        [230, 70, 70],
        [180, 110, 230],
        [240, 210, 60],
        [60, 210, 210],
        [240, 120, 190],
    ],
    np.uint8,
)
PLOT_H, PLOT_W = 110, 220


def line_panel(series: Sequence[tuple[np.ndarray, np.ndarray]], x_max: float) -> np.ndarray:
    """uint8 ``(PLOT_H, PLOT_W, 3)``: lines ``(x, y)`` with ``y`` in [0, 1] over ``x`` in ``[0, x_max]``
    (NaN points are left out); grid lines at y = 0, 0.5, 1."""
    out = np.empty((PLOT_H, PLOT_W, 3), np.uint8)
    out[:] = (20, 20, 20)
    for level in (0.0, 0.5, 1.0):
        out[round((1 - level) * (PLOT_H - 1))] = (60, 60, 60)
    for j, (xs, ys) in enumerate(series):
        color = PALETTE[j % len(PALETTE)]
        px = np.asarray(xs, np.float64) / max(x_max, 1e-12) * (PLOT_W - 1)
        py = (1 - np.clip(np.asarray(ys, np.float64), 0, 1)) * (PLOT_H - 1)
        for k in range(len(px)):
            if not np.isfinite(py[k]):
                continue
            a = k if k + 1 >= len(px) or not np.isfinite(py[k + 1]) else k + 1
            t = np.linspace(0, 1, 64)
            xx = np.round(px[k] + (px[a] - px[k]) * t).astype(int)
            yy = np.round(py[k] + (py[a] - py[k]) * t).astype(int)
            for dy in (0, 1):
                out[np.clip(yy + dy, 0, PLOT_H - 1), np.clip(xx, 0, PLOT_W - 1)] = color
    return out


def lines_picture(
    panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], x_label: str, title: str
) -> np.ndarray:
    """One panel per metric (``{metric: {series name: (x, y)}}``, y in [0, 1]) side by side, with a legend."""
    names = list(next(iter(panels.values())))
    x_max = max(float(np.max(x)) for p in panels.values() for x, _ in p.values() if len(x))
    tiles = np.stack([line_panel(list(p.values()), x_max) for p in panels.values()])
    body = tile(tiles, cols=len(panels), scale=1, labels=list(panels))
    legend = [
        f"{name}: {'blue orange green red purple yellow cyan pink'.split()[j % 8]}"
        for j, name in enumerate(names)
    ]
    fields = [title, f"x: {x_label} 0..{x_max:g}", "y: 0..1 (grid at 0, 0.5, 1)", *legend]
    image, area, _ = compose(body.shape[0], body.shape[1], fields, None)
    area[:] = body
    return image
