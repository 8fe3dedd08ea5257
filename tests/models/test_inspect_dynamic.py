"""``inspect`` on a model whose input sizes are free (issue 18, item 9): unknown sizes are shown as such
and everything that does not need them is computed. The reference is the same table at fixed sizes."""

from __future__ import annotations

import json

import pytest

keras = pytest.importorskip("keras")
L = keras.layers

from convscope.errors import InputError  # noqa: E402
from convscope.models.inspect import format_table, inspect_model  # noqa: E402


@pytest.fixture(scope="module")
def fcn() -> keras.Model:
    inp = keras.Input((None, None, 3))
    x = L.Conv2D(4, 3, activation="relu", name="c0")(inp)
    x = L.MaxPooling2D(2, name="p0")(x)
    inner_in = keras.Input((None, None, 4))
    inner = keras.Model(inner_in, L.Conv2D(6, 3, dilation_rate=2, name="c1")(inner_in), name="block")
    x = inner(x)
    x = L.Conv2D(5, 3, strides=2, padding="same", name="c2")(x)
    y = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(3, name="head")(y), name="fcn")


def test_free_sizes_are_none_and_the_rest_matches_fixed_sizes(fcn):
    free = inspect_model(fcn, unknown_sizes=True)
    fixed = [inspect_model(fcn, input_shape=s) for s in ((40, 40, 3), (64, 48, 3))]
    assert free.input_shape == (None, None, None, 3)
    assert len(free.layers) == len(fixed[0].layers) == 7
    for row, a, b in zip(free.layers, *(f.layers for f in fixed)):
        assert row.path == a.path
        assert (row.params, row.kernel, row.strides, row.padding, row.dilation) == \
               (a.params, a.kernel, a.strides, a.padding, a.dilation)
        # a size is known exactly when it does not change with the input size
        expected = tuple(x if x == y else None for x, y in zip(a.output_shape, b.output_shape))
        assert row.output_shape == expected, row.path
        assert row.rf_size == a.rf_size and row.rf_jump == a.rf_jump, row.path
    assert free.find("c0").output_shape == (None, None, None, 4)
    assert free.find("gap").output_shape == (None, 5) and free.find("head").output_shape == (None, 3)
    # the start after 'same' padding with stride 2 depends on the size: flagged, not hidden
    assert free.find("c2").rf_exact is False and free.find("c0").rf_exact is True
    assert free.find("c0").rf_start == fixed[0].find("c0").rf_start
    assert free.total_params == fcn.count_params()


def test_table_and_json_show_unknown_sizes(fcn):
    info = inspect_model(fcn, unknown_sizes=True)
    text = format_table(info)
    assert "(None, None, None, 4)" in text and "input sizes are free" in text
    rows = json.loads(json.dumps(info.to_dicts()))
    assert rows[1]["output_shape"] == [None, None, None, 4]


def test_without_unknown_sizes_the_message_names_the_real_option(fcn):
    with pytest.raises(InputError, match=r"--input-shape H,W,C \(Python: input_shape="):
        inspect_model(fcn)


def test_cli_inspect_needs_no_input_shape(fcn, tmp_path, capsys):
    from convscope.present.cli import main

    path = tmp_path / "fcn.keras"
    fcn.save(path)
    assert main(["inspect", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["output_shape"] for r in rows if r["path"] == "head"] == [[None, 3]]
    assert main(["inspect", str(path)]) == 0
    assert "(None, None, None, 4)" in capsys.readouterr().out
    assert main(["inspect", str(path), "--input-shape", "40,40,3"]) == 0
    assert "(None, 38, 38, 4)" in capsys.readouterr().out


def test_model_that_cannot_run_at_the_probe_sizes_asks_for_them(tmp_path):
    inp = keras.Input((None, 3))
    model = keras.Model(inp, L.Reshape((4, 3))(inp), name="fixed_inside")
    with pytest.raises(InputError, match=r"--input-shape H,W,C \(Python: input_shape="):
        inspect_model(model, unknown_sizes=True)
