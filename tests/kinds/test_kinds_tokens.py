"""Token layers (a ViT's ``(T, C)`` outputs) drawn as ``h x w`` maps in maps, serve and scan.

The reference of every picture is Keras' own layer output put through ``TokenGrid.to_grid`` (the class
token set aside); ``--tokens HxW`` that fits no token count is one line and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from models import reference
from PIL import Image

from convscope.errors import OptionError
from convscope.models.grids import token_views
from convscope.models.tokens import TokenGrid
from convscope.models.tree import layer_tree
from convscope.present.cli import main
from convscope.render import render_activation
from convscope.scan import load_scan

ATOL = 1e-5
L = keras.layers


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), np.float32)[None] / 255.0


def layer(model, path: str):
    return next(n.layer for n in layer_tree(model) if n.path == path)


def same_picture(a: np.ndarray, b: np.ndarray) -> None:
    """Two renderings of arrays equal to 1e-5: the same picture (a color index may flip at a bin edge)."""
    assert a.shape == b.shape
    assert np.mean(np.any(a != b, axis=-1)) < 1e-3


def test_the_vit_token_layers_and_their_grid(kinds):
    k = kinds["vit"]
    shapes = {
        n.path: tuple(n.layer.output.shape[1:])
        for n in layer_tree(k.model)
        if not n.is_container
        and n.path not in ("image",)
        and hasattr(n.layer, "output")
        and len(n.layer.output.shape) == 3
    }
    views = token_views(k.model, shapes)
    assert {"patches", "class_token", "block0_out", "block1_out", "final_ln"} <= set(views)
    view = views["block0_out"]
    assert view.tokens == TokenGrid(8, 8, 1, "model") and views["patches"].tokens.extra == 0
    assert view.origin == "patch_embed" and view.grid.step == (4, 4) and view.grid.start == (1.5, 1.5)
    assert view.describe() == "65 tokens as 8x8 maps, 1 extra token set aside, on patch_embed's grid"


def test_maps_draws_a_token_layer_as_the_keras_output_on_its_grid(capsys, tmp_path, kinds):
    k = kinds["vit"]
    image = k.images / "im0.png"
    out = tmp_path / "maps"
    code, stdout, err = run(
        capsys,
        "maps",
        k.path,
        image,
        "--layer",
        "block1_out",
        "--layer",
        "patch_embed",
        "--out",
        out,
        "--save-arrays",
        "--overlay",
        "mean",
    )
    assert code == 0, err
    names = {Path(line).name for line in stdout.splitlines()}
    assert {"block1_out.png", "block1_out.overlay.png", "patch_embed.png"} <= names
    ref = reference(k.model, pixels(image), k.model.get_layer("block1_out"))  # (1, 65, 16)
    arrays = np.load(out / "activations.npz")
    np.testing.assert_allclose(arrays["block1_out"], ref, atol=ATOL, rtol=0)  # the raw tokens are saved as is
    grid = TokenGrid(8, 8, 1).to_grid(ref)[0]  # (8, 8, 16): what the picture must show
    notes = ["65 tokens as 8x8 maps", "1 extra token set aside", "on patch_embed's grid"]
    expected = render_activation(grid, layer="block1_out", notes=notes)
    drawn = np.asarray(Image.open(out / "im0" / "block1_out.png").convert("RGB"))
    same_picture(drawn, np.asarray(expected.image))
    assert expected.kind == "2d" and expected.shape == (8, 8, 16)


def test_tokens_option_that_fits_no_token_count_is_one_line(capsys, tmp_path, kinds):
    k = kinds["vit197"]
    image = k.images / "im0.png"
    for command in (
        ["maps", k.path, image, "--layer", "block0_out"],
        ["scan", k.path, k.images, "--layer", "block0_*"],
    ):
        out = tmp_path / command[0]
        code, _, err = run(capsys, *command, "--tokens", "5x5", "--out", out)
        assert_one_line_error(code, err, "--tokens 5x5", "197 tokens", "14x14")
        assert not out.exists()
    code, _, err = run(capsys, "serve", k.path, "--images", k.images, "--port", "0", "--tokens", "5x5")
    assert_one_line_error(code, err, "--tokens 5x5", "197 tokens")
    code, _, err = run(capsys, "maps", k.path, image, "--tokens", "5by5", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "--tokens '5by5'", "HxW")
    # a size that fits (14x14 + 1 extra) is used as given
    code, _, err = run(
        capsys,
        "maps",
        k.path,
        image,
        "--layer",
        "block0_out",
        "--tokens",
        "14x14",
        "--out",
        tmp_path / "given",
        "--save-arrays",
    )
    assert code == 0, err
    ref = reference(k.model, pixels(image), k.model.get_layer("block0_out"))
    expected = render_activation(
        TokenGrid(14, 14, 1).to_grid(ref)[0],
        layer="block0_out",
        notes=["197 tokens as 14x14 maps (--tokens)", "1 extra token set aside", "on patch_embed's grid"],
    )
    same_picture(
        np.asarray(Image.open(tmp_path / "given" / "im0" / "block0_out.png").convert("RGB")),
        np.asarray(expected.image),
    )


def test_serve_draws_token_layers_as_maps(kinds):
    from convscope.present.web.server import build_explorer

    k = kinds["vit"]
    explorer = build_explorer(str(k.path), images=k.images)
    row = explorer.layer("block0_out")
    assert row["spatial"] and "8x8 maps" in row["tokens"]
    image = explorer.gallery.list()[0]["id"]
    x = explorer.gallery.prepared(image).x[None]
    maps, fmt = explorer.maps(image, "block0_out")
    ref = TokenGrid(8, 8, 1).to_grid(reference(k.model, x, k.model.get_layer("block0_out")))[0]
    np.testing.assert_allclose(maps, ref, atol=ATOL, rtol=0)
    assert fmt == "channels_last"
    from convscope.present.web.explorer import ViewOptions

    picture = explorer.grid(image, "block0_out", ViewOptions())
    assert picture.meta["shape"] == [8, 8, 16] and picture.meta["kind"] == "2d" and picture.meta["tokens"]
    channel = explorer.channel(image, "block0_out", 3)
    y, x_ = np.unravel_index(int(np.argmax(ref[..., 3])), (8, 8))
    assert channel.meta["argmax"] == [int(y), int(x_)]
    assert channel.meta["peak_center"] == [1.5 + 4 * int(y), 1.5 + 4 * int(x_)]  # on the patch grid
    with pytest.raises(OptionError, match=r"197 tokens|65 tokens"):
        build_explorer(str(k.path), images=k.images, tokens=(5, 5))


def test_scan_of_a_token_layer_covers_the_patch_tokens(capsys, tmp_path, kinds):
    k = kinds["vit"]
    x = k.x(4)
    npy = tmp_path / "x.npy"
    np.save(npy, x)
    code, stdout, err = run(
        capsys, "scan", k.path, npy, "--layer", "block1_out", "--top", "2", "--out", tmp_path / "scan"
    )
    assert code == 0, err
    assert "65 tokens as 8x8 maps" in stdout
    stats = load_scan(tmp_path / "scan")["block1_out"]
    maps = TokenGrid(8, 8, 1).to_grid(reference(k.model, x, k.model.get_layer("block1_out")))  # (4, 8, 8, 16)
    assert stats.shape == (65, 16) and stats.spatial == (8, 8) and stats.rf_jump == (4, 4)
    np.testing.assert_allclose(stats.max, maps.max(axis=(0, 1, 2)), atol=ATOL)
    np.testing.assert_allclose(stats.mean, maps.mean(axis=(0, 1, 2)), atol=ATOL)
    best = stats.top_index[:, 0]
    for c in (0, 5):  # the top image's peak sits where the token maps peak
        flat = maps[best[c], ..., c].reshape(-1)
        assert tuple(stats.top_coords[c, 0]) == np.unravel_index(int(np.argmax(flat)), (8, 8))
    assert (tmp_path / "scan" / "layers" / "block1_out" / "top.png").is_file()


def test_keras_hub_vit_tokens_sit_on_the_nested_patch_conv_grid(kinds):
    k = kinds["hub_vit"]
    key = "vit_backbone/vit_encoder/transformer_block_1/ln_1"
    views = token_views(k.model, {key: (17, 16)})
    view = views[key]
    assert view.tokens == TokenGrid(4, 4, 1, "model")
    assert view.origin == "vit_backbone/vit_patching_and_embedding/patch_embedding"
    assert view.grid.step == (8, 8)


def test_sequences_keep_their_strips():
    """A Conv1D model's (L, C) outputs are sequences, not tokens, even when L is a square."""
    model = keras.Sequential(
        [keras.Input((16, 3)), L.Conv1D(4, 3, padding="same", name="c1"), L.Dense(5, name="d")]
    )
    assert token_views(model, {"c1": (16, 4), "d": (16, 5)}) == {}
    # an image model's (T, C) layer without a patch grid: the square rule, stretched over the input
    inp = keras.Input((8, 8, 3))
    seq = L.Reshape((16, 12))(L.Conv2D(3, 3, padding="same", name="c")(inp))
    model = keras.Model(inp, L.Dense(4, name="tok")(seq))
    view = token_views(model, {"tok": (16, 4)})["tok"]
    assert (
        view.tokens == TokenGrid(4, 4, 0, "square") and view.grid is None and "stretched" in view.describe()
    )
