"""Tile many equally sized maps into one picture, built by numpy slicing into one preallocated array.

Geometry (all in pixels; ``s`` = integer upscale factor, ``L`` = label strip height or 0)::

    cell_h = L + tile_h * s + sep          cell_w = tile_w * s + sep
    height = sep + rows * cell_h           width  = sep + cols * cell_w

Each cell is a label strip (if labels are drawn), the upscaled tile below it, and a separator line below
and to the right; one more separator runs along the top and left edges. Labels live in their strip and
never cover data. A flagged (inactive: zero everywhere on this image) tile gets a red frame drawn in the
separator ring around its cell (on the tile's own edge pixels only when ``sep == 0``) and a red label with
the suffix ``inactive`` when it fits the tile's width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from convscope.errors import OptionError, RenderError
from convscope.render.checks import is_int, positive_int
from convscope.render.colormap import colorize
from convscope.render.text import LABEL_H, Color, draw_text, text_width

SEP_COLOR: Final = (40, 40, 40)
LABEL_COLOR: Final = (200, 200, 200)
INACTIVE_COLOR: Final = (255, 64, 64)
MIN_TILE_PX: Final = 48  # small maps are upscaled until a tile is at least this big ...
MAX_AUTO_SCALE: Final = 8  # ... by an integer factor of at most this
MAX_CANVAS_PIXELS: Final = 150_000_000  # no rows / cols / scale may ask for a larger picture
TARGET_ASPECT: Final = math.sqrt(2)  # preferred mosaic width / height
_EMPTY_PENALTY: Final = 6.0


@dataclass(frozen=True)
class MosaicLayout:
    """Where every tile of a mosaic goes (see the module docstring for the formulas)."""

    n_tiles: int
    rows: int
    cols: int
    tile_h: int
    tile_w: int
    scale: int
    sep: int
    label_h: int

    @property
    def cell_h(self) -> int:
        return self.label_h + self.tile_h * self.scale + self.sep

    @property
    def cell_w(self) -> int:
        return self.tile_w * self.scale + self.sep

    @property
    def height(self) -> int:
        return self.sep + self.rows * self.cell_h

    @property
    def width(self) -> int:
        return self.sep + self.cols * self.cell_w

    def tile_origin(self, i: int) -> tuple[int, int]:
        """Top-left ``(y, x)`` of the data pixels of tile ``i`` (row-major order)."""
        r, c = divmod(i, self.cols)
        return self.sep + r * self.cell_h + self.label_h, self.sep + c * self.cell_w


def auto_grid(n: int, tile_h: int = 1, tile_w: int = 1, aspect: float = TARGET_ASPECT) -> tuple[int, int]:
    """Choose ``(rows, cols)`` for ``n`` tiles: few empty cells, overall aspect near ``aspect``.

    E.g. 32 square tiles -> (4, 8), 64 -> (8, 8), 10 -> (2, 5).
    """
    best: tuple[float, int, int] | None = None
    for rows in range(1, n + 1):
        cols = math.ceil(n / rows)
        if (rows - 1) * cols >= n:  # a whole row would be empty
            continue
        ratio = (cols * tile_w) / (rows * tile_h)
        score = abs(math.log(ratio / aspect)) + _EMPTY_PENALTY * (rows * cols - n) / n
        if best is None or score < best[0] - 1e-9:
            best = (score, rows, cols)
    assert best is not None
    return best[1], best[2]


def auto_scale(tile_h: int, tile_w: int) -> int:
    """Integer upscale so the larger side of a tile reaches :data:`MIN_TILE_PX` (at most 8x)."""
    side = max(tile_h, tile_w, 1)
    return int(min(MAX_AUTO_SCALE, max(1, math.ceil(MIN_TILE_PX / side))))


def plan_mosaic(
    n_tiles: int,
    tile_h: int,
    tile_w: int,
    *,
    rows: int | None = None,
    cols: int | None = None,
    scale: int | None = None,
    sep: int = 1,
    labels: bool = False,
) -> MosaicLayout:
    """Work out the grid, upscale and label strip for ``n_tiles`` tiles of ``tile_h x tile_w``.

    Raises:
        OptionError: non-positive ``rows`` / ``cols`` / ``scale``, negative ``sep``, or
            ``rows * cols < n_tiles``.
    """
    if n_tiles < 1:
        raise RenderError(f"nothing to tile: n_tiles={n_tiles}")
    if not is_int(sep) or sep < 0:
        raise OptionError(f"sep must be an integer >= 0, got {sep!r}")
    if rows is not None and cols is not None:
        rows, cols = positive_int("rows", rows), positive_int("cols", cols)
        if rows * cols < n_tiles:
            raise OptionError(f"rows={rows} x cols={cols} = {rows * cols} cells cannot hold {n_tiles} tiles")
    elif cols is not None:
        cols = positive_int("cols", cols)
        rows = math.ceil(n_tiles / cols)
    elif rows is not None:
        rows = positive_int("rows", rows)
        cols = math.ceil(n_tiles / rows)
    else:
        rows, cols = auto_grid(n_tiles, tile_h, tile_w)  # the upscale is uniform: aspect unchanged
    scale = auto_scale(tile_h, tile_w) if scale is None else positive_int("scale", scale)
    layout = MosaicLayout(n_tiles, rows, cols, tile_h, tile_w, scale, int(sep), LABEL_H if labels else 0)
    if layout.height * layout.width > MAX_CANVAS_PIXELS:  # checked before any pixel is allocated
        raise OptionError(
            f"rows={rows}, cols={cols}, scale={scale} for {n_tiles} tiles of {tile_h}x{tile_w} make a picture of "
            f"{layout.width:,}x{layout.height:,} pixels, over the limit of {MAX_CANVAS_PIXELS:,}; use a smaller "
            "scale or fewer rows/columns"
        )
    return layout


def place_tiles(dst: np.ndarray, tiles: np.ndarray, layout: MosaicLayout) -> None:
    """Write upscaled ``tiles`` into their cells of ``dst`` with one or two numpy assignments.

    Only the data pixels are written; separators and label strips are left untouched.

    Args:
        dst: ``(layout.height, layout.width, *E)`` array (``E`` = e.g. ``(3,)`` for RGB or ``()``).
        tiles: ``(K, tile_h, tile_w, *E)`` with ``K == layout.n_tiles``.
        layout: From :func:`plan_mosaic`.
    """
    lay, s = layout, layout.scale
    h, w, k = lay.tile_h, lay.tile_w, lay.n_tiles
    extra = tiles.shape[3:]
    cells = dst[lay.sep :, lay.sep :].reshape(lay.rows, lay.cell_h, lay.cols, lay.cell_w, *extra)
    data = cells[:, lay.label_h : lay.label_h + h * s, :, : w * s]
    grid = data.reshape(lay.rows, h, s, lay.cols, w, s, *extra)  # splitting axes: always a view
    full, rem = divmod(k, lay.cols)
    pad = (slice(None),) * len(extra)
    if full:
        block = tiles[: full * lay.cols].reshape(full, lay.cols, h, w, *extra).swapaxes(1, 2)
        grid[:full] = block[(slice(None), slice(None), None, slice(None), slice(None), None, *pad)]
    if rem:
        last = tiles[full * lay.cols :].swapaxes(0, 1)  # (h, rem, w, *E)
        grid[full, :, :, :rem] = last[(slice(None), None, slice(None), slice(None), None, *pad)]


def decorate(
    dst: np.ndarray,
    layout: MosaicLayout,
    *,
    labels: Sequence[str] | None = None,
    flagged: np.ndarray | Sequence[bool] | None = None,
    sep_color: Color = SEP_COLOR,
) -> None:
    """Paint separators, label strips, empty cells, labels and inactive-tile frames onto an RGB mosaic.

    Args:
        dst: uint8 ``(layout.height, layout.width, 3)``, data pixels already placed.
        layout: From :func:`plan_mosaic`.
        labels: One string per tile, drawn in the strip above it (needs ``layout.label_h > 0``).
        flagged: bool per tile (inactive channels); flagged tiles get a red frame and a red label, with
            ``" inactive"`` after it when that fits the tile.
        sep_color: Color of separators, label strips and empty cells.
    """
    lay = layout
    th, tw = lay.tile_h * lay.scale, lay.tile_w * lay.scale
    dst[: lay.sep] = sep_color
    dst[:, : lay.sep] = sep_color
    cells = dst[lay.sep :, lay.sep :].reshape(lay.rows, lay.cell_h, lay.cols, lay.cell_w, 3)
    cells[:, : lay.label_h] = sep_color
    cells[:, lay.label_h + th :] = sep_color
    cells[:, :, :, tw:] = sep_color
    full, rem = divmod(lay.n_tiles, lay.cols)
    if full < lay.rows:
        cells[full, :, rem:] = sep_color
    flags = np.zeros(lay.n_tiles, bool) if flagged is None else np.asarray(flagged, bool).reshape(-1)
    if len(flags) != lay.n_tiles:
        raise RenderError(f"flagged has {len(flags)} entries for {lay.n_tiles} tiles")
    if labels is not None and lay.label_h:
        if len(labels) != lay.n_tiles:
            raise RenderError(f"got {len(labels)} labels for {lay.n_tiles} tiles")
        for i, text in enumerate(labels):
            y, x = lay.tile_origin(i)
            inactive = bool(flags[i])
            label = f"{text} inactive" if inactive and text_width(f"{text} inactive") <= tw else str(text)
            draw_text(
                dst,
                label,
                x,
                y - lay.label_h,
                INACTIVE_COLOR if inactive else LABEL_COLOR,
                sep_color,
                height=lay.label_h,
                max_width=tw,
            )
    for tile in np.flatnonzero(flags):
        _frame(dst, lay, int(tile), th, tw)


def _frame(dst: np.ndarray, lay: MosaicLayout, i: int, th: int, tw: int) -> None:
    """A 1-px red rectangle around cell ``i`` (in the separator ring when ``sep >= 1``)."""
    y, x = lay.tile_origin(i)
    pad = 1 if lay.sep else 0
    y0, x0 = y - lay.label_h - pad, x - pad
    y1, x1 = y + th - 1 + pad, x + tw - 1 + pad
    dst[y0, x0 : x1 + 1] = INACTIVE_COLOR
    dst[y1, x0 : x1 + 1] = INACTIVE_COLOR
    dst[y0 : y1 + 1, x0] = INACTIVE_COLOR
    dst[y0 : y1 + 1, x1] = INACTIVE_COLOR


def draw_indexed(
    dst: np.ndarray,
    indices: np.ndarray,
    codes: np.ndarray | None,
    layout: MosaicLayout,
    cmap: str,
    *,
    labels: Sequence[str] | None = None,
    flagged: np.ndarray | None = None,
) -> None:
    """The hot path: tile LUT indices (1 byte per pixel), colorize the whole mosaic once, decorate.

    Args:
        dst: uint8 ``(layout.height, layout.width, 3)`` to draw into (fastest when C-contiguous).
        indices: uint8 ``(K, h, w)`` colormap indices (from :func:`convscope.render.colormap.to_indices`).
        codes: ``None`` or uint8 ``(K, h, w)`` NaN / Inf codes.
        layout: From :func:`plan_mosaic`.
        cmap: Colormap name.
        labels: Per-tile labels (needs a layout with labels).
        flagged: bool ``(K,)`` inactive tiles.
    """
    canvas = np.empty((layout.height, layout.width), np.uint8)
    place_tiles(canvas, indices, layout)
    code_canvas = None
    if codes is not None:
        code_canvas = np.zeros_like(canvas)
        place_tiles(code_canvas, codes, layout)
    colorize(canvas, code_canvas, cmap, out=dst)
    decorate(dst, layout, labels=labels, flagged=flagged)


def tile(
    rgb_tiles: np.ndarray,
    *,
    cols: int | None = None,
    rows: int | None = None,
    scale: int | None = None,
    sep: int = 1,
    sep_color: Color = SEP_COLOR,
    labels: Sequence[str] | None = None,
    flagged: np.ndarray | Sequence[bool] | None = None,
) -> np.ndarray:
    """Arrange colored tiles in a grid with separators, optional labels and inactive-tile markers.

    Args:
        rgb_tiles: uint8 ``(K, h, w, 3)`` (or ``(K, h, w)`` gray).
        cols: Columns; ``None`` chooses (see :func:`auto_grid`).
        rows: Rows; ``None`` chooses. Both given: ``rows * cols`` must be ``>= K``.
        scale: Integer nearest-neighbour upscale; ``None`` = :func:`auto_scale`.
        sep: Separator width in pixels (also the outer border).
        sep_color: Separator / background color.
        labels: ``K`` strings drawn in a strip above the tiles; ``None`` = no strip.
        flagged: bool ``(K,)``: tiles to mark as inactive.

    Returns:
        uint8 ``(H, W, 3)`` with ``H, W`` as in the module docstring.

    Raises:
        RenderError: tiles are not uint8 ``(K, h, w[, 3])``; label / flag counts differ from ``K``.
        OptionError: bad ``rows`` / ``cols`` / ``scale`` / ``sep``.
    """
    tiles = np.asarray(rgb_tiles)
    if tiles.dtype != np.uint8 or tiles.ndim not in (3, 4) or (tiles.ndim == 4 and tiles.shape[3] != 3):
        raise RenderError(f"tiles must be uint8 (K, h, w, 3) or (K, h, w), got {tiles.dtype} {tiles.shape}")
    if tiles.ndim == 3:
        tiles = np.repeat(tiles[..., None], 3, axis=3)
    k, h, w = tiles.shape[:3]
    layout = plan_mosaic(k, h, w, rows=rows, cols=cols, scale=scale, sep=sep, labels=labels is not None)
    out = np.empty((layout.height, layout.width, 3), np.uint8)
    place_tiles(out, tiles, layout)
    decorate(out, layout, labels=labels, flagged=flagged, sep_color=sep_color)
    return out
