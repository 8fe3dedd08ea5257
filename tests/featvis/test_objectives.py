"""Objectives: arithmetic on known activations (hand-computed), batch semantics, logits, parsing."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.errors import LayerNotFound, OptionError
from convscope.featvis import (
    channel,
    channels,
    class_logit,
    l2,
    layer_mean,
    neuron,
    objective_values,
    parse_objective,
    total_variation,
)

keras = pytest.importorskip("keras")
L = keras.layers

# two 2x2 images with 3 channels; the identity layer "a" outputs them unchanged
X = np.zeros((2, 2, 2, 3), np.float32)
X[0, :, :, 0] = [[1, 2], [3, 4]]  # mean 2.5
X[0, :, :, 1] = 1  # mean 1
X[0, :, :, 2] = [[0, 0], [0, 8]]  # mean 2
X[1, :, :, 1] = [[1, 0], [0, 0]]  # mean 0.25
X[1, :, :, 2] = 2  # mean 2


@pytest.fixture(scope="module")
def tiny():
    inp = keras.Input((2, 2, 3))
    a = L.Activation("linear", name="a")(inp)
    c = L.Conv2D(2, 1, name="c")(a)
    out = L.Dense(3, activation="softmax", name="out")(L.Flatten(name="flat")(c))
    return keras.Model(inp, out, name="tiny")


def values(model, obj, x=X):
    return objective_values(model, obj, x)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: channel("a", 0), [2.5, 0.0]),
        (lambda: channel("a", 0) + 2 * channel("a", 1) - 0.5 * channel("a", 2), [3.5, -0.5]),
        (lambda: channel("a", 0) * channel("a", 1), [2.5, 0.0]),
        (lambda: -channel("a", 0) + 1, [-1.5, 1.0]),
        (lambda: 1 - channel("a", 2) / 2, [0.0, 0.0]),
        (lambda: channel("a", 1) * 4 - channel("a", 1), [3.0, 0.75]),
        (lambda: neuron("a", 2, 1, 1), [8.0, 2.0]),
        (lambda: neuron("a", 0, 0, 1), [2.0, 0.0]),
        (lambda: layer_mean("a"), [(10 + 4 + 8) / 12, (1 + 8) / 12]),
        (lambda: channels("a", [0, 2]), [2.5, 2.0]),
        (lambda: channels("a", [1, 1]) + channel("a", 0), [3.5, 0.25]),
    ],
)
def test_arithmetic_on_known_activations(tiny, make, expected):
    np.testing.assert_allclose(values(tiny, make()), expected, atol=1e-5)


def test_regularizers_match_numpy(tiny):
    tv = np.abs(np.diff(X, axis=1)).mean(axis=(1, 2, 3)) + np.abs(np.diff(X, axis=2)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(values(tiny, total_variation()), tv, atol=1e-5)
    np.testing.assert_allclose(values(tiny, l2()), ((X - 0.5) ** 2).mean(axis=(1, 2, 3)), atol=1e-5)
    np.testing.assert_allclose(values(tiny, channel("a", 0) - 0.1 * total_variation()), [2.5, 0] - 0.1 * tv, atol=1e-5)


@pytest.mark.parametrize("head", ["dense_softmax", "softmax_layer", "activation_layer", "linear"])
def test_class_logit_bypasses_the_softmax_without_touching_the_model(head):
    inp = keras.Input((2, 2, 1))
    flat = L.Flatten()(inp)
    if head == "dense_softmax":
        out = L.Dense(3, activation="softmax", name="d")(flat)
    else:
        z = L.Dense(3, name="d")(flat)
        heads = {"softmax_layer": L.Softmax(), "activation_layer": L.Activation("softmax"), "linear": L.Identity()}
        out = heads[head](z)
    model = keras.Model(inp, out)
    kernel, bias = model.get_layer("d").get_weights()
    x = np.random.default_rng(0).uniform(size=(4, 2, 2, 1)).astype(np.float32)
    logits = x.reshape(4, 4) @ kernel + bias
    np.testing.assert_allclose(values(model, class_logit(2), x), logits[:, 2], atol=1e-5)
    np.testing.assert_allclose(values(model, "logit:0 - logit:1", x), logits[:, 0] - logits[:, 1], atol=1e-5)
    assert model.get_layer("d").activation.__name__ == ("softmax" if head == "dense_softmax" else "linear")
    assert all("call" not in vars(layer) for layer in model.layers)


def test_parsed_strings_equal_the_built_objectives(tiny):
    cases = {
        "a:0": [2.5, 0.0],
        "a:0 + 2*a:1 - 0.5*a:2": [3.5, -0.5],
        "-a:0+a:2": [-0.5, 2.0],
        "a:2@1,1 / 2": [4.0, 1.0],
        "a:mean": [22 / 12, 9 / 12],
        "0.5 * a:0 * 2": [2.5, 0.0],
        "1e-1*a:2": [0.2, 0.2],
    }
    for text, expected in cases.items():
        obj = parse_objective(text, tiny)
        np.testing.assert_allclose(values(tiny, obj), expected, atol=1e-5, err_msg=text)
    assert parse_objective("conv_1:7 + 0.5*conv_0:3").name == "(conv_1:7 + 0.5*conv_0:3)"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a:0 % 2", r"unexpected '%' at position 4"),
        ("a:0 +", "unexpected the end"),
        ("a:0 a:1", r"unexpected 'a:1' at position 4"),
        ("a", "needs a channel"),
        ("a:x", "bad channel 'x'"),
        ("logit:x", "bad class"),
        ("2*3", "is a constant"),
        ("   ", "non-empty"),
        ("a:0 / a:1", "divide by a non-zero number"),
    ],
)
def test_parse_errors_name_the_bad_token(tiny, text, match):
    with pytest.raises(OptionError, match=match):
        parse_objective(text, tiny)


def test_unknown_layer_lists_valid_paths(tiny):
    with pytest.raises(LayerNotFound) as err:
        parse_objective("a:0 + conv_9:3", tiny)
    msg = str(err.value)
    assert "'conv_9'" in msg and "'conv_9:3'" in msg and "valid layer paths: a, c, flat, out" in msg
    with pytest.raises(LayerNotFound, match="valid layer paths: a, c"):
        values(tiny, channel("nope", 0))


def test_channel_out_of_range_and_bad_combinations(tiny):
    with pytest.raises(OptionError, match=r"channel 5 is out of range for layer 'a' with 3 channels \(valid: 0..2\)"):
        values(tiny, channel("a", 5))
    with pytest.raises(OptionError, match="batch"):
        channels("a", [0, 1]) + channels("a", [0, 1, 2])
    with pytest.raises(OptionError, match="integer >= 0"):
        channel("a", -1)
    with pytest.raises(OptionError, match="cannot combine"):
        channel("a", 0) + "a:1"
    with pytest.raises(OptionError, match="out of range: the model has 3 classes"):
        values(tiny, class_logit(3))


def test_batched_objective_carries_labels_and_structure_keys():
    obj = channels("conv_1", [3, 5, 6])
    assert obj.batch == 3 and obj.labels == ("3", "5", "6") and obj.name == "conv_1:[3,5-6]"
    assert (2 * obj + channel("conv_1", 1)).batch == 3
    assert channel("c", 1).key == channel("c", 1).key != channel("c", 2).key
