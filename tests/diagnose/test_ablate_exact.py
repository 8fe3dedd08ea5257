"""``ablate`` against a plain Keras reference: one full-model evaluation per channel on a modified copy.

The reference removes channel ``c`` of layer L by editing a copy's weights (kernel column ``c`` zeroed, bias
``c`` set to the replacement value: L's ReLU then outputs exactly that value everywhere, as the values are
>= 0), bypasses the output softmax by setting the copy's last activation to linear, runs the whole copy
once per channel, and reduces the effects in float64 numpy over the whole dataset at once. Tolerance:
1e-5 relative, against the scale of the logits (float32 forward passes on both sides).
"""

from __future__ import annotations

import numpy as np
import pytest

N, SIZE, CLASSES = 48, 10, 3


def _sequential():
    import keras

    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c0"),
            keras.layers.Conv2D(6, 3, activation="relu", name="L", bias_initializer="random_uniform"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Dropout(0.3, name="drop"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(8, activation="relu", name="d0"),
            keras.layers.Dense(CLASSES, activation="softmax", name="out"),
        ],
        name="seq",
    )


def _functional(skip: bool):
    import keras

    inp = keras.Input((SIZE, SIZE, 1))
    a = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c0")(inp)
    b = keras.layers.Conv2D(
        6, 3, padding="same", activation="relu", name="L", bias_initializer="random_uniform"
    )(a)
    h = keras.layers.Add(name="add")([a, b]) if skip else b
    h = keras.layers.AveragePooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = keras.layers.Dense(CLASSES, activation="softmax", name="out")(h)
    return keras.Model(inp, out, name="skip" if skip else "fun")


@pytest.fixture(scope="module")
def models():
    import keras

    keras.utils.set_random_seed(3)
    return {"seq": _sequential(), "fun": _functional(False), "skip": _functional(True)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(7)
    x = rng.random((N, SIZE, SIZE, 1), dtype=np.float32)
    y = rng.integers(0, CLASSES, N)
    path = tmp_path_factory.mktemp("ablate") / "data.npz"
    np.savez(path, x=x, y=y)
    return x, y, path


def _logits(model, x):
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.get_layer("out").activation = keras.activations.linear
    return copy


def reference(model, x, y, values):
    """float64 effects from one full evaluation of a modified copy per channel."""
    copy = _logits(model, x)
    layer = copy.get_layer("L")
    kernel, bias = (w.copy() for w in layer.get_weights())
    base = np.asarray(copy(x), np.float64)
    ablated = []
    for c in range(kernel.shape[-1]):
        k2, b2 = kernel.copy(), bias.copy()
        k2[..., c], b2[c] = 0.0, values[c]
        layer.set_weights([k2, b2])
        ablated.append(np.asarray(copy(x), np.float64))
    layer.set_weights([kernel, bias])
    ablated = np.stack(ablated)  # (C, N, K)
    change = ablated - base[None]
    own = np.stack([change[:, y == k, k].mean(axis=1) for k in range(CLASSES)], axis=1)
    correct = np.stack([(ablated[:, y == k].argmax(-1) == k).mean(axis=1) for k in range(CLASSES)], axis=1)
    return {
        "delta_logit": change.mean(axis=1),
        "delta_own": own,
        "accuracy": correct,
        "base_accuracy": np.array([(base[y == k].argmax(-1) == k).mean() for k in range(CLASSES)]),
        "scale": np.abs(base).max(),
    }


def channel_means(model, x):
    import keras

    prefix = keras.Model(model.inputs, model.get_layer("L").output)
    return np.asarray(prefix([x]), np.float64).mean(axis=(0, 1, 2))


def check(result, ref):
    tol = 1e-5 * ref["scale"]
    np.testing.assert_allclose(result.delta_logit, ref["delta_logit"], rtol=1e-5, atol=tol)
    np.testing.assert_allclose(result.delta_own, ref["delta_own"], rtol=1e-5, atol=tol)
    np.testing.assert_array_equal(result.accuracy, ref["accuracy"])
    np.testing.assert_array_equal(result.base_accuracy, ref["base_accuracy"])


@pytest.mark.parametrize(
    ("kind", "route", "mode"),
    [
        ("seq", "delta", "zero"),
        ("seq", "delta", "mean"),
        ("seq", "graph", "mean"),
        ("seq", "patch", "zero"),
        ("fun", None, "mean"),
        ("skip", None, "zero"),
    ],
)
def test_ablation_matches_full_model_reference(models, data, kind, route, mode):
    from convscope.diagnose import ablate

    model = models[kind]
    x, y, path = data
    values = channel_means(model, x) if mode == "mean" else np.zeros(6)
    result = ablate(model, path, layer="L", mode=mode, route=route, batch_size=20)
    expected_route = {"fun": "graph", "skip": "patch"}.get(kind, route)
    assert result.route == expected_route
    assert result.manifest["grouping"] == "label"
    np.testing.assert_allclose(result.values, values, rtol=1e-6)
    check(result, reference(model, x, y, values))


@pytest.mark.parametrize("route", ["delta", "graph", "patch"])
def test_batches_and_channel_chunks_merge_to_the_same_numbers(models, data, route, monkeypatch):
    from convscope.diagnose import ablate, ablation

    _, _, path = data
    whole = ablate(models["seq"], path, layer="L", batch_size=N)
    monkeypatch.setattr(ablation, "FOLD_ELEMENTS", 7 * 2 * 5 * 5 * 6 * 3)  # ~2 channels per suffix pass
    pieces = ablate(models["seq"], path, layer="L", batch_size=7, route=route)
    assert pieces.route == route
    for name in ("delta_logit", "delta_own", "changed", "accuracy"):
        np.testing.assert_allclose(getattr(pieces, name), getattr(whole, name), rtol=1e-6, atol=1e-6)


def test_accumulators_merge_exactly():
    from convscope.diagnose import AblationAccumulator

    rng = np.random.default_rng(0)
    base, abl = rng.normal(size=(30, 4)), rng.normal(size=(5, 30, 4))
    truth = rng.integers(-1, 4, 30)
    whole = AblationAccumulator(5, 4, True)
    whole.add_images(base, truth)
    whole.add_channels(base, abl, np.arange(5), truth)
    parts = [AblationAccumulator(5, 4, True) for _ in range(2)]
    for part, rows in zip(parts, (slice(0, 11), slice(11, 30))):
        part.add_images(base[rows], truth[rows])
        for chans in (np.arange(3), np.arange(3, 5)):
            part.add_channels(base[rows], abl[chans][:, rows], chans, truth[rows])
    parts[0].merge(parts[1])
    for name, value in whole.arrays().items():
        np.testing.assert_allclose(parts[0].arrays()[name], value, rtol=1e-12, equal_nan=True)
    own = whole.arrays()["delta_own"]
    change = abl - base[None]
    np.testing.assert_allclose(own[:, 2], change[:, truth == 2, 2].mean(axis=1), rtol=1e-12)


def test_a_subclassed_model_takes_the_patch_route(models, data):
    import keras

    from convscope.diagnose import ablate

    class Sub(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="sub")
            self.c0 = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c0")
            self.ell = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="L")
            self.pool = keras.layers.AveragePooling2D(2, name="pool")
            self.flat = keras.layers.Flatten(name="flat")
            self.out = keras.layers.Dense(CLASSES, activation="softmax", name="out")

        def call(self, x):
            return self.out(self.flat(self.pool(self.ell(self.c0(x)))))

    x, y, path = data
    sub = Sub()
    sub(x[:1])
    sub.set_weights(models["fun"].get_weights())
    result = ablate(sub, path, layer="L", input_shape=(SIZE, SIZE, 1))
    assert result.route == "patch"
    check(result, reference(models["fun"], x, y, np.zeros(6)))


def test_labels_name_classes_by_name_or_id():
    from convscope.diagnose.ablate_stats import label_ids

    np.testing.assert_array_equal(label_ids(["cat", "dog", "2", "emu"], ["cat", "dog", "cow"], 3), [0, 1, 2, -1])
    assert label_ids(["x", "y"], None, 3) is None and label_ids(None, ["a"], 1) is None
