"""Inputs of several sizes for a model that leaves sizes free (issue 18, item 9): one batch per size,
outputs in input order, each activation equal to the model's own on that input alone."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convscope.data import InputSpec, Preprocess, load_input_groups, load_inputs
from convscope.errors import InputError

keras = pytest.importorskip("keras")
L = keras.layers


def _arrays(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((2, 40, 40, 3)).astype("float32")
    b = rng.random((1, 64, 48, 3)).astype("float32")
    np.save(tmp_path / "x40.npy", a)
    np.save(tmp_path / "x64x48.npy", b)
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(tmp_path / "p.png")
    return a, b


def test_groups_by_size_keep_positions_and_unique_names(tmp_path):
    a, b = _arrays(tmp_path)
    spec = InputSpec(shape=(None, None, 3))
    items = [tmp_path / "x40.npy", tmp_path / "x64x48.npy", tmp_path / "p.png", tmp_path / "x40.npy"]
    groups = load_input_groups(items, spec, Preprocess())
    assert [g.x.shape for g in groups] == [(5, 40, 40, 3), (1, 64, 48, 3)]
    assert groups[0].positions == (0, 1, 3, 4, 5) and groups[1].positions == (2,)
    np.testing.assert_array_equal(groups[1].x, b)
    np.testing.assert_array_equal(groups[0].x[:2], a)
    np.testing.assert_array_equal(groups[0].x[3:], a)
    names = [n for g in groups for n in g.names]
    assert len(set(names)) == 6 and groups[1].names == ("x64x48.npy[0]",)


def test_one_batch_still_refuses_mixed_sizes_naming_no_missing_option(tmp_path):
    _arrays(tmp_path)
    with pytest.raises(InputError, match="inputs differ in shape") as err:
        load_inputs([tmp_path / "x40.npy", tmp_path / "x64x48.npy"], InputSpec(shape=(None, None, 3)))
    assert "--size" not in str(err.value) and "load_input_groups" in str(err.value)


def test_cli_maps_processes_each_size_as_its_own_batch(tmp_path, capsys):
    from convscope.present.cli import main

    a, b = _arrays(tmp_path)
    inp = keras.Input((None, None, 3))
    x = L.Conv2D(4, 3, activation="relu", name="c0")(inp)
    x = L.Conv2D(5, 3, strides=2, padding="same", name="c1")(x)
    model = keras.Model(inp, L.Dense(2, name="head")(L.GlobalAveragePooling2D()(x)), name="fcn")
    model.save(tmp_path / "fcn.keras")
    out = tmp_path / "maps"
    code = main(["maps", str(tmp_path / "fcn.keras"), str(tmp_path / "x40.npy"), str(tmp_path / "x64x48.npy"),
                 "--out", str(out), "--save-arrays", "-l", "c0", "-l", "c1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.split()
    assert lines[:6] == [str(out / n / f) for n in ("x40.npy[0]", "x40.npy[1]", "x64x48.npy[0]") for f in ("c0.png", "c1.png")]
    assert lines[6:] == [str(out / "activations.40x40.npz"), str(out / "activations.64x48.npz")]
    sub = keras.Model(model.inputs, [model.get_layer("c0").output, model.get_layer("c1").output])
    for name, x_ in (("40x40", a), ("64x48", b)):
        saved = np.load(out / f"activations.{name}.npz")
        ref = [keras.ops.convert_to_numpy(t) for t in sub(x_)]
        np.testing.assert_allclose(saved["c0"], ref[0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(saved["c1"], ref[1], atol=1e-5, rtol=0)
    assert Image.open(out / "x64x48.npy[0]" / "c1.png").size != Image.open(out / "x40.npy[0]" / "c1.png").size
