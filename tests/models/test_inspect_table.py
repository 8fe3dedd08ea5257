"""inspect_model on every Keras 3 model kind: shapes, parameters, paths, and the model left untouched."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from convscope.errors import ConvscopeError, InputError, LayerNotFound
from convscope.models.inspect import (
    ModelInfo,
    format_table,
    inspect_model,
    record_calls,
    record_output_shapes,
    resolve_input_shapes,
)
from convscope.models.tree import layer_tree

L = keras.layers


# ---------------------------------------------------------------- tiny seeded models


def sequential_with_input() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            L.Conv2D(4, 3, name="conv_a"),
            L.BatchNormalization(name="bn"),
            L.ReLU(name="relu"),
            L.MaxPooling2D(2, name="pool"),
            L.Conv2D(6, 3, padding="same", strides=2, name="conv_b"),
            L.Flatten(name="flat"),
            L.Dense(5, name="dense"),
        ],
        name="seq_input",
    )


def sequential_input_shape_kwarg() -> keras.Model:
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():  # Keras prefers keras.Input; the kwarg form is still in tutorials
        warnings.simplefilter("ignore")
        first = L.Conv2D(3, 3, input_shape=(10, 10, 1), name="first")
    return keras.Sequential([first, L.AveragePooling2D(2, name="avg"), L.GlobalMaxPooling2D(name="gmp")])


def functional_residual() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="stem")(inp)
    a = L.Conv2D(8, 3, padding="same", name="branch_a")(x)
    b = L.DepthwiseConv2D(5, padding="same", name="branch_b")(x)
    x = L.Add(name="res_add")([x, a, b])
    x = L.SeparableConv2D(4, 3, strides=2, name="sep")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(2, name="head")(x), name="functional_res")


def nested_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inner_in = keras.Input((8, 8, 4))
    y = L.Conv2D(4, 3, padding="same", name="inner_conv")(inner_in)
    y = L.Conv2D(4, 3, strides=2, name="inner_down")(y)
    inner = keras.Model(inner_in, y, name="backbone")
    block = keras.Sequential([L.Conv2D(2, 1, name="pw"), L.ReLU(name="act")], name="block")
    inp = keras.Input((10, 10, 3))
    x = L.Conv2D(4, 3, name="pre")(inp)
    x = inner(x)
    x = block(x)
    return keras.Model(inp, L.Flatten(name="flat")(x), name="outer")


def shared_layer_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((9, 9, 4))
    shared = L.Conv2D(4, 3, padding="same", name="shared")
    x = shared(inp)
    x = L.ReLU(name="relu")(x)
    x = shared(x)
    return keras.Model(inp, L.Conv2D(2, 3, name="out")(x), name="twice")


class SubclassedNet(keras.Model):
    """A subclassed CNN with a residual add written as a layer and a layer called twice."""

    def __init__(self) -> None:
        super().__init__(name="subnet")
        self.conv1 = L.Conv2D(4, 3, padding="same", name="conv1")
        self.conv2 = L.Conv2D(4, 3, padding="same", name="conv2")
        self.add = L.Add(name="add")
        self.pool = L.MaxPooling2D(2, name="pool")
        self.act = L.ReLU(name="act")
        self.head = L.Dense(3, name="head")
        self.flat = L.Flatten(name="flat")

    def call(self, x: object) -> object:
        y = self.act(self.conv1(x))
        y = self.add([y, self.conv2(y)])
        y = self.act(self.pool(y))
        return self.head(self.flat(y))


def subclassed() -> keras.Model:
    keras.utils.set_random_seed(0)
    return SubclassedNet()


def _snapshot(model: keras.Model) -> dict[str, object]:
    nodes = layer_tree(model)
    return {
        "names": [n.path for n in nodes],
        "built": [bool(n.layer.built) for n in nodes] + [bool(model.built)],
        "weights": model.get_weights(),
        "instance_keys": [sorted(vars(n.layer)) for n in nodes] + [sorted(vars(model))],
        "compiled": getattr(model, "optimizer", None),
    }


def _assert_unchanged(model: keras.Model, before: dict[str, object]) -> None:
    after = _snapshot(model)
    assert after["names"] == before["names"]
    assert after["built"] == before["built"]
    assert after["instance_keys"] == before["instance_keys"]
    assert after["compiled"] is before["compiled"]
    assert len(after["weights"]) == len(before["weights"])  # type: ignore[arg-type]
    for old, new in zip(before["weights"], after["weights"]):  # type: ignore[call-overload]
        np.testing.assert_array_equal(old, new)
    for node in layer_tree(model):
        assert "call" not in vars(node.layer)
        assert "quantized_call" not in vars(node.layer)


def _eager_shapes(layers: list[keras.layers.Layer], x: Any) -> list[tuple]:
    shapes = []
    for layer in layers:
        x = layer(x)
        shapes.append((None, *tuple(x.shape)[1:]))
    return shapes


def _check_common(model: keras.Model, info: ModelInfo) -> None:
    top = [r for r in info.layers if r.depth == 0]
    assert sum(r.params for r in top) == model.count_params() == info.total_params
    assert info.trainable_params <= info.total_params
    dicts = info.to_dicts()
    json.dumps(dicts)
    for row in dicts:
        for key in (
            "path",
            "class",
            "output_shape",
            "params",
            "kernel",
            "strides",
            "padding",
            "dilation",
            "rf_size",
            "rf_jump",
            "rf_start",
            "rf_exact",
            "depth",
            "trainable",
            "call",
        ):
            assert key in row
        assert row["output_shape"] is None or row["output_shape"][0] is None
    text = format_table(info)
    assert all(r.path.rsplit("/", 1)[-1] in text for r in info.layers)
    assert f"{info.total_params:,}" in text


# ---------------------------------------------------------------- the model kinds


def test_sequential_with_input() -> None:
    model = sequential_with_input()
    before = _snapshot(model)
    info = inspect_model(model)
    _assert_unchanged(model, before)
    _check_common(model, info)
    assert info.kind == "sequential" and info.input_shape == (None, 12, 12, 3)
    expected = _eager_shapes(model.layers, np.zeros((1, 12, 12, 3), "float32"))
    assert [r.output_shape for r in info.layers] == expected
    conv_b = info.find("conv_b")
    assert conv_b.kernel == (3, 3) and conv_b.strides == (2, 2) and conv_b.padding == "same"
    # conv3 (r3) -> pool2 (r4, j2) -> conv3 s2 same on 5x5: r = 4 + 2*2 = 8, j 4
    assert conv_b.rf_size == (8, 8) and conv_b.rf_jump == (4, 4) and conv_b.rf_exact
    assert info.find("bn").params == 4 * 4 and info.find("flat").rf_size is None


def test_sequential_with_input_shape_kwarg() -> None:
    model = sequential_input_shape_kwarg()
    before = _snapshot(model)
    info = inspect_model(model)
    _assert_unchanged(model, before)
    _check_common(model, info)
    assert [r.output_shape for r in info.layers] == [(None, 8, 8, 3), (None, 4, 4, 3), (None, 3)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras saving code
def test_sequential_round_tripped_through_keras_file(tmp_path: Path) -> None:
    path = tmp_path / "seq.keras"
    sequential_with_input().save(path)
    model = keras.saving.load_model(path)
    before = _snapshot(model)
    info = inspect_model(model)
    _assert_unchanged(model, before)
    _check_common(model, info)
    assert info.find("conv_b").rf_size == (8, 8)
    assert info.layers[-1].output_shape == (None, 5)


def test_functional_branch_and_residual_add() -> None:
    model = functional_residual()
    before = _snapshot(model)
    config_before = model.get_config()
    info = inspect_model(model)
    _assert_unchanged(model, before)
    assert model.get_config() == config_before
    _check_common(model, info)
    assert info.kind == "functional"
    for row in info.layers:
        assert row.output_shape == tuple(model.get_layer(row.path).output.shape)
    assert info.find("res_add").rf_size == (7, 7)  # hull of stem (3), stem+conv3 (5) and stem+depthwise5 (7)
    assert info.find("sep").rf_size == (9, 9) and info.find("sep").rf_jump == (2, 2)
    assert info.find("branch_b").params == 5 * 5 * 8 + 8


def test_nested_sub_models() -> None:
    model = nested_model()
    before = _snapshot(model)
    info = inspect_model(model)
    _assert_unchanged(model, before)
    _check_common(model, info)
    paths = [r.path for r in info.layers]
    assert paths == [
        "pre",
        "backbone",
        "backbone/inner_conv",
        "backbone/inner_down",
        "block",
        "block/pw",
        "block/act",
        "flat",
    ]
    backbone = model.get_layer("backbone")
    assert info.find("backbone/inner_down").output_shape == tuple(
        backbone.get_layer("inner_down").output.shape
    )
    assert info.find("backbone/inner_conv").depth == 1
    assert info.find("backbone").params == backbone.count_params()
    # inner layers see the outer receptive field: pre (3) -> inner_conv (5) -> inner_down k3 s2 (7)
    assert info.find("backbone/inner_conv").rf_size == (5, 5)
    assert info.find("backbone").rf_size == info.find("backbone/inner_down").rf_size == (7, 7)
    assert info.find("block/act").rf_size == (7, 7) and info.find("block/act").rf_jump == (2, 2)


def test_subclassed_model() -> None:
    model = subclassed()
    info = inspect_model(model, input_shape=(8, 8, 3))  # unbuilt + shape given: building is allowed
    assert model.built
    before = _snapshot(model)
    again = inspect_model(model)  # now built: the shape it was built with is found
    _assert_unchanged(model, before)
    assert again == info
    _check_common(model, info)
    assert info.kind == "subclassed"
    x = np.zeros((1, 8, 8, 3), "float32")
    c1 = model.conv1(x)
    a1 = model.act(c1)
    c2 = model.conv2(a1)
    p = model.pool(model.add([a1, c2]))
    a2 = model.act(p)
    expected = {
        "conv1": c1,
        "conv2": c2,
        "pool": p,
        "flat": model.flat(a2),
        "head": model.head(model.flat(a2)),
    }
    for path, tensor in expected.items():
        assert info.find(path).output_shape == (None, *tuple(tensor.shape)[1:])
    acts = [r for r in info.layers if r.path == "act"]
    assert [r.call for r in acts] == [0, 1] and [r.output_shape for r in acts] == [
        (None, 8, 8, 4),
        (None, 4, 4, 4),
    ]
    assert acts[1].params == 0
    # traced through tensors: conv1 3, conv2 5 -> add 5 -> pool 6 (j 2); all exact
    assert info.find("add").rf_size == (5, 5) and info.find("act", 1).rf_size == (6, 6)
    assert all(r.rf_exact for r in info.layers)
    assert info.notes


class _PlainCodeNet(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = L.Conv2D(2, 3)
        self.c2 = L.Conv2D(2, 3)

    def call(self, x: object) -> object:
        return self.c2(keras.ops.relu(self.c1(x)) * 2.0)


def test_subclassed_plain_code_between_layers_is_flagged() -> None:
    info = inspect_model(_PlainCodeNet(), input_shape=(9, 9, 1))
    assert info.layers[0].rf_exact and not info.layers[1].rf_exact
    assert info.layers[1].rf_size == (5, 5)  # still the best guess: the previous call's output


def test_layer_called_twice() -> None:
    model = shared_layer_model()
    before = _snapshot(model)
    info = inspect_model(model)
    _assert_unchanged(model, before)
    _check_common(model, info)
    shared = [r for r in info.layers if r.path == "shared"]
    assert [r.call for r in shared] == [0, 1]
    assert [r.rf_size for r in shared] == [(3, 3), (5, 5)]
    assert shared[0].params == model.get_layer("shared").count_params() and shared[1].params == 0
    assert record_output_shapes(model)["shared"] == [(None, 9, 9, 4), (None, 9, 9, 4)]
    assert info.find("out").rf_size == (7, 7)
    assert "shared (call 2)" in format_table(info)


def test_unbuilt_sequential_is_built_only_with_a_shape() -> None:
    model = keras.Sequential([L.Conv2D(2, 3), L.Flatten()])
    with pytest.raises(InputError, match="input_shape"):
        inspect_model(model)
    assert not model.built
    info = inspect_model(model, input_shape=(6, 6, 1))
    assert info.layers[0].output_shape == (None, 4, 4, 2) and info.total_params == 2 * 9 + 2


# ---------------------------------------------------------------- errors and helpers


def test_subclassed_without_input_shape_raises() -> None:
    model = subclassed()
    with pytest.raises(InputError, match="input shape") as excinfo:
        inspect_model(model)
    assert isinstance(excinfo.value, ConvscopeError)
    assert "input_shape=" in str(excinfo.value)
    assert not model.built


@pytest.mark.parametrize(
    "make,shape,message",
    [
        (sequential_with_input, (10, 10, 3), "contradicts"),
        (sequential_with_input, (12, 3), "does not fit"),
        (sequential_with_input, "abc", "input_shape must be"),
        (lambda: keras.Sequential([keras.Input((None, None, 1)), L.Conv2D(1, 3)]), None, "unknown sizes"),
    ],
)
def test_bad_input_shapes(make: Callable[[], keras.Model], shape: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        inspect_model(make(), input_shape=shape)


def test_input_shape_forms() -> None:
    model = keras.Sequential([keras.Input((None, None, 1)), L.Conv2D(1, 3)])
    assert resolve_input_shapes(model, (7, 9, 1)) == ((None, 7, 9, 1),)
    assert resolve_input_shapes(model, (None, 7, 9, 1)) == ((None, 7, 9, 1),)
    assert inspect_model(model, (8, 8, 1)).layers[0].output_shape == (None, 6, 6, 1)


def test_model_that_fails_on_the_shape_raises_input_error() -> None:
    with pytest.raises(InputError, match="failed"):
        inspect_model(subclassed(), input_shape=(8, 8))


def test_record_calls_restores_on_error() -> None:
    model = subclassed()
    with pytest.raises(InputError):
        record_calls(model, input_shape=(8, 8))
    assert all("call" not in vars(n.layer) for n in layer_tree(model))


def test_multi_input_model() -> None:
    a, b = keras.Input((8, 8, 1)), keras.Input((8, 8, 2))
    x = L.Concatenate(name="cat")(
        [L.Conv2D(2, 3, padding="same", name="ca")(a), L.Conv2D(2, 5, padding="same", name="cb")(b)]
    )
    info = inspect_model(keras.Model([a, b], L.Conv2D(1, 1, name="mix")(x)))
    assert info.input_shapes == ((None, 8, 8, 1), (None, 8, 8, 2))
    assert info.find("cat").rf_size == (5, 5) and info.find("cat").output_shape == (None, 8, 8, 4)


def test_find_unknown_path_suggests() -> None:
    info = inspect_model(sequential_with_input())
    with pytest.raises(LayerNotFound, match="conv_a"):
        info.find("conv_x")


def test_format_table_alignment() -> None:
    info = inspect_model(functional_residual())
    lines = format_table(info).splitlines()
    header, rule = lines[0], lines[1]
    assert header.startswith("layer") and set(rule) == {"-"}
    body = lines[2 : 2 + len(info.layers)]
    col = header.index("class")
    assert all(line[col - 2 : col] == "  " for line in body)


def test_existing_instance_call_attribute_is_restored() -> None:
    model = sequential_with_input()
    layer = model.get_layer("relu")
    seen: list[int] = []
    original = layer.call

    def user_patch(*args: Any, **kwargs: Any) -> Any:
        seen.append(1)
        return original(*args, **kwargs)

    vars(layer)["call"] = user_patch
    try:
        inspect_model(model)
        assert vars(layer)["call"] is user_patch and seen  # the user's own patch ran and is back in place
    finally:
        del vars(layer)["call"]
