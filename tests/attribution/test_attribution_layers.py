"""Target-layer choice and model kinds: automatic choice, nested paths, subclassed models, and the errors
(non-spatial layer, no spatial layer, non-differentiable path) — every backend."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

import attrib_refs as ref  # noqa: E402

from convscope.attribution import cam  # noqa: E402
from convscope.errors import AttributionError, LayerNotFound  # noqa: E402

X8 = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")


def test_auto_layer_on_mnist_is_the_last_conv(mnist, digits):
    """conv_1 -> pool -> dropout_0 -> flatten: pooling and dropout are skipped."""
    assert cam(mnist, digits[0][:2]).layer == "conv_1"


def test_auto_layer_avoids_a_1x1_class_map_conv():
    """All-convolutional head: a 1x1 conv with one channel per class, then only GAP and softmax."""
    inp = keras.Input((8, 8, 3))
    h = L.Conv2D(6, 3, padding="same", activation="relu", name="features")(inp)
    h = L.Conv2D(5, 1, name="class_map")(h)
    model = keras.Model(inp, L.Softmax()(L.GlobalAveragePooling2D()(h)))
    res = cam(model, X8)
    assert res.layer == "features" and res.used_logits


def test_auto_layer_with_a_mobilenetv3_style_head():
    """features -> GAP(keepdims) -> 1x1 conv -> 1x1 conv (classes) -> flatten -> softmax: 1x1 maps skipped."""
    inp = keras.Input((8, 8, 3))
    h = L.Conv2D(6, 3, padding="same", activation="relu", name="features")(inp)
    h = L.GlobalAveragePooling2D(keepdims=True)(h)
    h = L.Conv2D(8, 1, activation="relu", name="head_conv")(h)
    h = L.Conv2D(4, 1, name="logits")(h)
    model = keras.Model(inp, L.Activation("softmax")(L.Flatten()(h)))
    assert cam(model, X8).layer == "features"


def test_a_conv_with_as_many_channels_as_classes_is_kept_when_a_dense_follows():
    """Also: an unbuilt Sequential (no Input) is built by its first call on the images."""
    model = keras.Sequential([L.Conv2D(5, 3, activation="relu", name="conv5"), L.Flatten(),
                              L.Dense(5, activation="softmax", name="head")])
    assert not model.built
    res = cam(model, X8)
    assert res.layer == "conv5" and res.used_logits and model.built


def test_nested_paths_and_containers():
    inner = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, activation="relu", name="conv")], name="inner")
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, L.Dense(3, activation="softmax", name="head")(L.GlobalAveragePooling2D()(inner(inp))),
                        name="outer")
    auto = cam(model, X8, target=1)
    by_path = cam(model, X8, layer="inner/conv", target=1)
    container = cam(model, X8, layer="inner", target=1)
    assert auto.layer == by_path.layer == "inner/conv" and container.layer == "inner"
    np.testing.assert_allclose(container.raw, by_path.raw, rtol=1e-5, atol=1e-7)
    assert auto.used_logits


class Net(keras.Model):
    def __init__(self) -> None:
        super().__init__(name="net")
        self.conv = L.Conv2D(4, 3, activation="relu", name="conv")
        self.pool = L.GlobalAveragePooling2D(name="gap")
        self.head = L.Dense(3, activation="softmax", name="head")

    def call(self, x, training=None):  # Keras convention; JAX's stateless_call passes training=False
        return self.head(self.pool(self.conv(x)))


def test_subclassed_model_gradcam_is_cam():
    net = Net()
    net(X8)
    res = cam(net, X8, target=[0, 2])
    act = ref.to_numpy(net.conv(X8)).astype(np.float64)
    kernel = ref.weights(net.head)[0]
    expected = np.maximum(np.einsum("nhwk,kn->nhw", act, kernel[:, [0, 2]]) / 36.0, 0)
    assert res.layer == "conv" and res.used_logits
    np.testing.assert_allclose(res.raw, expected, rtol=1e-5, atol=1e-6)


def test_non_spatial_layer_is_refused_with_the_spatial_ones_listed(mnist, digits):
    with pytest.raises(AttributionError, match=r"layer 'dense_0' \(Dense\) has output shape \(N, 128\), not a 2D "
                       r"spatial map .* layers with spatial outputs: conv_0, conv_1, pool, dropout_0"):
        cam(mnist, digits[0][:1], layer="dense_0")


def test_unknown_and_ambiguous_layers(mnist, digits):
    with pytest.raises(LayerNotFound, match=r"no layer 'conv_9'.*conv_0"):
        cam(mnist, digits[0][:1], layer="conv_9")
    with pytest.raises(AttributionError, match=r"layer selector 'conv_\*' matches 2 layers \(conv_0, conv_1\)"):
        cam(mnist, digits[0][:1], layer="conv_*")


def test_model_without_spatial_layer():
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Flatten(name="flat"), L.Dense(3, name="d")], name="flatnet")
    with pytest.raises(AttributionError, match=r"model 'flatnet' has no layer with a 2D spatial output.*saliency"):
        cam(model, X8)
    assert cam(model, X8, "saliency").maps.shape == (2, 8, 8)  # input methods still work


class OneHotArgmax(keras.layers.Layer):
    """Replaces scores by a one-hot of their argmax: no gradient flows through."""

    def call(self, x):
        return keras.ops.one_hot(keras.ops.argmax(x, axis=-1), 3)


def test_non_differentiable_path_is_reported():
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, name="conv"), L.Flatten(), L.Dense(3),
                              OneHotArgmax(name="hard")], name="hardnet")
    with pytest.raises(AttributionError, match=r"gradient of the target score with respect to layer 'conv' is "
                       r"zero everywhere .* not differentiable"):
        cam(model, X8)
    with pytest.raises(AttributionError, match=r"with respect to the input is zero everywhere"):
        cam(model, X8, "saliency")
