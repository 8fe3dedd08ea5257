"""Probe correctness on every model kind, against references computed independently.

The reference for each layer is obtained without the capture mechanism: by calling the layers
eagerly one after the other (by hand, following the model's structure), or, for one Conv2D, by a plain
numpy convolution. Tolerance: max abs diff <= 1e-5 (float32). These tests run on the active Keras
backend; tests/test_backends.py runs this file under JAX and torch too.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

from convscope.probe.extractor import Extractor  # noqa: E402

ATOL = 1e-5


def np_(t):
    return keras.ops.convert_to_numpy(t)


def close(a, b, atol=ATOL):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.max(np.abs(a - b)) <= atol, np.max(np.abs(a - b))


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def assert_untouched(model):
    """No capture wrapper remains and the model was not compiled."""
    for layer in model._flatten_layers(include_self=True):  # test-only use of a private helper
        assert "call" not in vars(layer), layer.name
    assert getattr(model, "optimizer", None) is None


def chain(layers, x):
    for layer in layers:
        x = layer(x, training=False)
    return x


def test_sequential_with_input_matches_numpy_conv():
    model = keras.Sequential([keras.Input((9, 9, 2)), L.Conv2D(3, 3, name="c0"), L.ReLU(name="r"), L.Conv2D(2, 2, strides=2, name="c1")])
    x = rand(4, 9, 9, 2)
    acts = Extractor(model)(x)
    assert list(acts) == ["c0", "c1"]
    # independent numpy reference for c0: valid cross-correlation + bias
    k, b = (np.asarray(w) for w in model.get_layer("c0").get_weights())
    ref = np.zeros((4, 7, 7, 3), np.float32)
    for i in range(7):
        for j in range(7):
            ref[:, i, j, :] = np.einsum("nhwc,hwco->no", x[:, i:i + 3, j:j + 3, :], k) + b
    close(acts["c0"], ref)
    close(acts["c1"], np_(chain(model.layers, x)))
    assert_untouched(model)


def test_sequential_with_input_shape_kwarg():
    model = keras.Sequential([L.Conv2D(4, 3, input_shape=(12, 12, 1), name="a"), L.MaxPooling2D(name="p"), L.Conv2D(5, 3, name="b")])
    x = rand(3, 12, 12, 1)
    acts = Extractor(model)(x)
    close(acts["a"], np_(model.layers[0](x)))
    close(acts["b"], np_(chain(model.layers, x)))


def test_unbuilt_sequential_given_input_shape():
    model = keras.Sequential([L.Conv2D(4, 3, name="a"), L.Conv2D(2, 3, activation="tanh", name="b")])
    assert not model.built
    ext = Extractor(model, input_shape=(10, 10, 3))
    x = rand(2, 10, 10, 3)
    acts = ext(x)
    close(acts["b"], np_(chain(model.layers, x)))


def test_unbuilt_sequential_first_layer_named_input_layer_is_not_renamed():
    model = keras.Sequential([L.Conv2D(4, 3, name="input_layer"), L.Conv2D(2, 3, name="b")])
    acts = Extractor(model, input_shape=(8, 8, 1))(rand(2, 8, 8, 1))
    assert [layer.name for layer in model.layers] == ["input_layer", "b"]
    close(acts["b"], np_(chain(model.layers, rand(2, 8, 8, 1))))


def test_loaded_keras_sequential(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, name="a"), L.Flatten(name="f"), L.Dense(3, name="d")])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = rand(5, 8, 8, 1)
    acts = Extractor(loaded, ["a", "d"])(x)
    close(acts["a"], np_(model.layers[0](x)))
    close(acts["d"], np_(chain(model.layers, x)))


def test_functional_branches_and_residual_add():
    inp = keras.Input((10, 10, 3))
    a = L.Conv2D(4, 3, padding="same", name="a")(inp)
    b1 = L.Conv2D(4, 1, name="b1")(a)
    b2 = L.Conv2D(4, 3, padding="same", name="b2")(a)
    s = L.Add(name="add")([a, b1, b2])
    out = L.Conv2D(2, 3, name="out")(L.ReLU(name="relu")(s))
    model = keras.Model(inp, out)
    x = rand(3, 10, 10, 3)
    acts = Extractor(model, ["a", "b1", "b2", "add", "out"])(x)
    ra = model.get_layer("a")(x)
    rb1, rb2 = model.get_layer("b1")(ra), model.get_layer("b2")(ra)
    rs = ra + rb1 + rb2
    close(acts["b2"], np_(rb2))
    close(acts["add"], np_(rs))
    close(acts["out"], np_(model.get_layer("out")(keras.ops.relu(rs))))


def test_nested_submodels_any_depth():
    deep = keras.Sequential([keras.Input((8, 8, 4)), L.Conv2D(4, 3, padding="same", name="deep_conv")], name="deep")
    mid_in = keras.Input((8, 8, 3))
    mid = keras.Model(mid_in, deep(L.Conv2D(4, 1, name="mid_conv")(mid_in)), name="mid")
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, L.Conv2D(2, 3, name="head")(mid(inp)), name="outer")
    x = rand(2, 8, 8, 3)
    ext = Extractor(model, ["mid/mid_conv", "mid/deep/deep_conv", "head"])
    acts = ext(x)
    assert list(acts) == ["mid/mid_conv", "mid/deep/deep_conv", "head"]
    r1 = mid.get_layer("mid_conv")(x)
    r2 = deep.get_layer("deep_conv")(r1)
    close(acts["mid/mid_conv"], np_(r1))
    close(acts["mid/deep/deep_conv"], np_(r2))
    close(acts["head"], np_(model.get_layer("head")(r2)))
    # default selection finds the nested conv layers too
    assert set(Extractor(model)(x)) == {"mid/mid_conv", "mid/deep/deep_conv", "head"}
    assert_untouched(model)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.c1 = L.Conv2D(4, 3, name="c1")
        self.bn = L.BatchNormalization(name="bn")
        self.c2 = L.Conv2D(3, 3, name="c2")
        self.pool = L.GlobalAveragePooling2D(name="gap")

    def call(self, x, training=False):
        h = keras.ops.relu(self.bn(self.c1(x), training=training))
        return self.pool(self.c2(h))


def test_subclassed_model():
    model = Subclassed()
    x = rand(3, 9, 9, 2)
    model(x)  # built by a first call, as users do
    acts = Extractor(model, ["c1", "bn", "c2", "gap"])(x)
    r1 = model.c1(x)
    rbn = model.bn(r1, training=False)
    r2 = model.c2(keras.ops.relu(rbn))
    close(acts["c1"], np_(r1))
    close(acts["bn"], np_(rbn))
    close(acts["gap"], np_(keras.ops.mean(r2, axis=(1, 2))))


class NoTrainingArg(keras.Model):
    """``call`` without a ``training`` argument: JAX's ``stateless_call`` must not be handed one."""

    def __init__(self):
        super().__init__(name="plain")
        self.c1 = L.Conv2D(4, 3, activation="relu", name="c1")
        self.c2 = L.Conv2D(5, 3, name="c2")
        self.gap = L.GlobalAveragePooling2D(name="gap")
        self.head = L.Dense(3, name="head")

    def call(self, x):
        return self.head(self.gap(self.c2(self.c1(x))))


def test_subclassed_model_whose_call_takes_no_training_argument():
    import convscope

    model = NoTrainingArg()
    x = rand(2, 10, 10, 1)
    model(x)
    acts = convscope.activations(model, x)  # the array is the batch: its shape gives the input shape
    r1 = model.c1(x)
    close(acts["c1"], np_(r1))
    close(acts["c2"], np_(model.c2(r1)))
    assert_untouched(model)


def test_layer_called_twice_reports_each_call():
    shared = L.Conv2D(3, 3, padding="same", name="shared")
    inp = keras.Input((6, 6, 3))
    h1 = shared(inp)
    h2 = shared(L.ReLU(name="relu")(h1))
    model = keras.Model(inp, h2)
    x = rand(2, 6, 6, 3)
    acts = Extractor(model, ["shared"])(x)
    assert list(acts) == ["shared@0", "shared@1"]
    r1 = shared(x)
    close(acts["shared@0"], np_(r1))
    close(acts["shared@1"], np_(shared(keras.ops.relu(r1))))


def test_multiple_inputs():
    a_in, b_in = keras.Input((8, 8, 1), name="a_in"), keras.Input((8, 8, 2), name="b_in")
    ca = L.Conv2D(2, 3, padding="same", name="ca")(a_in)
    cb = L.Conv2D(2, 3, padding="same", name="cb")(b_in)
    model = keras.Model([a_in, b_in], L.Conv2D(1, 1, name="mix")(L.Concatenate(name="cat")([ca, cb])))
    xa, xb = rand(3, 8, 8, 1), rand(3, 8, 8, 2, seed=1)
    acts = Extractor(model)([xa, xb])
    close(acts["cb"], np_(model.get_layer("cb")(xb)))
    cat = keras.ops.concatenate([model.get_layer("ca")(xa), model.get_layer("cb")(xb)], axis=-1)
    close(acts["mix"], np_(model.get_layer("mix")(cat)))


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: L.Conv1D(4, 3, name="k"), (20, 3)),
        (lambda: L.Conv3D(2, 3, name="k"), (6, 7, 8, 2)),
        (lambda: L.SeparableConv2D(4, 3, depth_multiplier=2, name="k"), (9, 9, 3)),
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=2, name="k"), (9, 9, 3)),
        (lambda: L.Conv2DTranspose(4, 3, strides=2, name="k"), (5, 5, 3)),
        (lambda: L.Conv2D(4, 3, dilation_rate=2, padding="same", name="k"), (9, 9, 3)),
    ],
    ids=["conv1d", "conv3d", "separable", "depthwise", "transpose", "dilated"],
)
def test_conv_layer_types(make, shape):
    layer = make()
    model = keras.Sequential([keras.Input(shape), layer, L.Activation("relu", name="act")])
    x = rand(2, *shape)
    acts = Extractor(model)(x)
    assert list(acts) == ["k"]
    close(acts["k"], np_(layer(x)))


def test_channels_first():
    model = keras.Sequential([
        keras.Input((3, 10, 10)),
        L.Conv2D(4, 3, data_format="channels_first", name="a"),
        L.MaxPooling2D(data_format="channels_first", name="p"),
        L.Conv2D(2, 2, data_format="channels_first", name="b"),
    ])
    x = rand(2, 3, 10, 10)
    if keras.backend.backend() == "tensorflow":
        # TensorFlow's CPU kernels refuse NCHW convolutions (Keras' own eager call fails the same way); the
        # numbers are checked on JAX and torch (tests/test_backends.py runs this file there). Here: the
        # probe reports TensorFlow's own error, unchanged, instead of wrong numbers.
        import tensorflow as tf

        with pytest.raises(tf.errors.UnimplementedError, match="NHWC"):
            model(x)
        with pytest.raises(tf.errors.UnimplementedError, match="NHWC"):
            Extractor(model)(x)
        return
    acts = Extractor(model)(x)
    assert acts["a"].shape == (2, 4, 8, 8)
    close(acts["b"], np_(chain(model.layers, x)))


def test_batchnorm_and_dropout_in_inference_mode():
    model = keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, name="c"), L.BatchNormalization(name="bn"), L.Dropout(0.9, name="drop")])
    bn = model.get_layer("bn")
    bn.set_weights([np.full(3, 2.0), np.full(3, 0.5), np.full(3, 0.3), np.full(3, 4.0)])  # gamma beta mean var
    x = rand(4, 6, 6, 2)
    acts = Extractor(model, ["c", "bn", "drop"])(x)
    expected = (acts["c"] - 0.3) / np.sqrt(4.0 + bn.epsilon) * 2.0 + 0.5
    close(acts["bn"], expected, atol=1e-5)
    close(acts["drop"], acts["bn"])  # dropout is the identity at inference


def test_batches_are_bounded_and_reused():
    model = keras.Sequential([keras.Input((5, 5, 1)), L.Conv2D(2, 3, name="c")])
    ext = Extractor(model, batch_size=4)
    x = rand(10, 5, 5, 1)
    sizes = [rows.stop - rows.start for rows, _ in ext.iter_batches(x)]
    assert sizes == [4, 4, 2]
    whole = ext(x)["c"]
    close(whole, np_(model.layers[0](x)))
    close(ext(x[:3])["c"], whole[:3])  # the same extractor serves other batch sizes
