"""Every name Keras accepts works in every view, on every backend (issue 18, item 4).

TensorFlow refuses spaces, quotes, ``<``, parentheses and non-ASCII letters in graph scope names, and
Keras opens a scope with each layer's and model's name, so a compiled pass over ``my model (v2)`` used
to die with "not a valid root scope name" while an eager call worked. The reference for each view is
the same view of a *twin* model: identical architecture and weights, plain names. Every number must be
the same. tests/test_backends.py runs this file under JAX and torch too.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")
L = keras.layers

ODD = {"model": "my model (v2)", "input": "in put", "c0": 'conv "a" <b>', "c1": "conv-1 é (x)",
       "pool": "pool 'g'", "head": "head <out>", "inner": "inner block [1]"}
PLAIN = {k: f"plain_{k}" for k in ODD}
ATOL = 1e-5


def _build(names: dict[str, str]) -> keras.Model:
    keras.utils.set_random_seed(7)
    inner_in = keras.Input((14, 14, 4))
    inner = keras.Model(inner_in, L.Conv2D(4, 3, activation="relu", name=names["c1"])(inner_in), name=names["inner"])
    inp = keras.Input((16, 16, 3), name=names["input"])
    x = L.Conv2D(4, 3, activation="relu", name=names["c0"])(inp)
    x = inner(x)
    x = L.GlobalAveragePooling2D(name=names["pool"])(x)
    return keras.Model(inp, L.Dense(3, name=names["head"])(x), name=names["model"])


@pytest.fixture(scope="module")
def twins() -> tuple[keras.Model, keras.Model]:
    odd, plain = _build(ODD), _build(PLAIN)
    plain.set_weights(odd.get_weights())
    return odd, plain


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32")


def _key(names: dict[str, str], *parts: str) -> str:
    return "/".join(names[p] for p in parts)


def test_names_are_kept_and_activations_match_an_eager_reference(twins, x):
    from convscope.probe.extractor import Extractor

    odd, _ = twins
    acts = Extractor(odd, [ODD["c0"], f"{ODD['inner']}/{ODD['c1']}"])(x)
    c0 = keras.ops.convert_to_numpy(odd.get_layer(ODD["c0"])(x))
    c1 = keras.ops.convert_to_numpy(odd.get_layer(ODD["inner"]).get_layer(ODD["c1"])(c0))
    assert list(acts) == [ODD["c0"], _key(ODD, "inner", "c1")]
    np.testing.assert_allclose(acts[ODD["c0"]], c0, atol=ATOL, rtol=0)
    np.testing.assert_allclose(acts[_key(ODD, "inner", "c1")], c1, atol=ATOL, rtol=0)
    assert odd.name == ODD["model"] and [layer.name for layer in odd.layers][1] == ODD["c0"]


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam", "scorecam", "saliency", "smoothgrad",
                                    "integrated_gradients"])
def test_every_cam_method_matches_the_plain_twin(twins, x, method):
    from convscope.attribution.api import cam

    odd, plain = twins
    a, b = cam(odd, x, method), cam(plain, x, method)
    assert np.isfinite(a.maps).all() and a.maps.shape == (3, 16, 16)
    np.testing.assert_allclose(a.maps, b.maps, atol=ATOL, rtol=0)


def test_maximize_matches_the_plain_twin(twins):
    from convscope.featvis.optimize import maximize_channels

    odd, plain = twins
    a = maximize_channels(odd, f"{ODD['inner']}/{ODD['c1']}", "2", steps=4, seed=3)
    b = maximize_channels(plain, f"{PLAIN['inner']}/{PLAIN['c1']}", "2", steps=4, seed=3)
    np.testing.assert_allclose(a.final, b.final, atol=1e-4, rtol=1e-4)
    assert np.abs(a.images.astype(int) - b.images.astype(int)).max() <= 1


def test_scan_matches_the_plain_twin(twins, x):
    from convscope.scan.run import scan

    odd, plain = twins
    a, b = scan(odd, x, top_k=2), scan(plain, x, top_k=2)
    ka, kb = _key(ODD, "inner", "c1"), _key(PLAIN, "inner", "c1")
    np.testing.assert_allclose(a[ka].mean, b[kb].mean, atol=ATOL, rtol=0)
    np.testing.assert_array_equal(a[ka].top_index, b[kb].top_index)


def test_explorer_grid_matches_the_plain_twin(twins, x, tmp_path):
    from convscope.present.web.explorer import ViewOptions
    from convscope.present.web.server import build_explorer

    odd, plain = twins
    maps = []
    for model, names in ((odd, ODD), (plain, PLAIN)):
        path = tmp_path / f"{names['model']}.keras"
        model.save(path)
        folder = tmp_path / f"img-{names['model']}"
        folder.mkdir()
        Image.fromarray((x[0] * 255).astype(np.uint8)).save(folder / "a.png")
        ex = build_explorer(str(path), images=folder)
        assert ex.summary()["name"] == names["model"]
        image_id = ex.gallery.list()[0]["id"]
        options = ViewOptions.parse(None, None, None)
        key = _key(names, "inner", "c1")
        picture = Image.open(io.BytesIO(ex.grid(image_id, key, options).png))
        assert picture.width > 16 and picture.height > 16  # a real grid (its caption names the layer)
        maps.append(ex.activations(image_id)[key])
    np.testing.assert_allclose(maps[0], maps[1], atol=ATOL, rtol=0)


def test_cli_maps_and_cam_accept_odd_names(twins, x, tmp_path, capsys):
    from convscope.present.cli import main

    odd, _ = twins
    model = tmp_path / "odd.keras"
    odd.save(model)
    data = tmp_path / "x.npy"
    np.save(data, x[:1])
    assert main(["maps", str(model), str(data), "--out", str(tmp_path / "maps"), "--layer", ODD["c0"]]) == 0
    assert main(["cam", str(model), str(data), "--out", str(tmp_path / "cam"), "-m", "gradcam"]) == 0
    out = capsys.readouterr().out
    pngs = [Path(line) for line in out.splitlines() if line.endswith(".png")]
    assert len(pngs) >= 2 and all(p.is_file() for p in pngs)


def test_lenient_scopes_is_local_and_restored():
    """The TensorFlow patch renames scopes only inside the block, in this thread, and is undone after."""
    import tensorflow as tf
    from tensorflow.python.framework import ops

    from convscope.backend.tensorflow import lenient_scopes, scope_name

    original = ops.Graph.__dict__["name_scope"]
    graph = tf.Graph()
    with pytest.raises(ValueError, match="not a valid root scope name"), graph.as_default(), tf.name_scope(ODD["model"]):
        pass
    with lenient_scopes(), graph.as_default(), tf.name_scope(ODD["model"]) as outer, tf.name_scope(ODD["c0"]) as inner:
        assert (outer, inner) == ("my_model__v2_/", "my_model__v2_/conv__a___b_/")
    assert ops.Graph.__dict__["name_scope"] is original
    assert scope_name("_x y", root=True) == "x_x_y" and scope_name("_x y", root=False) == "_x_y"
