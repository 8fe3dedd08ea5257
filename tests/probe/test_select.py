"""Layer selection: paths, indices, bare names, globs, classes, and errors that teach."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")
L = keras.layers

from convscope.errors import ConvscopeError, LayerNotFound  # noqa: E402
from convscope.models.tree import layer_tree  # noqa: E402
from convscope.probe.select import select_layers  # noqa: E402


@pytest.fixture(scope="module")
def nodes():
    inner = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, name="block1_conv1"), L.Conv2D(4, 3, name="block1_conv2")], name="backbone")
    inp = keras.Input((8, 8, 3))
    x = inner(inp)
    x = L.DepthwiseConv2D(3, name="dw")(x)
    x = L.Flatten(name="flat")(x)
    out = L.Dense(2, name="head")(x)
    return layer_tree(keras.Model(inp, out, name="net"))


def paths(selected):
    return [n.path for n in selected]


def test_tree_paths_and_order(nodes):
    assert paths(nodes) == ["backbone", "backbone/block1_conv1", "backbone/block1_conv2", "dw", "flat", "head"]
    assert nodes[0].children == ("backbone/block1_conv1", "backbone/block1_conv2")
    assert [n.depth for n in nodes] == [0, 1, 1, 0, 0, 0]


def test_default_is_every_conv_layer_including_nested(nodes):
    assert paths(select_layers(nodes, None)) == ["backbone/block1_conv1", "backbone/block1_conv2", "dw"]


@pytest.mark.parametrize(
    "selector, expected",
    [
        ("backbone/block1_conv2", ["backbone/block1_conv2"]),
        ("block1_conv2", ["backbone/block1_conv2"]),  # unique bare name
        (3, ["dw"]),
        ("-1", ["head"]),
        ("backbone/*", ["backbone/block1_conv1", "backbone/block1_conv2"]),
        ("class:Conv2D", ["backbone/block1_conv1", "backbone/block1_conv2"]),
        ("class:*Conv*", ["backbone/block1_conv1", "backbone/block1_conv2", "dw"]),
        ("Dense", ["head"]),
        ("backbone", ["backbone"]),
    ],
)
def test_selectors(nodes, selector, expected):
    assert paths(select_layers(nodes, selector)) == expected


def test_several_selectors_deduplicate_in_model_order(nodes):
    assert paths(select_layers(nodes, ["head", "dw", "class:DepthwiseConv2D"])) == ["dw", "head"]


def test_unknown_layer_lists_nearest_paths(nodes):
    with pytest.raises(LayerNotFound) as err:
        select_layers(nodes, "block1_conv3", model_name="net")
    msg = str(err.value)
    assert "'block1_conv3'" in msg and "backbone/block1_conv1" in msg and "net" in msg
    assert isinstance(err.value, ConvscopeError)


def test_index_out_of_range_names_valid_range(nodes):
    with pytest.raises(LayerNotFound, match=r"index 17 .* 0\.\.5"):
        select_layers(nodes, 17)


def test_unknown_class_lists_classes(nodes):
    with pytest.raises(LayerNotFound, match="Conv2D"):
        select_layers(nodes, "class:LSTM")


def test_model_without_conv_layers_needs_explicit_choice():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d")])
    with pytest.raises(LayerNotFound, match=r"no convolution layer.*d"):
        select_layers(layer_tree(model), None)
