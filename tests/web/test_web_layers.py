"""The explorer's layer list (groups, names shown, the layer opened first) and its label-free grid pictures."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.present.web.layers import block_of, default_layer, layer_groups
from convscope.present.web.views import bare_mosaic, grid_meta
from convscope.render import render_activation
from convscope.render.colormap import get_lut


def row(path: str, cls: str = "Conv2D", *, key: str | None = "", spatial: bool = True) -> dict:
    return {"path": path, "class": cls, "depth": path.count("/"), "call": 0,
            "key": path if key == "" else key, "viewable": key is not None, "spatial": spatial}


@pytest.mark.parametrize(("name", "block"), [
    ("block3b_expand_conv", "block3b"), ("block_1_expand", "block_1"), ("conv2_block1_1_conv", "conv2"),
    ("stem_conv_pad", "stem"), ("conv_0", None), ("dense", None), ("_private", None), ("block_12", None),
    ("top_", None),
])
def test_block_prefix(name, block):
    assert block_of(name) == block


def test_groups_of_blocks_and_nested_models():
    rows = [row("input_layer", "InputLayer", key=None), row("stem_pad", "ZeroPadding2D"), row("stem_conv"),
            row("conv_0"), row("conv_1"),
            row("backbone", "Functional", key=None),
            row("backbone/block1a_conv"), row("backbone/block1a_bn", "BatchNormalization"),
            row("backbone/block1b_conv"), row("backbone/lonely_layer", "ReLU"),
            row("head_pool", "GlobalAveragePooling2D", spatial=False)]
    out, groups = layer_groups(rows)
    by_id = {g["id"]: g for g in groups}
    assert [g["id"] for g in groups] == ["stem", "backbone", "backbone/block1a"]
    assert by_id["stem"] == {"id": "stem", "kind": "block", "label": "stem", "parent": None, "size": 2,
                             "last_key": "stem_conv"}
    assert by_id["backbone"]["kind"] == "model" and by_id["backbone"]["size"] == 4
    assert by_id["backbone"]["last_key"] == "backbone/lonely_layer"
    assert by_id["backbone/block1a"] == {"id": "backbone/block1a", "kind": "block", "label": "block1a",
                                         "parent": "backbone", "size": 2, "last_key": "backbone/block1a_bn"}
    groups_of = {r["path"]: r["group"] for r in out}
    short = {r["path"]: r["short"] for r in out}
    assert groups_of == {"input_layer": None, "stem_pad": "stem", "stem_conv": "stem", "conv_0": None,
                         "conv_1": None, "backbone": None, "backbone/block1a_conv": "backbone/block1a",
                         "backbone/block1a_bn": "backbone/block1a", "backbone/block1b_conv": "backbone",
                         "backbone/lonely_layer": "backbone", "head_pool": None}
    assert short["stem_pad"] == "pad" and short["backbone/block1a_bn"] == "bn"
    assert short["backbone/block1b_conv"] == "block1b_conv" and short["conv_1"] == "conv_1"
    assert [r["path"] for r in out] == [r["path"] for r in rows]  # order and rows kept


def test_a_prefix_must_repeat_in_a_row_to_make_a_block():
    rows = [row("top_conv"), row("avg_pool", "GlobalAveragePooling2D"), row("top_dropout", "Dropout")]
    out, groups = layer_groups(rows)
    assert groups == [] and all(r["group"] is None for r in out)


def test_default_layer_is_the_first_convolution():
    rows = [row("input_layer", "InputLayer", key=None), row("rescaling", "Rescaling"),
            row("stem_conv_pad", "ZeroPadding2D"), row("stem_conv"), row("dense", "Dense", spatial=False)]
    assert default_layer(rows) == "stem_conv"
    no_conv = [row("rescaling", "Rescaling"), row("pool", "MaxPooling2D"), row("dense", "Dense", spatial=False)]
    assert default_layer(no_conv) == "pool"
    flat = [row("rescaling", "Rescaling", spatial=False), row("dense", "Dense", spatial=False)]
    assert default_layer(flat) == "dense"
    assert default_layer([row("x", "InputLayer", key=None)]) is None


@pytest.mark.parametrize(("norm", "channels"), [("channel", None), ("layer", "0,3,5"), ("symmetric", "top4:max")])
def test_bare_mosaic_is_the_labelled_mosaic_without_its_words(norm, channels):
    rng = np.random.default_rng(0)
    act = rng.normal(size=(9, 7, 6)).astype(np.float32)
    act[..., 1] = 0.0  # an inactive channel keeps its red frame
    labelled = render_activation(act, layer="x", norm=norm, channels=channels)
    bare = render_activation(act, layer="x", norm=norm, channels=channels, labels=False)
    pixels, meta = bare_mosaic(bare, grid_meta(bare, "x", norm, labels=False))
    full = grid_meta(labelled, "x", norm)
    g, gl = meta["geometry"], full["geometry"]
    assert meta["labels"] is False and g["top"] == 0 and pixels.shape == (meta["height"], meta["width"], 3)
    assert pixels.shape[:2] == (g["sep"] + g["rows"] * g["cell_h"], g["sep"] + g["cols"] * g["cell_w"])
    assert meta["channels"] == list(labelled.channels) and meta["caption"] == labelled.caption
    label_h = gl["cell_h"] - g["cell_h"]
    assert label_h > 0
    img = np.asarray(labelled.image)
    th, tw = g["cell_h"] - g["sep"], g["cell_w"] - g["sep"]
    for i in range(len(meta["channels"])):  # every tile's pixels are those under the label strip
        r, c = divmod(i, g["cols"])
        y, x = g["sep"] + r * g["cell_h"], g["sep"] + c * g["cell_w"]
        yl, xl = gl["top"] + gl["sep"] + r * gl["cell_h"] + label_h, gl["sep"] + c * gl["cell_w"]
        np.testing.assert_array_equal(pixels[y : y + th, x : x + tw], img[yl : yl + th, xl : xl + tw])
    legend = meta["legend"]
    if norm == "channel":
        assert legend is None
    else:
        assert labelled.legend is not None
        assert (legend["lo"], legend["hi"]) == pytest.approx((labelled.legend.lo, labelled.legend.hi))
        assert legend["symmetric"] == (norm == "symmetric") and len(legend["colors"]) == 17
        lut = get_lut(legend["cmap"])
        assert legend["colors"][0] == "#{:02x}{:02x}{:02x}".format(*tuple(lut[0]))
        assert legend["colors"][-1] == "#{:02x}{:02x}{:02x}".format(*tuple(lut[-1]))


def test_pictures_that_are_not_mosaics_keep_their_words():
    grid = render_activation(np.arange(12, dtype=np.float32), layer="dense")
    pixels, meta = bare_mosaic(grid, grid_meta(grid, "dense", "channel"))
    assert pixels.shape == grid.image.shape and meta["labels"] is True and meta["geometry"] is None
