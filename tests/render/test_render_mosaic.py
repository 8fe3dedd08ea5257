"""Mosaic geometry, pixel placement, labels and inactive-tile markers."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.errors import OptionError, RenderError
from convscope.render import auto_grid, auto_scale, plan_mosaic, tile
from convscope.render.mosaic import INACTIVE_COLOR, SEP_COLOR
from convscope.render.text import LABEL_H


def make_tiles(k: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (k, h, w, 3), dtype=np.uint8)


def upscale(t: np.ndarray, s: int) -> np.ndarray:
    return np.kron(t, np.ones((s, s, 1), np.uint8))


@pytest.mark.parametrize(
    ("n", "expected"), [(1, (1, 1)), (3, (1, 3)), (10, (2, 5)), (16, (4, 4)), (32, (4, 8)), (64, (8, 8))]
)
def test_auto_grid(n: int, expected: tuple[int, int]) -> None:
    assert auto_grid(n) == expected


def test_auto_grid_never_leaves_a_whole_row_empty() -> None:
    for n in range(1, 200):
        rows, cols = auto_grid(n)
        assert rows * cols >= n > (rows - 1) * cols


@pytest.mark.parametrize(("side", "scale"), [(1, 8), (3, 8), (7, 7), (13, 4), (26, 2), (48, 1), (224, 1)])
def test_auto_scale(side: int, scale: int) -> None:
    assert auto_scale(side, side) == scale


@pytest.mark.parametrize(
    ("k", "h", "w", "kw", "size"),
    [
        # H = sep + rows * (label + h*s + sep),  W = sep + cols * (w*s + sep)
        (5, 3, 4, dict(rows=2, cols=3, scale=2, sep=1), (1 + 2 * (6 + 1), 1 + 3 * (8 + 1))),
        (5, 3, 4, dict(cols=5, scale=1, sep=0), (3, 20)),
        (7, 10, 10, dict(rows=3, scale=3, sep=2), (2 + 3 * (30 + 2), 2 + 3 * (30 + 2))),
        (4, 2, 6, dict(cols=8, scale=1, sep=1), (1 + 1 * 3, 1 + 8 * 7)),
    ],
)
def test_exact_output_size(k: int, h: int, w: int, kw: dict, size: tuple[int, int]) -> None:
    out = tile(make_tiles(k, h, w), **kw)
    assert out.shape == (*size, 3) and out.dtype == np.uint8
    labelled = tile(make_tiles(k, h, w), labels=[str(i) for i in range(k)], **kw)
    rows = plan_mosaic(k, h, w, **kw).rows
    assert labelled.shape == (size[0] + rows * LABEL_H, size[1], 3)


def test_tiles_placed_by_value_with_separators_and_empty_cells() -> None:
    tiles = make_tiles(5, 3, 4, seed=1)
    out = tile(tiles, rows=2, cols=3, scale=2, sep=1, sep_color=(1, 2, 3))
    cell_h, cell_w = 3 * 2 + 1, 4 * 2 + 1
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = 1 + r * cell_h, 1 + c * cell_w
        np.testing.assert_array_equal(out[y : y + 6, x : x + 8], upscale(tiles[i], 2))
    sep = np.array([1, 2, 3], np.uint8)
    assert (out[0] == sep).all() and (out[:, 0] == sep).all()
    assert (out[7] == sep).all() and (out[:, 9] == sep).all()
    assert (out[8:14, 19:27] == sep).all()  # the empty sixth cell


def test_gray_tiles_are_expanded() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    out = tile(gray, scale=1, sep=0)
    np.testing.assert_array_equal(out, np.repeat(gray[0][..., None], 3, axis=2))


def test_labels_do_not_move_or_cover_data() -> None:
    tiles = make_tiles(6, 5, 5, seed=2)
    kw = dict(cols=3, scale=3, sep=1)
    plain = tile(tiles, **kw)
    labelled = tile(tiles, labels=[f"{i}" for i in range(6)], **kw)
    lay_plain = plan_mosaic(6, 5, 5, **kw)
    lay_lab = plan_mosaic(6, 5, 5, labels=True, **kw)
    for i in range(6):
        (y0, x0), (y1, x1) = lay_plain.tile_origin(i), lay_lab.tile_origin(i)
        assert x0 == x1 and y1 == y0 + (i // 3 + 1) * LABEL_H
        np.testing.assert_array_equal(labelled[y1 : y1 + 15, x1 : x1 + 15], plain[y0 : y0 + 15, x0 : x0 + 15])
        np.testing.assert_array_equal(labelled[y1 : y1 + 15, x1 : x1 + 15], upscale(tiles[i], 3))
        strip = labelled[y1 - LABEL_H : y1, x1 : x1 + 15]
        assert (strip != np.array(SEP_COLOR, np.uint8)).any()  # text was drawn in the strip


def test_flagged_tiles_get_a_red_frame_outside_the_data() -> None:
    tiles = make_tiles(4, 4, 4, seed=3)
    out = tile(tiles, cols=2, scale=2, sep=1, flagged=[False, True, False, False], labels=list("abcd"))
    lay = plan_mosaic(4, 4, 4, cols=2, scale=2, sep=1, labels=True)
    y, x = lay.tile_origin(1)
    red = np.array(INACTIVE_COLOR, np.uint8)
    assert (out[y - LABEL_H - 1, x - 1 : x + 9] == red).all()  # top edge, above the label strip
    assert (out[y + 8, x - 1 : x + 9] == red).all()  # bottom edge
    assert (out[y - LABEL_H - 1 : y + 9, x - 1] == red).all()  # left edge
    assert (out[y - LABEL_H - 1 : y + 9, x + 8] == red).all()  # right edge
    for i in range(4):
        yy, xx = lay.tile_origin(i)
        np.testing.assert_array_equal(out[yy : yy + 8, xx : xx + 8], upscale(tiles[i], 2))
    y2, x2 = lay.tile_origin(0)
    assert not (out[y2 + 8, x2 : x2 + 8] == red).all(axis=-1).any()  # unflagged tile: no frame


def test_bad_arguments() -> None:
    tiles = make_tiles(5, 2, 2)
    with pytest.raises(OptionError, match="rows=2 x cols=2"):
        tile(tiles, rows=2, cols=2)
    with pytest.raises(OptionError, match="scale"):
        tile(tiles, scale=0)
    with pytest.raises(OptionError, match="sep"):
        tile(tiles, sep=-1)
    with pytest.raises(RenderError, match="uint8"):
        tile(tiles.astype(np.float32))
    with pytest.raises(RenderError, match="labels"):
        tile(tiles, labels=["a"])


def test_flagged_label_says_inactive_when_it_fits() -> None:
    from convscope.render.mosaic import LABEL_COLOR
    from convscope.render.text import text_patch, text_width

    wide = text_width("3 inactive")
    for scale, text in ((max(2, -(-wide // 4)), "3 inactive"), (2, "3")):  # wide tiles: the word; narrow: red number
        out = tile(make_tiles(1, 4, 4, seed=1), cols=1, scale=scale, sep=1, flagged=[True], labels=["3"])
        lay = plan_mosaic(1, 4, 4, cols=1, scale=scale, sep=1, labels=True)
        y, x = lay.tile_origin(0)
        patch = text_patch(text, INACTIVE_COLOR, SEP_COLOR, lay.label_h)[:, : 4 * scale]
        np.testing.assert_array_equal(out[y - lay.label_h : y, x : x + patch.shape[1]], patch)
        assert not (out[y - lay.label_h : y, x : x + 4 * scale] == np.array(LABEL_COLOR, np.uint8)).all(-1).any()
