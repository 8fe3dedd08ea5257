"""The Python API: activations() on paths, arrays, multi-input models; extractor caching."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

import convscope  # noqa: E402
from convscope.errors import InputError  # noqa: E402


def test_activations_default_layers_equal_keras_reference():
    model = convscope.load_model("mnist-cnn")
    x, _ = convscope.models.zoo.sample_digits()
    acts = convscope.activations(model, x[:5])
    assert list(acts) == ["conv_0", "conv_1"]
    ref = keras.Model(model.inputs, model.get_layer("conv_1").output)(x[:5])
    np.testing.assert_allclose(acts["conv_1"], keras.ops.convert_to_numpy(ref), atol=1e-5)
    single = convscope.activations(model, x[0])  # one sample without batch axis
    np.testing.assert_allclose(single["conv_1"][0], acts["conv_1"][0], atol=1e-6)


def test_batched_result_equals_unbatched():
    model = convscope.load_model("mnist-cnn")
    x = np.random.default_rng(0).random((37, 28, 28, 1)).astype("float32")
    small = convscope.activations(model, x, ["conv_1"], batch_size=8)["conv_1"]
    whole = convscope.activations(model, x, ["conv_1"], batch_size=64)["conv_1"]
    assert small.shape == (37, 24, 24, 64)
    np.testing.assert_allclose(small, whole, atol=1e-6)


def test_extractor_is_cached_per_model_and_layer_set():
    model = convscope.load_model("mnist-cnn")
    a = convscope.get_extractor(model, ["conv_0"])
    assert convscope.get_extractor(model, ["conv_0"]) is a
    assert convscope.get_extractor(model, ["conv_1"]) is not a


def test_multi_input_model_takes_a_list_of_arrays():
    a_in, b_in = keras.Input((6, 6, 1)), keras.Input((6, 6, 2))
    c = L.Conv2D(2, 3, name="ca")(a_in)
    d = L.Conv2D(2, 3, name="cb")(b_in)
    model = keras.Model([a_in, b_in], L.Add(name="add")([c, d]))
    xa = np.random.default_rng(1).random((4, 6, 6, 1)).astype("float32")
    xb = np.random.default_rng(2).random((4, 6, 6, 2)).astype("float32")
    acts = convscope.activations(model, [xa, xb], ["ca", "cb", "add"])
    np.testing.assert_allclose(acts["add"], acts["ca"] + acts["cb"], atol=1e-6)
    np.testing.assert_allclose(acts["cb"], keras.ops.convert_to_numpy(model.get_layer("cb")(xb)), atol=1e-5)
    with pytest.raises(InputError, match="2 inputs"):
        convscope.activations(model, xa)
