"""Receptive-field crops of a channel's top images, and the tile pictures that show them.

Geometry (per spatial axis, from the layer table of :func:`convscope.models.inspect.inspect_model`):
output position ``i`` sees input pixels centred at ``start + i * jump``, ``size`` pixels wide, i.e.
``[lo, lo + size)`` with ``lo = round(start + i * jump - (size - 1) / 2)``. Parts outside the image are
clipped; in a tile they are filled with :data:`PAD_COLOR`, so the max position always sits at the
centre of its tile and every tile of a layer has the same size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from convscope.render.annotate import compose
from convscope.render.encode import encode_png
from convscope.render.mosaic import tile
from convscope.render.resize import resize
from convscope.scan.layerstats import LayerStats

PAD_COLOR = (0, 48, 96)  # outside the image: dark blue, never a pixel value of a gray input
BOX_COLOR = (255, 64, 64)
MAX_CROP_PX = 96  # larger crops are shrunk (bilinear) for the pictures
CONTEXT_PX = 56  # context thumbnails: the whole input, at least/at most about this size
MAX_OVERVIEW = 64  # channels (rows) in a layer's overview picture

Display = Callable[[int], "np.ndarray | None"]


def rf_window(
    coord: Sequence[int], size: Sequence[float], jump: Sequence[float], start: Sequence[float]
) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]`` input pixel range (``hi`` exclusive, unclipped) seen by output position ``coord``."""
    out = []
    for i, s, j, c0 in zip(coord, size, jump, start):
        width = round(s)
        lo = math.floor(c0 + i * j - (width - 1) / 2 + 0.5)
        out.append((lo, lo + width))
    return out


def crop(display: np.ndarray, window: Sequence[tuple[int, int]]) -> np.ndarray:
    """Cut ``window`` (rows, cols) out of uint8 ``(H, W, 3)``; parts outside are :data:`PAD_COLOR`."""
    (y0, y1), (x0, x1) = window
    h, w = display.shape[:2]
    out = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
    out[:] = PAD_COLOR
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if cy1 > cy0 and cx1 > cx0:
        out[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = display[cy0:cy1, cx0:cx1]
    return out


def _shrink(img: np.ndarray, limit: int) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= limit:
        return img
    f = limit / max(h, w)
    return resize(img, (max(1, round(h * f)), max(1, round(w * f))), "bilinear")


def context(display: np.ndarray, window: Sequence[tuple[int, int]]) -> np.ndarray:
    """The whole input (scaled to about :data:`CONTEXT_PX`) with the receptive field outlined."""
    h, w = display.shape[:2]
    scale = max(1, CONTEXT_PX // max(h, w))
    img = np.repeat(np.repeat(display, scale, axis=0), scale, axis=1) if scale > 1 else display.copy()
    f = scale
    if max(h, w) * scale > 2 * CONTEXT_PX:
        img = _shrink(img, 2 * CONTEXT_PX).copy()
        f = img.shape[0] / h
    (y0, y1), (x0, x1) = window
    top, bottom = int(max(y0, 0) * f), int(min(y1, h) * f) - 1
    left, right = int(max(x0, 0) * f), int(min(x1, w) * f) - 1
    if bottom >= top and right >= left:
        img[top, left : right + 1] = img[bottom, left : right + 1] = BOX_COLOR
        img[top : bottom + 1, left] = img[top : bottom + 1, right] = BOX_COLOR
    return img


def has_crops(stats: LayerStats) -> bool:
    """True when crops can be drawn: a 2D layer with a known receptive field."""
    return len(stats.spatial) == 2 and stats.rf_size is not None and len(stats.rf_size) == 2


def channel_tiles(stats: LayerStats, channel: int, display: Display) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``(k, h, w, 3)`` crops and ``(k, H, W, 3)`` context thumbnails of one channel's top images."""
    crops, contexts = [], []
    coords = stats.top_coords[channel]
    for slot, index in enumerate(stats.top_index[channel]):
        picture = display(int(index))
        window = rf_window(coords[slot], stats.rf_size, stats.rf_jump, stats.rf_start)  # type: ignore[arg-type]
        if picture is None:
            picture = np.zeros((*stats.spatial, 3), np.uint8)
        crops.append(_shrink(crop(picture, window), MAX_CROP_PX))
        contexts.append(context(picture, window))
    return np.stack(crops), np.stack(_same_size(contexts))


def _same_size(images: list[np.ndarray]) -> list[np.ndarray]:
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    return [i if i.shape[:2] == (h, w) else resize(i, (h, w), "bicubic") for i in images]  # Pillow's default


def _stack(parts: list[np.ndarray], bg: tuple[int, int, int] = (40, 40, 40)) -> np.ndarray:
    width = max(p.shape[1] for p in parts)
    out = np.empty((sum(p.shape[0] for p in parts), width, 3), np.uint8)
    out[:] = bg
    y = 0
    for p in parts:
        out[y : y + p.shape[0], : p.shape[1]] = p
        y += p.shape[0]
    return out


def _framed(body: np.ndarray, fields: list[str]) -> np.ndarray:
    image, area, _ = compose(body.shape[0], body.shape[1], fields, None)
    area[:] = body
    return image


def _field_words(stats: LayerStats, rf: str) -> str:
    """``"receptive field 5x5 px"``, or for a token layer the patch its top token stands for."""
    if stats.tokens is None:
        return f"receptive field {rf} px"
    return f"the token's patch {rf} px (after attention a token may see the whole input); {stats.tokens}"


def channel_picture(stats: LayerStats, channel: int, display: Display) -> np.ndarray:
    """One channel: its top-k crops (value above each) over the whole inputs with the field outlined."""
    crops, contexts = channel_tiles(stats, channel, display)
    k = len(crops)
    cols = min(k, 8)
    values = [f"{v:.3g}" for v in stats.top_value[channel]]
    names = [
        f"#{int(i)}" + (f" {stats.top_label[channel, s]}" if stats.top_label is not None else "")
        for s, i in enumerate(stats.top_index[channel])
    ]
    body = _stack([tile(crops, cols=cols, labels=values), tile(contexts, cols=cols, labels=names)])
    rf = "x".join(f"{v:g}" for v in stats.rf_size)  # type: ignore[union-attr]
    fields = [
        f"{stats.key} channel {channel}",
        f"top {k} of {stats.images} images by spatial max",
        _field_words(stats, rf),
        f"mean {stats.mean[channel]:.3g}",
        f"max {stats.max[channel]:.3g}",
        f"positive {stats.frac_positive[channel]:.1%}",
        "top: crops (spatial max above) · below: the inputs (#index label), field outlined",
    ]
    return _framed(body, fields)


def overview_picture(stats: LayerStats, channel_crops: dict[int, np.ndarray], title: str = "") -> np.ndarray:
    """A layer's overview: one row per channel (its top-k crops, best left), channel number at the left."""
    channels = sorted(channel_crops)
    k = max(len(c) for c in channel_crops.values())
    h, w = next(iter(channel_crops.values())).shape[1:3]
    tiles = np.empty((len(channels) * k, h, w, 3), np.uint8)
    tiles[:] = PAD_COLOR
    labels = []
    for r, c in enumerate(channels):
        tiles[r * k : r * k + len(channel_crops[c])] = channel_crops[c]
        labels += [f"ch {c}"] + [""] * (k - 1)
    rf = "x".join(f"{v:g}" for v in stats.rf_size)  # type: ignore[union-attr]
    what = f"token patches ({rf} px)" if stats.tokens is not None else f"receptive-field crops ({rf} px)"
    contiguous = channels == list(range(channels[0], channels[-1] + 1))
    shown = (
        "all channels"
        if len(channels) == stats.channels
        else f"channels {channels[0]}-{channels[-1]}"
        if contiguous
        else f"{len(channels)} of {stats.channels} channels"
    )
    fields = [
        title or stats.key,
        f"top {k} {what} per channel, best left",
        f"{stats.images} images",
        f"{shown} (one per row)",
        "dark blue = outside the image",
    ]
    return _framed(tile(tiles, cols=k, labels=labels), fields)


def top_picture(
    stats: LayerStats, display: Display, channels: Sequence[int], *, k: int | None = None, title: str = ""
) -> np.ndarray:
    """An overview picture of chosen ``channels`` (rows) with their best ``k`` crops (all by default)."""
    chosen = {int(c): _shrink_all(channel_tiles(stats, int(c), display)[0][:k]) for c in channels}
    return overview_picture(stats, chosen, title)


def write_layer_pictures(stats: LayerStats, display: Display, folder: Path, *, group: int = 32) -> list[Path]:
    """Write ``folder/top/chNNNN.png`` per channel and ``folder/top.png`` (first :data:`MAX_OVERVIEW` rows).

    Displays are fetched for ``group`` channels at a time, so memory stays bounded for large layers.
    """
    if not has_crops(stats) or stats.top_index.shape[1] == 0:
        return []
    (folder / "top").mkdir(parents=True, exist_ok=True)
    written, overview = [], {}
    for first in range(0, stats.channels, group):
        cache: dict[int, np.ndarray | None] = {}

        def cached(index: int, cache: dict[int, np.ndarray | None] = cache) -> np.ndarray | None:
            if index not in cache:
                cache[index] = display(index)
            return cache[index]

        for c in range(first, min(first + group, stats.channels)):
            path = folder / "top" / f"ch{c:04d}.png"
            path.write_bytes(encode_png(channel_picture(stats, c, cached)))
            written.append(path)
            if c < MAX_OVERVIEW:
                overview[c] = _shrink_all(channel_tiles(stats, c, cached)[0])
    (folder / "top.png").write_bytes(encode_png(overview_picture(stats, overview)))
    return [*written, folder / "top.png"]


def _shrink_all(crops: np.ndarray, limit: int = 48) -> np.ndarray:
    return crops if max(crops.shape[1:3]) <= limit else np.stack([_shrink(c, limit) for c in crops])
